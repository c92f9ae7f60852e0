"""CNP/CCNP manifests -> compiled rules, with what Cilium rejects and what each version drops.

- Within a rule, peers AND ports; rules OR. No L3 field with ``toPorts`` is
  an L3 wildcard; an explicit empty peer list selects nothing (cilium#29608);
  a rule mixing two L3 kinds is rejected, and so is the whole object
  (api/rule_validation.go Sanitize).
- Ports: a string; protocol omitted or ``ANY`` is TCP, UDP and SCTP;
  ``endPort`` is inclusive; ``"0"`` wildcards the port only.
- Version facts (``enableDefaultDeny``, ``endPort``, empty rules) come from
  ``policies.cilium_versions``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.cilium_versions import CiliumFeatures
from policies.memo import Memo
from policies.verdict import fqdn, networkpolicy
from policies.verdict.identity import NS_KEY
from policies.verdict.selectors import PolicyRejected, Requirement, Selector, parse_selector, peer_selector, subject_selector

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
ALL_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
POD_ENTITIES = frozenset({"all", "cluster"})

_INGRESS_L3 = ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet", "fromNodes", "fromGroups")
_EGRESS_L3 = ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toServices", "toFQDNs", "toNodes", "toGroups")
_CIDR_KINDS = ("fromCIDR", "fromCIDRSet", "toCIDR", "toCIDRSet")
_OFFLINE = {
    "toServices": "service",
    "fromGroups": "group",
    "toGroups": "group",
}


@dataclass(frozen=True)
class PortEntry:
    lo: int
    hi: int
    protocols: frozenset[str]
    named: str | None = None
    http: tuple[Mapping[str, Any], ...] | None = None
    """``rules.http``: the requests this entry admits (None: no HTTP rules)."""
    other_l7: str | None = None
    """L7 rules other than HTTP (Kafka, generic L7, TLS, an Envoy ``listener``), which no record decides: what they are."""
    dns: tuple[Mapping[str, Any], ...] | None = None
    """``rules.dns``: the names the DNS proxy lets a pod look up (None: no DNS rules). They restrict
    names, not whether the DNS server is reached, so the L3/L4 verdict stays exact."""

    @property
    def l7(self) -> bool:
        """Whether the entry sends its traffic to the L7 proxy (requests are judged one by one)."""
        return self.http is not None or self.other_l7 is not None

    def matches(self, port: int, protocol: str, named: Mapping[str, tuple[int, str]] | None = None) -> bool:
        """Whether the entry admits ``port``/``protocol``; a named port only through ``named``
        (the destination's own port names, when they are known)."""
        if protocol not in self.protocols:
            return False
        if self.named is not None:
            return named is not None and named.get(self.named) == (port, protocol)
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
    requires: tuple[Selector, ...] = ()
    """from/toRequires: selectors every peer an endpoint selector of any allow (or, of a deny rule, any deny)
    of the same subject and direction must also match (pkg/policy/rule.go: Cilium appends them to each
    ``from/toEndpoints`` selector; entities, CIDRs and L4-only rules are untouched)."""
    from_endpoints: bool = False
    """The peers are from/toEndpoints selectors (the ones ``requires`` narrow)."""
    entities: frozenset[str] = frozenset()
    """from/toEntities: reserved identities, plus every pod for ``cluster`` and ``all``."""
    cidrs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """from/toCIDR(Set): (cidr, excepts). They never select pods or nodes, only addresses outside."""
    authenticated: bool = False
    """``authentication.mode`` other than ``disabled``: the allow also needs mutual authentication."""
    fqdns: tuple[Mapping[str, Any], ...] = ()
    """toFQDNs selectors (``matchName``/``matchPattern``): addresses outside the cluster, by the DNS names
    the source's DNS proxy saw them under (``policies.verdict.fqdn``)."""
    icmps: tuple[tuple[str, str], ...] = ()
    """``icmps[].fields``: (family, type) pairs, each a policy-map key of its own (ICMP or ICMPv6, the type)."""
    nodes: bool = False
    """The selectors are from/toNodes: they select nodes (host, remote-node) by their labels, never pods."""

    def port_entry(self, port: int, protocol: str, named: Mapping[str, tuple[int, str]] | None = None) -> PortEntry | None | bool:
        """The matching entry, True when every port matches, None when none does."""
        if self.ports is None:
            return True
        for e in self.ports:
            if e.matches(port, protocol, named):
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
    node_subject: Selector | None = None
    """A host policy's ``nodeSelector``: the nodes whose host endpoint it applies to (with the host firewall)."""


def policy_ref(m: Mapping[str, Any]) -> str:
    meta = m.get("metadata") or {}
    if m.get("kind") == CCNP:
        return f"ccnp/{meta.get('name', '?')}"
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


_COMPILED: Memo[list[Rule]] = Memo(50_000)
"""Policies compiled before, by their JSON and the Cilium version: the matrix, the probes, the budget and
the guardrails each build an engine over the same policies."""


def compile_policy(manifest: Mapping[str, Any], cilium: CiliumFeatures) -> list[Rule]:
    """A CNP/CCNP (or a Kubernetes NetworkPolicy, as Cilium translates it) -> its rules; raises
    ``PolicyRejected`` where Cilium rejects the object. Rules are immutable, so one compiled object serves
    every equal policy."""
    try:
        key = (json.dumps(manifest, sort_keys=True), cilium)
    except (TypeError, ValueError):
        return _compile_policy(manifest, cilium)  # not JSON data: compiled (or rejected) every time
    return _COMPILED.get(key, lambda: _compile_policy(manifest, cilium))


def _compile_policy(manifest: Mapping[str, Any], cilium: CiliumFeatures) -> list[Rule]:
    if manifest.get("kind") == networkpolicy.KIND:
        manifest = networkpolicy.to_cilium(manifest)
    kind = manifest.get("kind")
    ref = policy_ref(manifest)
    namespace = None if kind == CCNP else (manifest.get("metadata") or {}).get("namespace", "default")
    specs: list[tuple[str, Any]] = []
    if manifest.get("spec") is not None:
        specs.append(("spec", manifest["spec"]))
    specs += [(f"specs[{i}]", s) for i, s in enumerate(manifest.get("specs") or [])]
    if not specs:
        raise PolicyRejected(f"{ref}: has neither spec nor specs")
    return [_compile_rule(ref, namespace, kind, where, spec, cilium) for where, spec in specs]


def _compile_rule(ref, namespace, kind, where, spec, cilium: CiliumFeatures) -> Rule:
    if not isinstance(spec, Mapping):
        raise PolicyRejected(f"{ref} {where}: must be a mapping")
    has_ep, has_node = spec.get("endpointSelector") is not None, spec.get("nodeSelector") is not None
    if has_ep == has_node:
        raise PolicyRejected(f"{ref} {where}: needs exactly one of endpointSelector or nodeSelector")
    if has_node and kind == CNP:
        raise PolicyRejected(f"{ref} {where}: a CiliumNetworkPolicy cannot use nodeSelector")
    subject = subject_selector(spec["endpointSelector"], namespace, f"{where}.endpointSelector") if has_ep else None
    node_subject = None if has_ep else parse_selector(spec["nodeSelector"], f"{where}.nodeSelector")

    sections: dict[str, tuple[PeerRule, ...]] = {}
    for section in ("ingress", "ingressDeny", "egress", "egressDeny"):
        entries = spec.get(section)
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise PolicyRejected(f"{ref} {where}.{section}: must be a list")
        at = section if where == "spec" else f"{where}.{section}"  # specs[1].ingress[0]: which spec, too
        sections[section] = tuple(
            _compile_peer_rule(ref, namespace, f"{at}[{i}]", e, section, cilium) for i, e in enumerate(entries)
        )
    if cilium.rejects_empty_rules and not any(sections.values()):
        raise PolicyRejected(
            f"{ref} {where}: has no ingress, ingressDeny, egress or egressDeny rule "
            f"(Cilium {cilium.text} rejects it)"
        )
    enforces = {
        "ingress": bool(sections["ingress"] or sections["ingressDeny"]),
        "egress": bool(sections["egress"] or sections["egressDeny"]),
    }
    flags = spec.get("enableDefaultDeny") or {}
    if not cilium.enable_default_deny:
        flags = {}  # this version's CRD has no such field: the API server prunes it
    default_deny = {d: flags.get(d) is not False for d in ("ingress", "egress")}
    empty = tuple(s for s in ("ingress", "egress") if spec.get(s) == [] and not sections[s + "Deny"])
    return Rule(ref + ("" if where == "spec" else f" {where}"), namespace, subject, sections, enforces, default_deny, empty, node_subject)


def _compile_peer_rule(ref, namespace, where, entry, section, cilium: CiliumFeatures) -> PeerRule:
    if not isinstance(entry, Mapping):
        raise PolicyRejected(f"{ref} {where}: must be a mapping")
    ingress = section.startswith("ingress")
    l3_kinds = _INGRESS_L3 if ingress else _EGRESS_L3
    present = [k for k in l3_kinds if entry.get(k)]
    if len(present) > 1:
        raise PolicyRejected(f"{ref} {where}: combining {present[0]} and {present[1]} is not supported (Cilium rejects the policy)")
    ports = _compile_ports(ref, where, entry.get("toPorts"), cilium)
    endpoints_key = "fromEndpoints" if ingress else "toEndpoints"
    entities_key = "fromEntities" if ingress else "toEntities"
    nodes_key = "fromNodes" if ingress else "toNodes"
    offline = None
    fqdns: tuple[Mapping[str, Any], ...] = ()
    entities: frozenset[str] = frozenset()
    cidrs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if any(k in entry for k in l3_kinds):
        selectors: tuple[Selector, ...] | str = ()
        if entry.get(endpoints_key) is not None:
            selectors = tuple(
                peer_selector(s, namespace, f"{where}.{endpoints_key}[{i}]") for i, s in enumerate(entry[endpoints_key])
            )
        elif entry.get(entities_key):
            entities = frozenset(str(e) for e in entry[entities_key])
            if "all" in entities:
                selectors = WILDCARD
            elif "cluster" in entities:
                selectors = (Selector(frozenset({Requirement("k8s", NS_KEY, "Exists")})),)
        elif any(entry.get(k) for k in _CIDR_KINDS):
            cidrs = _compile_cidrs(ref, where, entry, ingress)
        elif not ingress and entry.get("toFQDNs"):
            fqdns = _compile_fqdns(ref, where, entry["toFQDNs"])
        elif entry.get(nodes_key) is not None:
            # Node labels, any source (k8s utils: NewESFromK8sLabelSelector with no prefix), no namespace.
            selectors = tuple(parse_selector(s, f"{where}.{nodes_key}[{i}]") for i, s in enumerate(entry[nodes_key]))
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
    requires_key = "fromRequires" if ingress else "toRequires"
    # Namespace-scoped as an endpoint selector is (k8s utils getEndpointSelector), reserved keys included.
    requires = tuple(peer_selector(s, namespace, f"{where}.{requires_key}[{i}]") for i, s in enumerate(entry.get(requires_key) or ()))
    mode = (entry.get("authentication") or {}).get("mode") if isinstance(entry.get("authentication"), Mapping) else None
    authenticated = mode not in (None, "disabled")
    icmps = tuple(
        (str(f.get("family") or "IPv4"), str(f.get("type")))
        for group in entry.get("icmps") or () if isinstance(group, Mapping)
        for f in group.get("fields") or () if isinstance(f, Mapping)
    )
    return PeerRule(ref, where, section.endswith("Deny"), selectors, offline, ports, requires, entry.get(endpoints_key) is not None,
                    entities, cidrs, authenticated, fqdns, icmps, nodes=entry.get(nodes_key) is not None)


def _compile_fqdns(ref, where, raw) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(raw, list):
        raise PolicyRejected(f"{ref} {where}.toFQDNs: must be a list")
    out = []
    for i, sel in enumerate(raw):
        if not isinstance(sel, Mapping) or not (sel.get("matchName") or sel.get("matchPattern")):
            raise PolicyRejected(f"{ref} {where}.toFQDNs[{i}]: needs matchName or matchPattern")
        why = fqdn.pattern_problem(str(sel["matchPattern"])) if sel.get("matchPattern") else None
        if why:
            raise PolicyRejected(f"{ref} {where}.toFQDNs[{i}].matchPattern: {why}")
        out.append({k: str(v) for k, v in sel.items() if k in ("matchName", "matchPattern") and v})
    return tuple(out)


def _compile_cidrs(ref, where, entry, ingress) -> tuple[tuple[str, tuple[str, ...]], ...]:
    import ipaddress

    prefix = "from" if ingress else "to"
    raw = [(c, ()) for c in entry.get(f"{prefix}CIDR") or []]
    raw += [(c.get("cidr"), tuple(c.get("except") or ())) for c in entry.get(f"{prefix}CIDRSet") or [] if isinstance(c, Mapping)]
    out = []
    for cidr, excepts in raw:
        try:
            out.append((str(ipaddress.ip_network(str(cidr), strict=False)), tuple(str(ipaddress.ip_network(str(e), strict=False)) for e in excepts)))
        except ValueError:
            raise PolicyRejected(f"{ref} {where}: {cidr!r} is not a CIDR") from None
    return tuple(out)


def _compile_ports(ref, where, to_ports, cilium: CiliumFeatures) -> tuple[PortEntry, ...] | None:
    if not to_ports:
        return None
    out = []
    for i, pr in enumerate(to_ports):
        rules = pr.get("rules") or {}
        # DNS rules restrict which names a pod may look up, not whether it reaches the DNS server: the
        # L3/L4 verdict stays exact. HTTP rules decide per request (judged against a capture's
        # requests); Kafka, generic L7 and TLS settings are not decided from a record.
        http = tuple(h for h in rules.get("http") or () if isinstance(h, Mapping)) if rules.get("http") else None
        dns = tuple(d for d in rules.get("dns") or () if isinstance(d, Mapping)) if rules.get("dns") else None
        other = [k for k in ("kafka", "l7") if rules.get(k)] + [k for k in ("serverNames", "terminatingTLS", "originatingTLS", "listener") if pr.get(k)]
        other_l7 = ", ".join(("rules." + k if k in ("kafka", "l7") else k) for k in other) or None
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
                out.append(PortEntry(0, 0, protocols, named=port, http=http, other_l7=other_l7, dns=dns))
                continue
            lo = int(port)
            if lo > 65535:
                raise PolicyRejected(f"{at}.port: {port} is out of range")
            end = pp.get("endPort")
            hi = max(lo, end) if cilium.end_port and isinstance(end, int) else lo  # an endPort below the port: the port alone
            out.append(PortEntry(lo, hi, protocols, http=http, other_l7=other_l7, dns=dns))
    return tuple(out)
