"""Replay observed connections against a plan: what would the planned policies drop that the
applications really did, and which declared flows were never seen?

Each observed end is named in the stack's terms: a workload (by its ``app`` label or its
owning workload's name), a peer (pods of an unmanaged namespace by labels, an address range
by its address, an entity), kube-dns, or an unknown pod. The verdict engine then decides
every distinct connection once, with Cilium's semantics, as it will be enforced.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.cilium_versions import Version
from policies.config import StackConfig, outside_names
from policies.matrix import KUBE_DNS, WorkloadPods
from policies.observed import End, Observations
from policies.verdict import ENTITIES, Endpoint, Engine, addresses, entity


@dataclass(frozen=True)
class Replayed:
    src: str
    dst: str
    port: int
    protocol: str
    count: int
    first: str
    last: str
    dropped_by: str
    """Why the plan would drop it: the verdict engine's reason."""
    ends: tuple[End, End] | None = field(default=None, compare=False, repr=False)
    """The observed ends, as read (for ``learn``)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.src, "to": self.dst, "port": self.port, "protocol": self.protocol, "count": self.count,
            "firstSeen": self.first, "lastSeen": self.last, "droppedBy": self.dropped_by,
        }


@dataclass(frozen=True)
class ReplayReport:
    connections: int
    would_drop: tuple[Replayed, ...]
    never_observed: tuple[str, ...]
    unknown: tuple[str, ...]
    """Observed ends in managed namespaces that match no workload (candidates for new workloads)."""
    undecided: tuple[Replayed, ...] = ()
    """Denied offline, but a rule the engine cannot decide offline (toFQDNs, L7, named ports) may allow it."""


def name_end(end: End, cfg: StackConfig, pods: Mapping[str, WorkloadPods]) -> tuple[str, Endpoint, bool, tuple[str, ...]]:
    """(name in the stack's terms, the endpoint the verdict engine judges, whether it is an unknown pod
    of a managed namespace, the entity peers it also counts as for "never observed").

    An outside address is judged as that address (so CIDR rules decide exactly) and named by the
    address peer that holds it, else by itself; entity peers (``world``...) are its aliases.
    """
    if end.reserved is not None:
        aliases = tuple(name for name, p in sorted(cfg.peers.items()) if p.entity == end.reserved)
        if end.reserved == "world" and end.ip:
            ip = ipaddress.ip_address(end.ip)
            for name, p in sorted(cfg.peers.items()):
                if p.cidrs and any(ip in ipaddress.ip_network(c) for c in p.cidrs) and not any(ip in ipaddress.ip_network(e) for e in p.except_):
                    return name, addresses(name, (host_cidr(end.ip),)), False, aliases
            label = f"world {end.ip}" + (f" ({', '.join(end.names)})" if end.names else "")
            return label, addresses(label, (host_cidr(end.ip),)), False, aliases
        if aliases:
            return aliases[0], entity(end.reserved, display=aliases[0]), False, aliases
        reserved = end.reserved if end.reserved in ENTITIES else "world"
        return reserved, entity(reserved), False, ()
    labels = dict(end.labels)
    if end.namespace == "kube-system" and (labels.get("k8s-app") == "kube-dns" or end.workload == "coredns"):
        return KUBE_DNS, Endpoint("kube-system", {"k8s-app": "kube-dns"}, name=KUBE_DNS), False, ()
    for name, w in cfg.workloads.items():
        if w.namespace == end.namespace and (end.workload == name or labels.get("app") == name):
            return name, pods[name].endpoint() if name in pods else Endpoint(w.namespace, {"app": name}, name=name), False, ()
    for name, p in sorted(cfg.peers.items()):
        if p.namespace is not None and p.namespace == end.namespace and p.labels.items() <= labels.items():
            return name, Endpoint(p.namespace, labels or dict(p.labels), name=name), False, ()
    managed = end.namespace in cfg.namespaces
    return end.display, Endpoint(end.namespace or "default", labels, name=end.workload or ""), managed, ()


def _observed(source: str, to: str | None, fqdns: Sequence[str] | None, port: int | None, protocol: str, seen: set) -> bool:
    """Whether a declared flow matches an observed connection (a toFqdns flow: any of its names)."""
    if to is not None:
        return (source, to, port, protocol) in seen
    names = {d.removeprefix("name:") for s, d, p, proto in seen if s == source and p == port and proto == protocol and d.startswith("name:")}
    return any(outside_names.name_matches(pattern, n) for pattern in fqdns or () for n in names)


def host_cidr(ip: str) -> str:
    """The one-address range of an address: ``/32`` or ``/128``."""
    return f"{ip}/{128 if ':' in ip else 32}"


def replay(
    cfg: StackConfig,
    policies: Sequence[Mapping[str, Any]],
    workloads: Sequence[WorkloadPods],
    obs: Observations,
    version: Version,
) -> ReplayReport:
    pods = {w.name: w for w in workloads}
    named, seen = [], set()
    for c in obs.connections.values():
        src, src_ep, src_unknown, src_aliases = name_end(c.src, cfg, pods)
        dst, dst_ep, dst_unknown, dst_aliases = name_end(c.dst, cfg, pods)
        unknowns = [n for n, u in ((src, src_unknown), (dst, dst_unknown)) if u]
        for s_name in (src, *src_aliases):
            for d_name in (dst, *dst_aliases, *(f"name:{n.rstrip('.').lower()}" for n in c.dst.names)):
                seen.add((s_name, d_name, c.port, c.protocol))
        named.append((c, src, src_ep, dst, dst_ep, unknowns))
    engine = Engine(policies, version, [e for _, _, s, _, d, _ in named for e in (s, d)])
    drops, undecided, unknown = [], [], set()
    for c, src, src_ep, dst, dst_ep, unknowns in named:
        unknown.update(unknowns)
        v = engine.decide(src_ep, dst_ep, c.port, c.protocol)
        if not v.allowed:
            row = Replayed(src, dst, c.port, c.protocol, c.count, c.first, c.last, v.reason, (c.src, c.dst))
            (drops if v.exact else undecided).append(row)
    declared = [
        f"{f.source} -> {f.to or ','.join(f.to_fqdns or ())}:{cfg.flow_port(f)}/{cfg.flow_protocol(f)}"
        for f in cfg.flows
        if not _observed(f.source, f.to, f.to_fqdns, cfg.flow_port(f), cfg.flow_protocol(f), seen)
    ]

    def ordered(rows: list[Replayed]) -> tuple[Replayed, ...]:
        return tuple(sorted(rows, key=lambda r: (-r.count, r.src, r.dst, r.port)))

    return ReplayReport(len(obs.connections), ordered(drops), tuple(declared), tuple(sorted(unknown)), ordered(undecided))
