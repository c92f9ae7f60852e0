"""A Cilium policy verdict engine for pod-to-pod connections (L3/L4).

Given CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy manifests (plain
dicts, as applied), decide whether a pod may open a connection to another pod
on a port and protocol, and say why in one line::

    from policies.verdict import Endpoint, decide
    v = decide(manifests, src=Endpoint("frontend", {"app": "frontend"}),
               dst=Endpoint("backend", {"app": "backend"}), port=80, protocol="TCP")
    v.allowed, v.reason

The semantics follow Cilium 1.14-1.18 (what AKS ships); each rule cites the
Cilium doc or code it comes from:

- A connection needs the source's egress AND the destination's ingress
  (docs policy/language: "policy must be configured on both sides").
- A direction is enforced for a pod only if a rule selecting it has a
  non-empty ``ingress``/``ingressDeny`` (``egress``/``egressDeny``) list
  (pkg/policy/repository.go computePolicyEnforcementAndRules; api/rule.go "If
  omitted or empty, this rule does not apply at ingress"). So ``ingress: []``
  enforces nothing and ``ingress: [{}]`` denies everything.
- ``enableDefaultDeny`` (Cilium >= 1.16; 1.14's CRD prunes it): a direction
  is default-allow only if every rule enforcing it sets the flag to false.
- A CNP's ``endpointSelector`` always gets the policy's namespace (a
  ``k8s:`` namespace match of its own is overwritten); its peer selectors get
  it unless they name ``io.kubernetes.pod.namespace`` (``k8s:``/``any:``), a
  namespace label (``io.cilium.k8s.namespace.labels.*``) or a ``reserved:`` key.
  A CCNP's peer selectors get ``k8s:io.kubernetes.pod.namespace Exists``
  (pkg/k8s/apis/cilium.io/utils/utils.go).
- Selector keys: ``k8s:x`` matches Kubernetes labels only, ``x`` means
  ``any:x``; other sources never match pod labels. Cilium drops some pod
  labels from identities (pkg/labelsfilter) and adds the namespace, its
  labels, the service account and the cluster name.
- Within a rule, peers AND ports; rules OR. No L3 field with ``toPorts`` is
  an L3 wildcard; an explicit empty peer list selects nothing (cilium#29608);
  a rule mixing two L3 kinds is rejected, and so is the whole object
  (api/rule_validation.go Sanitize). From 1.17 a rule with no section at all
  is rejected too.
- Ports: a string; protocol omitted or ``ANY`` is TCP, UDP and SCTP;
  ``endPort`` is inclusive (>= 1.16); ``"0"`` wildcards the port only.
- Deny rules beat allows, and a deny-only rule still enforces its direction.
- Entities: ``all`` and ``cluster`` match pods; ``world``, ``host`` and the
  other reserved entities never do.

Not decided offline (the verdict says so and ``exact`` is False): CIDR, FQDN,
service and group peers, ``fromRequires``/``toRequires``, named ports and L7
rules (HTTP, DNS, Kafka).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NS_KEY = "io.kubernetes.pod.namespace"
NS_LABELS_PREFIX = "io.cilium.k8s.namespace.labels"
CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
ALL_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
POD_ENTITIES = frozenset({"all", "cluster"})
DEFAULT_VERSION = (1, 17)

# pkg/labelsfilter/filter.go defaultLabelPrefixCfg: (pattern, include?). A label
# is kept if no ignore pattern matches it, or the longest matching include
# pattern is longer than the longest matching ignore pattern.
_LABEL_FILTER = [
    (NS_KEY, True),
    (NS_LABELS_PREFIX, True),
    ("app.kubernetes.io", True),
    (r"io\.kubernetes", False),
    (r"kubernetes\.io", False),
    (r".*beta\.kubernetes\.io", False),
    (r"k8s\.io", False),
    ("pod-template-generation", False),
    ("pod-template-hash", False),
    ("controller-revision-hash", False),
    ("annotation.*", False),
    ("etcd_node", False),
]
_LABEL_FILTER_RE = [(re.compile(p if not inc else re.escape(p)), len(p), inc) for p, inc in _LABEL_FILTER]

_INGRESS_L3 = ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet", "fromNodes", "fromGroups")
_EGRESS_L3 = ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toServices", "toFQDNs", "toNodes", "toGroups")
_OFFLINE = {
    "fromCIDR": "CIDR",
    "fromCIDRSet": "CIDR",
    "toCIDR": "CIDR",
    "toCIDRSet": "CIDR",
    "toFQDNs": "FQDN",
    "toServices": "service",
    "fromGroups": "group",
    "toGroups": "group",
}


class PolicyRejected(ValueError):
    """Cilium would reject the whole object (Sanitize / CRD validation)."""


def keep_label(key: str) -> bool:
    """Whether Cilium keeps a pod label key in the pod's security identity."""
    included = ignored = 0
    for rx, length, include in _LABEL_FILTER_RE:
        if rx.search(key):
            if include:
                included = max(included, length)
            else:
                ignored = max(ignored, length)
    return ignored == 0 or included > ignored


