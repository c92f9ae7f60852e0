"""The datapath budget: policy-map entries per endpoint, against the limit AKS's Cilium has.

Cilium keeps one policy-map entry per key, a key being (peer identity, direction, protocol,
port or port prefix), after merging every rule that selects the endpoint, from every kind of
policy (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy), allow and deny
(pkg/policy/mapstate.go; pkg/maps/policymap). At most ``POLICY_MAP_ENTRIES`` (16,384, fixed
on AKS) fit; an overflow drops traffic silently. This module counts those keys:

- **identities**: a peer selector counts the identities it selects among those the estimate
  knows: the stack's pods, the pods it polices but does not deploy, the stranger of each
  managed namespace, every reserved identity (host, remote-node, kube-apiserver, health, init,
  ingress, unmanaged, world), each CIDR of a rule (its own CIDR identity) and, per toFQDNs
  entry, ``ADDRESSES_PER_NAME`` addresses. Pods nobody declared are ``other_identities`` (the
  stack's ``zeroTrust.otherIdentities``; default ``default_other_identities``): every selector
  that can reach beyond the managed namespaces (no namespace named, namespaces chosen by
  label, ``cluster``, ``all``) counts all of them; one that names an unmanaged namespace counts
  one more than it knows there. A rule with no L3 restriction is one wildcard-identity key.
- **ports**: each port is a key per protocol: ``ANY`` is TCP, UDP and SCTP (Cilium expands it
  so, pkg/policy/rule.go, since SCTP joined; two on older versions, so three is the safe
  side); a range is one key per aligned power-of-two block (Cilium keys ranges by prefix);
  no port is one key; each ICMP type is a key.
- **Cilium's own**: the local host's ingress entry (allow-localhost) when ingress is enforced.

So it is an **upper bound** as long as the stated estimates hold (no more other identities
than said, no name resolving to more addresses than said): keys are counted per rule and
merged, not reduced by the entries Cilium drops as covered by a wider or a deny entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.cilium_versions import DEFAULT_CILIUM, POLICY_MAP_ENTRIES, Version
from policies.config import azure
from policies.render.podspec import POD_TEMPLATE_KINDS, pod_labels
from policies.render import OTHER_IDENTITIES_ANNOTATION
from policies.verdict import CCNP, CNP, NS_KEY, ENTITIES, Endpoint, Engine, entity, stranger
from policies.verdict.compile import PeerRule, PortEntry
from policies.verdict.networkpolicy import KIND as NETWORK_POLICY

ADDRESSES_PER_NAME = 16
"""Addresses one toFQDNs entry is assumed to select at a time (each becomes an identity of its own)."""


def default_other_identities(namespaces: int) -> int:
    """The default estimate of the cluster's identities the stack does not know: AKS's own, and one per
    managed namespace (``StackConfig.other_identities`` says the same)."""
    return azure.AKS_SYSTEM_IDENTITIES + namespaces


@dataclass(frozen=True)
class WorkloadBudget:
    workload: str
    """``namespace/name`` of the object that makes the pods."""
    entries: int

    @property
    def share(self) -> float:
        return self.entries / POLICY_MAP_ENTRIES


@dataclass(frozen=True)
class Budget:
    limit: int
    identities: int
    """Security identities the stack's workloads create (distinct label sets)."""
    workloads: tuple[WorkloadBudget, ...]
    """Every workload, the largest first."""
    other_identities: int = 0
    """The identities counted for pods nobody declared (the stated estimate)."""

    def top(self, n: int = 5) -> tuple[WorkloadBudget, ...]:
        return self.workloads[:n]


PortKey = tuple[str, str]
"""(protocol, port or port block): ``("TCP", "8000/8")`` is ports 8000-8007."""


def port_keys(e: PortEntry) -> set[PortKey]:
    """The keys of one port entry: per protocol (ANY compiles to all three), per aligned block of a range."""
    if e.named is not None:
        blocks = [e.named]  # a named port is one port per destination
    elif e.lo == 0 or e.hi <= e.lo:
        blocks = [str(e.lo)]
    else:
        blocks, lo = [], e.lo
        while lo <= e.hi:
            size = lo & -lo  # the largest power of two lo is aligned to (lo > 0)
            while size > e.hi - lo + 1:
                size //= 2
            blocks.append(f"{lo}/{size}")
            lo += size
    return {(p, b) for p in e.protocols for b in blocks}


def rule_port_keys(pr: PeerRule) -> set[PortKey]:
    """Every key a peer rule's ports make: none given is one key for every port and protocol."""
    keys: set[PortKey] = set()
    if pr.ports is None and not pr.icmps:
        keys.add(("ANY", "0"))
    for e in pr.ports or ():
        keys |= port_keys(e)
    keys |= {("ICMPv6" if family == "IPv6" else "ICMP", kind) for family, kind in pr.icmps}
    return keys


def _name(selector: Mapping[str, Any]) -> str:
    return str(selector.get("matchName") or selector.get("matchPattern"))


