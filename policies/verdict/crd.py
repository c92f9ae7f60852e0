"""What the API server does to a policy before Cilium sees it: which apiVersion it serves, which fields it prunes.

A CRD's structural schema drops every field its ``properties`` do not name (unless a node sets
``x-kubernetes-preserve-unknown-fields``), silently: a typo'd ``toPort`` leaves a rule without ports,
which allows every port. Policies read from a cluster or a file are judged as pruned, and the pruned
paths are reported. The schemas are Cilium 1.17's (``crds/README.md``), the version AKS runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from policies.verdict.compile import CCNP, CNP
from policies.verdict.networkpolicy import KIND as NETWORK_POLICY

CRD_DIR = Path(__file__).parent / "crds"
SERVED = {CNP: ("cilium.io/v2",), CCNP: ("cilium.io/v2",), NETWORK_POLICY: ("networking.k8s.io/v1",)}
"""The apiVersions the API server serves for each policy kind (Cilium 1.17's CRDs serve v2 only)."""
_FILES = {CNP: "ciliumnetworkpolicies.yaml", CCNP: "ciliumclusterwidenetworkpolicies.yaml"}


@lru_cache(maxsize=None)
def schema(kind: str) -> Mapping[str, Any]:
    """The v2 openAPIV3Schema of a Cilium policy kind."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((CRD_DIR / _FILES[kind]).read_text(encoding="utf-8"), Loader=loader)
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v2")["schema"]["openAPIV3Schema"]


def not_served(manifest: Mapping[str, Any]) -> str | None:
    """Why the API server would refuse the object's apiVersion, or None."""
    kind, api = manifest.get("kind"), manifest.get("apiVersion")
    served = SERVED.get(str(kind))
    if served is None or api in served:
        return None
    return f"apiVersion {api!r} is not served for {kind} (only {', '.join(served)})"


def prune(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the object as the API server stores it, the paths of the fields it drops). Objects of kinds without a
    vendored schema (NetworkPolicy: a built-in type, whose unknown fields the API server also drops) are
    returned as they are."""
    kind = manifest.get("kind")
    if kind not in _FILES:
        return dict(manifest), []
    dropped: list[str] = []
    root = schema(str(kind))
    out = dict(manifest)  # pruning builds new objects; it never changes the manifest's
    for key in ("spec", "specs"):
        if key in out:
            out[key] = _prune(out[key], root["properties"][key], key, dropped)
    return out, dropped


def _prune(value: Any, node: Mapping[str, Any], path: str, dropped: list[str]) -> Any:
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return value
    # A structural schema types every node it prunes under; a value of the wrong type is refused, not pruned.
    if isinstance(value, dict) and node.get("type") == "object":
        props, more = node.get("properties"), node.get("additionalProperties")
        if props is None and isinstance(more, Mapping):
            return {k: _prune(v, more, f"{path}.{k}", dropped) for k, v in value.items()}
        if props is None and more:
            return value
        kept = {}
        for k, v in value.items():
            if k in (props or {}):
                kept[k] = _prune(v, props[k], f"{path}.{k}", dropped)
            else:
                dropped.append(f"{path}.{k}")
        return kept
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [_prune(v, node["items"], f"{path}[{i}]", dropped) for i, v in enumerate(value)]
    return value


def as_stored(objects: list[Any], source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The policies among ``objects`` as the API server would store them, and one line for each object
    that is not replayed (not a policy kind, an apiVersion not served) or loses fields to pruning."""
    policies: list[dict[str, Any]] = []
    notes: list[str] = []
    if not objects:
        notes.append(f"{source}: holds no objects, so no policy of the cluster is replayed")
    for i, item in enumerate(objects):
        kind = item.get("kind") if isinstance(item, Mapping) else None
        name = (item.get("metadata") or {}).get("name") if isinstance(item, Mapping) and isinstance(item.get("metadata"), Mapping) else None
        where = f"{source} object {i}" + (f" ({kind} {name})" if kind and name else "")
        if kind not in SERVED:
            notes.append(f"{where}: not a policy ({', '.join(SERVED)}): not replayed")
            continue
        why = not_served(item)
        if why:
            notes.append(f"{where}: {why}: the API server refuses it, not replayed")
            continue
        stored, dropped = prune(item)
        if dropped:
            notes.append(f"{where}: the API server prunes {', '.join(dropped)} (not in the {kind} schema): judged without them")
        policies.append(stored)
    return policies, notes