@dataclass(frozen=True, eq=False)
class Endpoint:
    """A pod as Cilium sees it: namespace and labels (plus what Cilium adds)."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    service_account: str = "default"
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    cluster: str = "default"

    @property
    def display(self) -> str:
        return f"{self.namespace}/{self.name or _labels_text(self.labels) or 'pod'}"

    def identity(self) -> frozenset[tuple[str, str, str]]:
        """The pod's identity labels as (source, key, value)."""
        out = {("k8s", k, v) for k, v in self.labels.items() if keep_label(k)}
        out.add(("k8s", NS_KEY, self.namespace))
        out.add(("k8s", "io.cilium.k8s.policy.cluster", self.cluster))
        out.add(("k8s", "io.cilium.k8s.policy.serviceaccount", self.service_account))
        ns_labels = {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}
        out |= {("k8s", f"{NS_LABELS_PREFIX}.{k}", v) for k, v in ns_labels.items()}
        return frozenset(out)


def _labels_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


# -- selectors -----------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    source: str  # "k8s", "any", "reserved", ...
    key: str
    op: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, identity: frozenset[tuple[str, str, str]]) -> bool:
        found = {v for s, k, v in identity if k == self.key and (self.source == "any" or s == self.source)}
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
    """pkg/labels GetExtendedKeyFrom: ``src:key``; no source means ``any``."""
    if key.startswith("$"):
        return "reserved", key[1:]
    source, sep, rest = key.partition(":")
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


# -- compiled rules ----------------------------------------------------------------------


@dataclass(frozen=True)
class PortEntry:
    lo: int
    hi: int
    protocols: frozenset[str]
    l7: bool = False
    named: str | None = None

    def matches(self, port: int, protocol: str) -> bool:
        if protocol not in self.protocols:
            return False
        if self.named is not None:
            return False
        return self.lo == 0 or self.lo <= port <= self.hi


WILDCARD = "wildcard"


@dataclass(frozen=True)
class PeerRule:
    """One entry of an ingress/egress (deny) list, compiled."""

    policy: str
    where: str  # e.g. "ingress[0]"
    deny: bool
    selectors: tuple[Selector, ...] | str  # WILDCARD, or pod selectors (possibly empty)
    offline: str | None  # peer kind the engine cannot decide offline
    ports: tuple[PortEntry, ...] | None  # None: every port and protocol
    requires: bool = False

    def port_entry(self, port: int, protocol: str) -> PortEntry | None | bool:
        """The matching entry, True when every port matches, None when none does."""
        if self.ports is None:
            return True
        for e in self.ports:
            if e.matches(port, protocol):
                return e
        return None

    def named_port_applies(self, protocol: str) -> bool:
        return any(e.named and protocol in e.protocols for e in self.ports or ())

    @property
    def ref(self) -> str:
        return f"{self.policy} {self.where}"


@dataclass(frozen=True)
class Rule:
    policy: str
    namespace: str | None
    subject: Selector | None  # None: a nodeSelector rule (selects no pod)
    sections: Mapping[str, tuple[PeerRule, ...]]
    enforces: Mapping[str, bool]  # direction -> non-empty allow or deny list
    default_deny: Mapping[str, bool]
    empty_sections: tuple[str, ...] = ()  # e.g. ("ingress",) for `ingress: []`


