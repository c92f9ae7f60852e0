"""Cilium label selectors and the namespace scoping Cilium adds to them.

- Selector keys: ``k8s:x`` matches Kubernetes labels only, ``reserved:x`` a reserved identity only; ``x``
  means ``any:x``, matching a label of either source (pkg/labels GetExtendedKeyFrom, ``Label.HasKey``).
- A CNP's ``endpointSelector`` always gets the policy's namespace (a ``k8s:``
  namespace match of its own is overwritten); its peer selectors get it unless
  they name ``io.kubernetes.pod.namespace`` (``k8s:``/``any:``), a namespace
  label or a ``reserved:`` key. A CCNP's peer selectors get
  ``k8s:io.kubernetes.pod.namespace Exists`` (pkg/k8s/apis/cilium.io/utils/utils.go).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.verdict.identity import NS_KEY, NS_LABELS_PREFIX


LABEL_SOURCES = ("k8s", "reserved", "node")
"""The label sources an identity here carries (a pod's Kubernetes labels, a reserved identity's name, a node's
labels), all
of which an ``any:`` key matches (pkg/labels ``Label.HasKey``); the identity's other entries (addresses,
DNS names) are this engine's own, never labels a selector can name."""


class PolicyRejected(ValueError):
    """Cilium would reject the whole object (Sanitize / CRD validation)."""



@dataclass(frozen=True)
class Requirement:
    source: str  # "k8s", "any", "reserved", ...
    key: str
    op: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, identity: frozenset[tuple[str, str, str]]) -> bool:
        """The one definition of a requirement over an identity: the engine's index (``Engine._select``)
        must agree with it, and a property test holds it to that."""
        found = {v for s, k, v in identity if k == self.key and (s == self.source or (self.source == "any" and s in LABEL_SOURCES))}
        if self.op == "In":
            return bool(found & self.values)
        if self.op == "NotIn":
            return not (found & self.values)
        if self.op == "Exists":
            return bool(found)
        return not found  # DoesNotExist


@dataclass(frozen=True)
class Selector:
    requirements: frozenset[Requirement]

    def matches(self, identity: frozenset[tuple[str, str, str]]) -> bool:
        return all(r.matches(identity) for r in self.requirements)

    def has_key(self, key: str, sources: Iterable[str] = ("k8s", "any")) -> bool:
        return any(r.key == key and r.source in sources for r in self.requirements)

    def has_key_prefix(self, prefix: str, sources: Iterable[str] = ("k8s", "any")) -> bool:
        return any(r.key.startswith(prefix) and r.source in sources for r in self.requirements)


def _split_key(key: str) -> tuple[str, str]:
    """pkg/labels GetExtendedKeyFrom: ``src:key``; no source means ``any``, except ``$key`` and
    ``reserved.key`` (ParseSource: the reserved prefix, written with a dot), which are ``reserved:key``."""
    if key.startswith("$"):
        return "reserved", key[1:]
    source, sep, rest = key.partition(":")
    if not sep and key.startswith("reserved."):
        return "reserved", key.removeprefix("reserved.")
    return (source, rest) if sep else ("any", key)


def parse_selector(raw: Any, where: str) -> Selector:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise PolicyRejected(f"{where}: a label selector must be a mapping")
    unknown = set(raw) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise PolicyRejected(f"{where}: unknown selector field(s) {sorted(unknown)}")
    reqs = set()
    for k, v in (raw.get("matchLabels") or {}).items():
        source, key = _split_key(str(k))
        reqs.add(Requirement(source, key, "In", frozenset({str(v)})))
    for i, e in enumerate(raw.get("matchExpressions") or []):
        op = e.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyRejected(f"{where}.matchExpressions[{i}].operator: {op!r} is not In, NotIn, Exists or DoesNotExist")
        values = frozenset(str(x) for x in (e.get("values") or []))
        if op in ("In", "NotIn") and not values:
            raise PolicyRejected(f"{where}.matchExpressions[{i}]: {op} needs values")
        source, key = _split_key(str(e.get("key", "")))
        reqs.add(Requirement(source, key, op, values))
    return Selector(frozenset(reqs))


def subject_selector(raw: Any, namespace: str | None, where: str) -> Selector:
    """endpointSelector with Cilium's namespace scoping (utils.go ParseToCiliumRule)."""
    sel = parse_selector(raw, where)
    if namespace is None:
        return sel
    reqs = {r for r in sel.requirements if not (r.source == "k8s" and r.key == NS_KEY and r.op == "In")}
    reqs.add(Requirement("k8s", NS_KEY, "In", frozenset({namespace})))
    return Selector(frozenset(reqs))


def peer_selector(raw: Any, namespace: str | None, where: str) -> Selector:
    """from/toEndpoints with Cilium's namespace scoping (utils.go getEndpointSelector)."""
    sel = parse_selector(raw, where)
    if any(r.source == "reserved" for r in sel.requirements):
        return sel
    if sel.has_key(NS_KEY):
        return sel
    if namespace is None:
        return Selector(sel.requirements | {Requirement("k8s", NS_KEY, "Exists")})
    if sel.has_key_prefix(NS_LABELS_PREFIX):
        return sel
    return Selector(sel.requirements | {Requirement("k8s", NS_KEY, "In", frozenset({namespace}))})

