"""The pre-flight of staged enforcement: whether staging drops nothing on the live cluster.

A staged namespace's policies have ``enableDefaultDeny`` off, which drops nothing only where Cilium honours
it. Before its policies are applied, the stack reads the cluster (``components.staging_gate``) and this
module decides, from what was read, whether staging is known to be safe there; every reason it is not is
one line, and the policies wait. What is read:

- ``kube-system/cilium-config``: ``enable-policy`` must be ``default`` (``always`` puts every pod in default
  deny), and ``enable-non-default-deny-policies`` (1.17+) must not be ``false`` (Cilium then forces default
  deny on, over ``enableDefaultDeny: false``: the staged policies would enforce);
- the Cilium agent's version (its image tag): a namespace with L7 or DNS rules needs the patch release whose
  L7 rules drop nothing with default deny off (``cilium_versions.CiliumFeatures.staging_safe_l7``);
- every policy in the cluster: another policy that puts a staged namespace's pods in default deny (a
  NetworkPolicy, a clusterwide policy) still drops while the namespace is staged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.cilium_versions import CILIUM, DEFAULT_CILIUM, Patch, Version
from policies.config import StackConfig
from policies.render import Rendered, pod_labels
from policies.verdict import Endpoint, Engine, stranger


@dataclass(frozen=True)
class StagedNamespace:
    """What the pre-flight needs of one staged namespace."""

    name: str
    labels: Mapping[str, str]
    """The Namespace's labels (clusterwide policies may select by them)."""
    pods: tuple[tuple[str, Mapping[str, str]], ...]
    """(workload, its pods' labels) for every workload of the namespace."""
    l7: bool
    """Whether its policies hold L7 (HTTP) or DNS rules."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "labels": dict(self.labels), "pods": [[w, dict(labels)] for w, labels in self.pods], "l7": self.l7}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> StagedNamespace:
        return StagedNamespace(str(d["name"]), dict(d["labels"]), tuple((str(w), dict(labels)) for w, labels in d["pods"]), bool(d["l7"]))


@dataclass(frozen=True)
class ClusterFacts:
    """What the pre-flight read from the live cluster."""

    cilium_config: Mapping[str, str] | None
    """``kube-system/cilium-config``'s data; None when there is no such ConfigMap."""
    cilium_image: str | None
    """The image of the Cilium agent (DaemonSet ``kube-system/cilium``); None when there is none."""
    policies: tuple[Mapping[str, Any], ...] = field(default=())
    """Every CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and NetworkPolicy in the cluster."""


def staged(cfg: StackConfig, rendered: Rendered) -> list[StagedNamespace]:
    """The stack's staged namespaces as the pre-flight needs them."""
    out = []
    for ns in rendered.namespaces:
        if cfg.enforcement(ns.name) != "staged":
            continue
        pods = tuple((name, pod_labels(name, w)) for name, w in sorted(cfg.workloads.items()) if w.namespace == ns.name)
        l7 = any(_has_l7(p["spec"]) for p in ns.policies)
        out.append(StagedNamespace(ns.name, dict(ns.namespace["metadata"].get("labels") or {}), pods, l7))
    return out


def _has_l7(spec: Mapping[str, Any]) -> bool:
    return any(port.get("rules") for section in ("ingress", "egress") for rule in spec.get(section) or () for port in rule.get("toPorts") or ())


_VERSION = re.compile(r":v?(\d+)\.(\d+)\.(\d+)")


def image_version(image: str | None) -> Patch | None:
    """The Cilium release an agent image's tag names (``.../cilium:v1.17.3``, AKS's ``...:1.17.7-250927``)."""
    m = _VERSION.search(image or "")
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _text(v: Sequence[int]) -> str:
    return ".".join(map(str, v))


def problems(namespaces: Sequence[StagedNamespace], own: Sequence[Mapping[str, Any]], facts: ClusterFacts) -> list[str]:
    """Every reason staging ``namespaces`` is not known to drop nothing on this cluster (empty: it is).

    ``own`` is the stack's policies as about to be applied; the cluster's copies of them are replaced by them.
    """
    if not namespaces:
        return []
    names = ", ".join(n.name for n in namespaces)
    out: list[str] = []
    config = facts.cilium_config
    if config is None:
        out.append(f"kube-system/cilium-config: not found, so how Cilium enforces cannot be read; staging {names} is refused")
    else:
        policy_mode = str(config.get("enable-policy", "default"))
        if policy_mode != "default":
            out.append(f"cilium-config enable-policy is {policy_mode!r}: every pod is in default deny whatever its policies say, "
                       f"so staging {names} would drop; keep them enforced")
        if str(config.get("enable-non-default-deny-policies", "true")).lower() == "false":
            out.append(f"cilium-config enable-non-default-deny-policies is 'false': Cilium forces default deny on over "
                       f"enableDefaultDeny: false, so the staged policies of {names} would enforce; keep them enforced")
    version = image_version(facts.cilium_image)
    minor: Version | None = version[:2] if version else None
    features = CILIUM.get(minor) if minor else None
    l7 = [n.name for n in namespaces if n.l7]
    if version is None:
        out.append(f"the Cilium agent's image {facts.cilium_image!r} names no version, so that this Cilium honours "
                   f"enableDefaultDeny cannot be confirmed; staging {names} is refused")
    elif features is None:
        known = ", ".join(f.text for f in CILIUM.values())
        out.append(f"the cluster runs Cilium {_text(version)}, which this tool does not know (known: {known}); staging {names} is refused")
    elif not features.enable_default_deny:
        out.append(f"the cluster runs Cilium {_text(version)}, whose policies have no enableDefaultDeny (1.16 and later): "
                   f"the staged policies of {names} would enforce; keep them enforced")
    elif l7 and (features.staging_safe_l7 is None or version < features.staging_safe_l7):
        fix = _text(features.staging_safe_l7) if features.staging_safe_l7 else "a later minor release"
        out.append(f"the cluster runs Cilium {_text(version)}, whose L7 rules still refuse the requests they do not match "
                   f"with default deny off (cilium/cilium#38676): staging {', '.join(l7)} (L7 or DNS rules) needs {fix} or later")
    out += _default_deny_elsewhere(namespaces, own, facts.policies, minor if features else None)
    return out


def _key(p: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = p.get("metadata") or {}
    return str(p.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _default_deny_elsewhere(
    namespaces: Sequence[StagedNamespace], own: Sequence[Mapping[str, Any]], cluster: Sequence[Mapping[str, Any]], minor: Version | None
) -> list[str]:
    """A policy the stack does not own that puts a staged namespace's pods in default deny (it still drops)."""
    mine = {_key(p) for p in own}
    policies = [*own, *(p for p in cluster if _key(p) not in mine)]
    endpoints = [(n, ep) for n in namespaces for ep in (
        stranger(n.name, n.labels), *(Endpoint(n.name, dict(labels), name=w, namespace_labels=n.labels) for w, labels in n.pods))]
    engine = Engine(policies, minor or DEFAULT_CILIUM, [ep for _, ep in endpoints])
    out = []
    for n, ep in endpoints:
        for direction in ("ingress", "egress"):
            side = engine.enforcement(ep, direction)
            if side.allowed:
                out.append(f"{n.name}: {side.reason}: that still drops what it does not allow while {n.name} is staged; "
                           f"remove it or keep {n.name} enforced")
    return out