def _policy_ref(m: Mapping[str, Any]) -> str:
    meta = m.get("metadata") or {}
    if m.get("kind") == CCNP:
        return f"ccnp/{meta.get('name', '?')}"
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def compile_policy(manifest: Mapping[str, Any], version: tuple[int, int] = DEFAULT_VERSION) -> list[Rule]:
    """A CNP/CCNP -> its rules; raises ``PolicyRejected`` where Cilium rejects the object."""
    kind = manifest.get("kind")
    ref = _policy_ref(manifest)
    namespace = None if kind == CCNP else (manifest.get("metadata") or {}).get("namespace", "default")
    specs: list[tuple[str, Any]] = []
    if manifest.get("spec") is not None:
        specs.append(("spec", manifest["spec"]))
    specs += [(f"specs[{i}]", s) for i, s in enumerate(manifest.get("specs") or [])]
    if not specs:
        raise PolicyRejected(f"{ref}: has neither spec nor specs")
    return [_compile_rule(ref, namespace, kind, where, spec, version) for where, spec in specs]


def _compile_rule(ref, namespace, kind, where, spec, version) -> Rule:
    if not isinstance(spec, Mapping):
        raise PolicyRejected(f"{ref} {where}: must be a mapping")
    has_ep, has_node = spec.get("endpointSelector") is not None, spec.get("nodeSelector") is not None
    if has_ep == has_node:
        raise PolicyRejected(f"{ref} {where}: needs exactly one of endpointSelector or nodeSelector")
    if has_node and kind == CNP:
        raise PolicyRejected(f"{ref} {where}: a CiliumNetworkPolicy cannot use nodeSelector")
    subject = subject_selector(spec["endpointSelector"], namespace, f"{where}.endpointSelector") if has_ep else None

    sections: dict[str, tuple[PeerRule, ...]] = {}
    for section in ("ingress", "ingressDeny", "egress", "egressDeny"):
        entries = spec.get(section)
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise PolicyRejected(f"{ref} {where}.{section}: must be a list")
        sections[section] = tuple(
            _compile_peer_rule(ref, namespace, f"{section}[{i}]", e, section, version) for i, e in enumerate(entries)
        )
    if version >= (1, 17) and not any(sections.values()):
        raise PolicyRejected(
            f"{ref} {where}: has no ingress, ingressDeny, egress or egressDeny rule "
            "(Cilium >= 1.17 rejects it; earlier versions ignore it)"
        )
    enforces = {
        "ingress": bool(sections["ingress"] or sections["ingressDeny"]),
        "egress": bool(sections["egress"] or sections["egressDeny"]),
    }
    flags = spec.get("enableDefaultDeny") or {}
    if version < (1, 16):
        flags = {}  # the 1.14/1.15 CRD has no such field: the API server prunes it
    default_deny = {d: flags.get(d) is not False for d in ("ingress", "egress")}
    empty = tuple(s for s in ("ingress", "egress") if spec.get(s) == [] and not sections[s + "Deny"])
    return Rule(ref + ("" if where == "spec" else f" {where}"), namespace, subject, sections, enforces, default_deny, empty)


def _compile_peer_rule(ref, namespace, where, entry, section, version) -> PeerRule:
    if not isinstance(entry, Mapping):
        raise PolicyRejected(f"{ref} {where}: must be a mapping")
    ingress = section.startswith("ingress")
    l3_kinds = _INGRESS_L3 if ingress else _EGRESS_L3
    present = [k for k in l3_kinds if entry.get(k)]
    if len(present) > 1:
        raise PolicyRejected(f"{ref} {where}: combining {present[0]} and {present[1]} is not supported (Cilium rejects the policy)")
    ports = _compile_ports(ref, where, entry.get("toPorts"), version)
    endpoints_key = "fromEndpoints" if ingress else "toEndpoints"
    entities_key = "fromEntities" if ingress else "toEntities"
    offline = None
    if any(k in entry for k in l3_kinds):
        selectors: tuple[Selector, ...] | str = ()
        if entry.get(endpoints_key) is not None:
            selectors = tuple(
                peer_selector(s, namespace, f"{where}.{endpoints_key}[{i}]") for i, s in enumerate(entry[endpoints_key])
            )
        elif entry.get(entities_key):
            if set(entry[entities_key]) & POD_ENTITIES:
                selectors = WILDCARD if "all" in entry[entities_key] else (Selector(frozenset({Requirement("k8s", NS_KEY, "Exists")})),)
        else:
            kind = next((k for k in l3_kinds if entry.get(k)), None)
            offline = _OFFLINE.get(kind) if kind else None
    elif entry.get("toPorts"):
        selectors = WILDCARD  # L4-only rule: any peer at L3
    else:
        # `{}` enforces the direction and allows nothing; an ICMP-only rule allows any peer, at ICMP only.
        selectors = WILDCARD if entry.get("icmps") else ()
    if entry.get("icmps") and not entry.get("toPorts"):
        ports = ()  # ICMP only: no TCP/UDP/SCTP port matches
    requires = bool(entry.get("fromRequires" if ingress else "toRequires"))
    return PeerRule(ref, where, section.endswith("Deny"), selectors, offline, ports, requires)