def address_identities(engine: Engine) -> set[tuple[str, ...]]:
    """Every CIDR and toFQDNs identity any rule allocates: each carries ``reserved:world`` too."""
    out: set[tuple[str, ...]] = set()
    for rule in engine.all_rules():
        for section in rule.sections.values():
            for pr in section:
                out |= {("cidr", c) for c, _ in pr.cidrs}
                out |= {("fqdn", _name(sel), str(k)) for sel in pr.fqdns for k in range(ADDRESSES_PER_NAME)}
    return out


def _reaches_beyond(pr: PeerRule, managed: frozenset[str]) -> tuple[bool, set[str]]:
    """Whether a peer rule that restricts its peers (not a wildcard) may select pods nobody declared: (beyond
    any named namespace, the unmanaged namespaces it names)."""
    if pr.entities & {"cluster", "all"}:
        return True, set()
    beyond, named = False, set()
    for sel in pr.selectors:
        pins = [r for r in sel.requirements if r.source in ("k8s", "any") and r.key == NS_KEY and r.op == "In"]
        if not pins:
            beyond = True
            continue
        named |= {ns for r in pins for ns in r.values} - managed
    return beyond, named


def entries(engine: Engine, ep: Endpoint, managed: frozenset[str], other_identities: int, world: set[tuple[str, ...]]) -> int:
    """The policy-map keys ``ep``'s pods need (an upper bound under the stated estimates, see above);
    ``world``: the address identities the world entity also selects (``address_identities``, computed once
    per estimate)."""
    keys: set[tuple[str, Any, PortKey]] = set()
    enforced_ingress = False
    for rule in engine.rules_selecting(ep):
        enforced_ingress |= rule.enforces["ingress"]
        for direction in ("ingress", "egress"):
            for pr in (*rule.sections[direction], *rule.sections[direction + "Deny"]):
                ports = rule_port_keys(pr)
                ids = engine.peer_identities(pr)
                if ids is None:
                    peers: set[Any] = {"*"}  # no L3 restriction: the one wildcard-identity key
                else:
                    peers = set(ids)
                    peers |= {("cidr", c) for c, _ in pr.cidrs}
                    peers |= {("fqdn", _name(sel), str(k)) for sel in pr.fqdns for k in range(ADDRESSES_PER_NAME)}
                    if pr.entities & {"world", "world-ipv4", "world-ipv6"}:
                        peers |= world
                    beyond, unmanaged = _reaches_beyond(pr, managed)
                    if beyond:
                        peers |= {("other", k) for k in range(other_identities)}
                    peers |= {("other-in", ns) for ns in unmanaged}  # one identity there the stack does not know
                keys |= {(direction, peer, port) for peer in peers for port in ports}
    return len(keys) + (1 if enforced_ingress else 0)  # allow-localhost: the local host's ingress entry


def estimate(
    objects: Iterable[Mapping[str, Any]],
    version: Version = DEFAULT_CILIUM,
    elsewhere: Iterable[Endpoint] = (),
    other_identities: int | None = None,
) -> Budget:
    """The budget of the policies and pod-making objects among ``objects`` (manifests, as applied), and of
    the workloads deployed ``elsewhere`` whose pods the policies select. ``other_identities``: the cluster's
    identities the stack does not know (default: the Namespaces' annotation, else ``default_other_identities``)."""
    objects = list(objects)
    policies = [o for o in objects if o.get("kind") in (CNP, CCNP, NETWORK_POLICY)]
    workloads = [o for o in objects if o.get("kind") in POD_TEMPLATE_KINDS and o.get("kind") != "Job"]
    endpoints = {}
    for o in workloads:
        meta = o.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")  # where kubectl puts an object that names none
        endpoints[f"{namespace}/{meta.get('name')}"] = Endpoint(namespace, dict(pod_labels(o)))
    for ep in elsewhere:
        endpoints[f"{ep.namespace}/{ep.name}"] = ep
    managed = frozenset(ep.namespace for ep in endpoints.values())
    if other_identities is None:
        other_identities = _annotated(objects)
    if other_identities is None:
        other_identities = default_other_identities(len(managed))
    kube_dns = Endpoint("kube-system", {"k8s-app": "kube-dns"})  # every pod's DNS peer
    universe = [*endpoints.values(), kube_dns, *(stranger(ns) for ns in sorted(managed))]
    universe += [entity(r) for r in ENTITIES]
    engine = Engine(policies, version, universe)
    identities = len({e.identity() for e in endpoints.values()})
    world = address_identities(engine)
    rows = sorted(
        (WorkloadBudget(ref, entries(engine, ep, managed, other_identities, world)) for ref, ep in endpoints.items()),
        key=lambda w: (-w.entries, w.workload),
    )
    return Budget(POLICY_MAP_ENTRIES, identities, tuple(rows), other_identities)


def _annotated(objects: list[Mapping[str, Any]]) -> int | None:
    for o in objects:
        if o.get("kind") == "Namespace":
            value = ((o.get("metadata") or {}).get("annotations") or {}).get(OTHER_IDENTITIES_ANNOTATION)
            if isinstance(value, str) and value.isdigit():
                return int(value)
    return None


