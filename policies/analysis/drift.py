"""Drift: how the policies in a live cluster differ from the ones a stack renders.

Allows are additive in Cilium: any CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
or Kubernetes NetworkPolicy that selects a managed pod can open traffic the stack
never declared, and a stack policy edited in place can too. ``verify`` reads the
live objects; this module decides, as plain data, what differs and which managed
pods an extra policy selects (with Cilium's namespace scoping of selectors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.render.podspec import pod_labels
from policies.render import Rendered
from policies.verdict import CCNP, CNP, Endpoint, PolicyRejected, parse_selector, stranger, subject_selector

NETWORK_POLICY = "NetworkPolicy"


@dataclass(frozen=True)
class ExtraPolicy:
    kind: str
    ref: str
    """``namespace/name``, or the name of a clusterwide policy."""
    selects: tuple[str, ...]
    """The managed pods it selects (``namespace/workload``, or a namespace's stranger)."""


def spec_difference(live: Any, rendered: Any, path: str = "spec") -> str | None:
    """The first place where a live object's spec differs from the rendered one, or None."""
    if isinstance(live, Mapping) and isinstance(rendered, Mapping):
        for key in sorted(set(live) | set(rendered)):
            if key not in rendered:
                return f"{path}.{key} was added"
            if key not in live:
                return f"{path}.{key} was removed"
            found = spec_difference(live[key], rendered[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(live, list) and isinstance(rendered, list):
        if len(live) != len(rendered):
            return f"{path} has {len(live)} entries, the stack renders {len(rendered)}"
        for i, (a, b) in enumerate(zip(live, rendered)):
            found = spec_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if live == rendered else f"{path} is {live!r}, the stack renders {rendered!r}"


def managed_endpoints(rendered: Rendered) -> list[Endpoint]:
    """Every managed workload's pods and each managed namespace's stranger, with their namespace labels."""
    out = []
    for n in rendered.namespaces:
        labels = (n.namespace.get("metadata") or {}).get("labels") or {}
        out.append(stranger(n.name, labels))
        for w in n.workloads:
            out.append(Endpoint(n.name, dict(pod_labels(w.deployment)), name=w.name, namespace_labels=labels))
    return out


def extra_policies(live: Iterable[Mapping[str, Any]], rendered: Rendered) -> list[ExtraPolicy]:
    """Live policies the stack did not render that select at least one managed pod."""
    ours = {(p.get("kind"), p["metadata"].get("namespace"), p["metadata"]["name"]) for p in rendered.policies()}
    endpoints = managed_endpoints(rendered)
    out = []
    for o in live:
        meta = o.get("metadata") or {}
        kind, ns, name = o.get("kind"), meta.get("namespace"), meta.get("name")
        if (kind, ns, name) in ours:
            continue
        selected = _selected(o, endpoints)
        if selected:
            ref = name if kind == CCNP else f"{ns}/{name}"
            out.append(ExtraPolicy(str(kind), str(ref), tuple(selected)))
    return sorted(out, key=lambda e: (e.kind, e.ref))


def _selected(o: Mapping[str, Any], endpoints: Sequence[Endpoint]) -> list[str]:
    kind, ns = o.get("kind"), (o.get("metadata") or {}).get("namespace")
    try:
        if kind == NETWORK_POLICY:
            sel = parse_selector((o.get("spec") or {}).get("podSelector") or {}, "podSelector")
            return sorted(e.display for e in endpoints if e.namespace == ns and sel.matches(e.identity()))
        specs = [o["spec"]] if isinstance(o.get("spec"), Mapping) else []
        specs += [s for s in o.get("specs") or [] if isinstance(s, Mapping)]
        found: list[str] = []
        for spec in specs:
            if spec.get("endpointSelector") is None:
                continue  # a nodeSelector rule selects hosts, not pods
            sel = subject_selector(spec["endpointSelector"], None if kind == CCNP else ns, "endpointSelector")
            found += [e.display for e in endpoints if (kind == CCNP or e.namespace == ns) and sel.matches(e.identity())]
        return sorted(set(found))
    except PolicyRejected:
        return []  # Cilium rejects it too; it selects nothing


__all__ = ["CCNP", "CNP", "NETWORK_POLICY", "ExtraPolicy", "extra_policies", "managed_endpoints", "spec_difference"]