def _compile_ports(ref, where, to_ports, version) -> tuple[PortEntry, ...] | None:
    if not to_ports:
        return None
    out = []
    for i, pr in enumerate(to_ports):
        rules = pr.get("rules") or {}
        l7 = any(rules.get(k) for k in ("http", "dns", "kafka", "l7")) or bool(
            pr.get("serverNames") or pr.get("terminatingTLS") or pr.get("originatingTLS")
        )
        for j, pp in enumerate(pr.get("ports") or []):
            at = f"{ref} {where}.toPorts[{i}].ports[{j}]"
            proto = pp.get("protocol") or "ANY"
            if proto not in ("TCP", "UDP", "SCTP", "ANY"):
                raise PolicyRejected(f"{at}.protocol: {proto!r} is not TCP, UDP, SCTP or ANY")
            protocols = ALL_PROTOCOLS if proto == "ANY" else frozenset({proto})
            port = pp.get("port")
            if not isinstance(port, str) and port is not None:
                raise PolicyRejected(f"{at}.port: must be a string (the CRD rejects {port!r})")
            port = port or "0"
            if not port.isdigit():
                out.append(PortEntry(0, 0, protocols, l7, named=port))
                continue
            lo = int(port)
            if lo > 65535:
                raise PolicyRejected(f"{at}.port: {port} is out of range")
            end = pp.get("endPort")
            hi = end if (version >= (1, 16) and isinstance(end, int) and end > lo) else lo
            out.append(PortEntry(lo, hi, protocols, l7))
    return tuple(out)


# -- the engine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    allowed: bool
    reason: str
    policies: tuple[str, ...] = ()
    exact: bool = True


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    egress: Side
    ingress: Side
    exact: bool = True
    """False when something the engine does not decide offline (L7, FQDN, CIDR...) could change it."""


class Engine:
    """Policies compiled once, queried for many (src, dst, port, protocol).

    How it avoids evaluating every policy for every pair:
    - pods are reduced to their security identity (the label set Cilium
      keys policy on) and interned as small ints, so pods that share labels
      share every answer;
    - rules are indexed by namespace (a CNP only ever selects pods of its own
      namespace; CCNPs apply everywhere);
    - each peer selector is resolved once into the set of identities it
      selects, through an inverted index of (key, value) -> identities;
    - for a (pod, direction, port, protocol) the applicable allow and deny
      peer sets are computed once, so one cell of a matrix is two set
      look-ups.
    """

    def __init__(
        self,
        manifests: Iterable[Mapping[str, Any]],
        version: tuple[int, int] = DEFAULT_VERSION,
        endpoints: Iterable[Endpoint] = (),
    ):
        self.version = version
        self.rejected: list[tuple[str, str]] = []
        self._by_ns: dict[str | None, list[Rule]] = {}
        for m in manifests:
            if m.get("kind") not in (CNP, CCNP):
                continue
            try:
                rules = compile_policy(m, version)
            except PolicyRejected as e:
                self.rejected.append((_policy_ref(m), str(e)))
                continue
            for r in rules:
                self._by_ns.setdefault(r.namespace, []).append(r)
        # Whether any rule uses something not decided offline (L7, FQDN, CIDR, named ports...).
        self.has_offline_parts = any(
            pr.offline or pr.requires or any(e.l7 or e.named for e in pr.ports or ())
            for rules in self._by_ns.values()
            for r in rules
            for section in r.sections.values()
            for pr in section
        )
        self._ids: dict[frozenset, int] = {}
        self._eps: list[Endpoint] = []
        self._index: dict[tuple[str, str], set[int]] = {}
        self._keys: dict[str, set[int]] = {}
        self._reset_caches()
        for ep in endpoints:
            self.intern(ep)

    def _reset_caches(self) -> None:
        self._selected: dict[Selector, frozenset[int]] = {}
        self._views: dict[tuple, _View] = {}
        self._rules: dict[int, list[Rule]] = {}
        self._subjects: dict[int, frozenset[int]] = {}  # id(rule) -> the identities it selects

    # -- identities ---------------------------------------------------------------------

    def intern(self, ep: Endpoint) -> int:
        """The small int standing for ``ep``'s identity (adding it to the universe)."""
        identity = ep.identity()
        n = self._ids.get(identity)
        if n is None:
            n = len(self._ids)
            self._ids[identity] = n
            self._eps.append(ep)
            for _source, key, value in identity:
                self._index.setdefault((key, value), set()).add(n)
                self._keys.setdefault(key, set()).add(n)
            self._reset_caches()  # selections over the universe changed
        return n

    def _select(self, sel: Selector) -> frozenset[int]:
        hit = self._selected.get(sel)
        if hit is not None:
            return hit
        out: set[int] = set(range(len(self._ids)))
        for r in sel.requirements:
            if r.source in ("k8s", "any"):
                found = set().union(*(self._index.get((r.key, v), ()) for v in r.values))
                found_any = self._keys.get(r.key, set())
            else:
                found = found_any = set()  # pod labels only ever have the k8s source
            if r.op == "In":
                out &= found
            elif r.op == "NotIn":
                out -= found
            elif r.op == "Exists":
                out &= found_any
            else:
                out -= found_any
        hit = frozenset(out)
        self._selected[sel] = hit
        return hit

    def _rules_for(self, n: int) -> list[Rule]:
        """The rules selecting identity ``n`` (both directions)."""
        hit = self._rules.get(n)
        if hit is None:
            ep = self._eps[n]
            candidates = self._by_ns.get(ep.namespace, []) + self._by_ns.get(None, [])
            hit = [r for r in candidates if r.subject is not None and n in self._subject_set(r)]
            self._rules[n] = hit
        return hit

    def _rejected_in(self, namespace: str) -> tuple[tuple[str, str], ...]:
        return tuple((ref, why) for ref, why in self.rejected if ref.startswith((f"{namespace}/", "ccnp/")))

    def _subject_set(self, r: Rule) -> frozenset[int]:
        """Through the inverted index, once per rule for every identity."""
        hit = self._subjects.get(id(r))
        if hit is None:
            hit = self._subjects[id(r)] = self._select(r.subject)
        return hit

    def _view(self, n: int, direction: str, port: int, protocol: str) -> _View:
        key = (n, direction, port, protocol)
        view = self._views.get(key)
        if view is None:
            view = self._build_view(n, direction, port, protocol)
            self._views[key] = view
        return view

    def _build_view(self, n: int, direction: str, port: int, protocol: str) -> _View:
        rules = self._rules_for(n)
        enforcing = [r for r in rules if r.enforces[direction]]
        view = _View(
            enforced=bool(enforcing),
            default_deny=any(r.default_deny[direction] for r in enforcing),
            enforcing=tuple(enforcing),
            empty_hint=tuple(r.policy for r in rules if direction in r.empty_sections),
        )
        view.rejected = self._rejected_in(self._eps[n].namespace)
        for r in enforcing:
            for kind, target in ((direction + "Deny", view.deny), (direction, view.allow)):
                for pr in r.sections[kind]:
                    entry = pr.port_entry(port, protocol)
                    if entry is None:
                        if pr.named_port_applies(protocol):
                            view.offline.append(f"{pr.ref} names a port")
                        continue
                    if pr.offline:
                        view.offline.append(f"{pr.ref} has {pr.offline} peers")
                        continue
                    if pr.requires:
                        view.offline.append(f"{pr.ref} uses {'from' if direction == 'ingress' else 'to'}Requires")
                    peers = None if pr.selectors == WILDCARD else frozenset().union(*map(self._select, pr.selectors))
                    l7 = isinstance(entry, PortEntry) and entry.l7
                    target.append((peers, pr, l7))
        return view

    # -- verdicts -----------------------------------------------------------------------------

    def allowed(self, src: int, dst: int, port: int, protocol: str) -> bool:
        """The fast path: interned identities in, a bool out (the same ``_judge`` as ``decide``)."""
        return (
            _judge(self._view(src, "egress", port, protocol), dst)[0]
            and _judge(self._view(dst, "ingress", port, protocol), src)[0]
        )

    def decide(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        protocol = protocol.upper()
        s, d = self.intern(src), self.intern(dst)
        eg = self.side(s, "egress", d, port, protocol)
        ing = self.side(d, "ingress", s, port, protocol)
        allowed = eg.allowed and ing.allowed
        exact = eg.exact and ing.exact
        flow = f"{src.display} -> {dst.display}:{port}/{protocol}"
        if allowed:
            reason = f"allowed {flow}: egress {eg.reason}; ingress {ing.reason}"
        else:
            blocking = [f"{name} {x.reason}" for name, x in (("egress", eg), ("ingress", ing)) if not x.allowed]
            reason = f"denied {flow}: " + "; ".join(blocking)
        if not exact:
            reason += " (not fully decided offline)"
        return Verdict(allowed, reason, eg, ing, exact)

    def enforcement(self, ep: Endpoint, direction: str) -> Side:
        """Whether ``ep`` is in effective default deny for ``direction`` (``allowed`` = it is), and why.

        Port-independent: enforcement and default deny are properties of the
        rules that select the pod, not of any one port.
        """
        rules = self._rules_for(self.intern(ep))
        enforcing = [r for r in rules if r.enforces[direction]]
        what = f"{direction} of {ep.display}"
        if not enforcing:
            view = _View(False, False, (), tuple(r.policy for r in rules if direction in r.empty_sections))
            view.rejected = self._rejected_in(ep.namespace)
            return Side(False, f"{what} is not enforced: {_not_enforced(view, direction)}")
        policies = tuple(dict.fromkeys(r.policy for r in enforcing))
        by = tuple(dict.fromkeys(r.policy for r in enforcing if r.default_deny[direction]))
        if not by:
            return Side(
                False, f"{what} is enforced but default-allow: every enforcing rule sets enableDefaultDeny.{direction}: false", policies
            )
        return Side(True, f"{what} is in default deny (by {', '.join(by)})", by)

    def side(self, subject: int, direction: str, peer: int, port: int, protocol: str) -> Side:
        """One direction's verdict with its reason."""
        view = self._view(subject, direction, port, protocol)
        allowed, how, pr, l7 = _judge(view, peer)
        what = f"of {self._eps[subject].display}"
        exact = not view.offline and not l7
        if how == "open":
            return Side(True, f"{what} not enforced: {_not_enforced(view, direction)}")
        if how == "deny":
            return Side(False, f"{what} denied by {pr.ref}", (pr.policy,), exact)
        if how == "allow":
            note = " (L7 rules on this port are not decided offline)" if l7 else ""
            return Side(True, f"{what} allowed by {pr.ref}{note}", (pr.policy,), exact)
        policies = tuple(dict.fromkeys(r.policy for r in view.enforcing))
        if how == "default-allow":
            return Side(
                True, f"{what} default-allow: every enforcing rule sets enableDefaultDeny.{direction}: false", policies, exact
            )
        by = ", ".join(dict.fromkeys(r.policy for r in view.enforcing if r.default_deny[direction]))
        return Side(
            False,
            f"{what} is in default deny (by {by}) and no rule allows {self._eps[peer].display} on {port}/{protocol}",
            policies,
            exact,
        )


@dataclass
class _View:
    """What applies to one pod identity, in one direction, on one port/protocol."""

    enforced: bool
    default_deny: bool
    enforcing: tuple[Rule, ...]
    empty_hint: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()
    deny: list[tuple[frozenset[int] | None, PeerRule, bool]] = field(default_factory=list)
    allow: list[tuple[frozenset[int] | None, PeerRule, bool]] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)


def _not_enforced(view: _View, direction: str) -> str:
    hints = [f"{p} has `{direction}: []`, which enforces nothing" for p in view.empty_hint]
    hints += [f"{ref} was rejected by Cilium: {why.removeprefix(ref).strip()}" for ref, why in view.rejected]
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"no selecting rule has a non-empty {direction} section{hint}"


def _judge(view: _View, peer: int) -> tuple[bool, str, PeerRule | None, bool]:
    """(allowed, how, deciding rule, L7?): the one place a side is decided."""
    if not view.enforced:
        return True, "open", None, False
    for peers, pr, _ in view.deny:
        if peers is None or peer in peers:
            return False, "deny", pr, False
    for peers, pr, l7 in view.allow:
        if peers is None or peer in peers:
            return True, "allow", pr, l7
    if not view.default_deny:
        return True, "default-allow", None, False
    return False, "default-deny", None, False


def decide(
    manifests: Sequence[Mapping[str, Any]],
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str = "TCP",
    version: tuple[int, int] = DEFAULT_VERSION,
) -> Verdict:
    """Whether ``src`` may connect to ``dst`` on ``port``/``protocol`` under ``manifests``."""
    return Engine(manifests, version, (src, dst)).decide(src, dst, port, protocol)
