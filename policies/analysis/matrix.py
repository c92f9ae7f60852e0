"""The connectivity matrix of a stack: what is declared versus what Cilium enforces.

Sources are every workload's pods plus the stranger (an unlabelled pod, named
``stranger@<namespace>``) of each workload namespace; targets are every workload port plus kube-dns (53/UDP and
53/TCP). Each cell is decided by the verdict engine over the policies as they
would be applied. The declared flows must equal the allowed cells exactly:
anything allowed but not declared, or declared but denied, is a finding that
names the flow and the policy responsible.
"""

from __future__ import annotations

import gc

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.config import StackConfig
from policies.cilium_versions import DEFAULT_CILIUM, Version
from policies.render.podspec import pod_template
from policies.verdict import Endpoint, Engine, addresses, entity, stranger, stranger_name

KUBE_DNS = "kube-dns"
DNS_PORTS = ((53, "UDP"), (53, "TCP"))

FlowKey = tuple[str, str, int, str]  # (source, target, port, protocol)


@dataclass(frozen=True)
class WorkloadPods:
    """A workload as the policies see it: its pods' namespace and labels, and what it serves."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: tuple[tuple[int, str], ...]
    port_names: tuple[tuple[str, int, str], ...] = ()
    """(name, port, protocol) of every named container port."""

    def endpoint(self) -> Endpoint:
        named = {n: (port, proto) for n, port, proto in self.port_names}
        return Endpoint(self.namespace, dict(self.labels), name=self.name, named_ports=named)


def workloads_from_manifests(objects: Iterable[Mapping[str, Any]]) -> list[WorkloadPods]:
    """Workloads from the Deployments (and StatefulSets/DaemonSets) about to be applied."""
    out = []
    for o in objects:
        if o.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        template = pod_template(o)
        container_ports = [p for c in template["spec"]["containers"] for p in c.get("ports") or []]
        ports = tuple((int(p["containerPort"]), p.get("protocol", "TCP")) for p in container_ports)
        names = tuple((p["name"], int(p["containerPort"]), p.get("protocol", "TCP")) for p in container_ports if p.get("name"))
        out.append(
            WorkloadPods(
                o["metadata"]["name"], o["metadata"]["namespace"], dict(template["metadata"].get("labels") or {}), ports, names
            )
        )
    return sorted(out, key=lambda w: (w.namespace, w.name))


def workloads_elsewhere(cfg: StackConfig) -> list[WorkloadPods]:
    """The workloads deployed elsewhere (``selector``), as the policies see them: their selector and the ports
    their pods listen on."""
    return [
        WorkloadPods(
            name, w.namespace, dict(w.selector), tuple((s.container_port, s.protocol) for s in w.served),
            tuple((s.name, s.container_port, s.protocol) for s in w.served),
        )
        for name, w in sorted(cfg.workloads.items())
        if w.selector is not None
    ]


def workload_pods(cfg: StackConfig, objects: Iterable[Mapping[str, Any]]) -> list[WorkloadPods]:
    """Every workload of the stack: those its objects deploy, and those deployed elsewhere."""
    return sorted(workloads_from_manifests(objects) + workloads_elsewhere(cfg), key=lambda w: (w.namespace, w.name))


def fmt(key: FlowKey) -> str:
    src, dst, port, proto = key
    return f"{src} -> {dst}:{port}/{proto}"


@dataclass(frozen=True)
class Finding:
    kind: str  # "undeclared", "missing", "rejected"
    flow: str
    message: str


@dataclass(frozen=True)
class Staging:
    """The staged namespaces of a stack, and what their policies allow while staged (default deny off)."""

    namespaces: tuple[str, ...]
    allowed_now: frozenset[FlowKey]


@dataclass
class Matrix:
    sources: list[str]
    targets: list[tuple[str, int, str]]
    allowed: set[FlowKey]
    expected: set[FlowKey]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cells: int = 0
    namespaces: dict[str, str] = field(default_factory=dict)
    """The namespace of every source and target that has one (peers outside the pods have none)."""
    staging: Staging | None = None
    """With staged namespaces: the cells above are judged with every namespace enforced (what the rules
    mean), and this holds what is allowed meanwhile."""

    @property
    def live_allowed(self) -> set[FlowKey] | frozenset[FlowKey]:
        """What the policies as applied allow now (staged namespaces included)."""
        return self.staging.allowed_now if self.staging is not None else self.allowed

    @property
    def enforcing_denies(self) -> list[FlowKey]:
        """Cells allowed now only because a staged namespace has default deny off: denied once enforced."""
        return sorted(self.live_allowed - self.allowed)

    def where(self, name: str) -> str:
        """``namespace/name`` for reports, or the bare name of an identity outside the pods."""
        ns = self.namespaces.get(name)
        return f"{ns}/{name}" if ns and not name.startswith(f"{ns}/") and not name.endswith(f"@{ns}") else name

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class PeerEndpoint:
    """A peer as a row (a source) and a column per port flows reach it on."""

    name: str
    endpoint: Endpoint
    ports: tuple[tuple[int, str], ...]
    source: bool = True
    """Whether traffic from it reaches pods with its identity (not so for an API server outside the cluster)."""


def peer_endpoints(cfg: StackConfig) -> tuple[list[PeerEndpoint], list[str]]:
    """The stack's peers as matrix endpoints, and notes for those the matrix cannot model.

    ``cluster`` stands for every pod and node at once, so it gets no row of its own.
    """
    out, notes = [], []
    for name, p in sorted(cfg.peers.items()):
        ports = tuple(sorted({(cfg.flow_port(f), cfg.flow_protocol(f)) for f in cfg.flows if f.to == name}))
        if p.namespace is not None:
            ep = Endpoint(p.namespace, dict(p.labels), name=name)
        elif p.cidrs is not None:
            ep = addresses(name, tuple(p.cidrs), tuple(p.except_))
        elif p.entity == "cluster":
            notes.append(f"{name}: the cluster entity is every pod and node; its flows are judged in the workload rows")
            continue
        elif p.entity == "kube-apiserver" and cfg.api_server_outside:
            notes.append(f"{name}: the API server reaches pods through the nodes on AKS; only traffic to it is judged")
            out.append(PeerEndpoint(name, entity(p.entity, display=name, outside=True), ports, source=False))
            continue
        else:
            ep = entity(p.entity, display=name)
        out.append(PeerEndpoint(name, ep, ports))
    return out, notes


def declared_flows(cfg: StackConfig, workloads: Sequence[WorkloadPods]) -> set[FlowKey]:
    """The flows the stack declares, as matrix cells (DNS included)."""
    modelled = {n for n, p in cfg.peers.items() if p.entity != "cluster"}
    out = {
        (f.source, f.to, cfg.flow_port(f), cfg.flow_protocol(f))
        for f in cfg.flows
        if f.to is not None and all(x in cfg.workloads or x in modelled for x in (f.source, f.to))
    }
    # Address ranges outside the cluster are part of the world: a flow from the world declares theirs too.
    world = {n for n, p in cfg.peers.items() if p.entity == "world"}
    ranges = [n for n, p in cfg.peers.items() if p.cidrs is not None]
    out |= {(r, dst, port, proto) for src, dst, port, proto in list(out) if src in world for r in ranges}
    egress_open = cfg.zero_trust.default_deny == "ingress"
    if cfg.zero_trust.allow_dns or egress_open:
        for src in source_names(workloads):
            out |= {(src, KUBE_DNS, port, proto) for port, proto in DNS_PORTS}
    return out


def source_names(workloads: Sequence[WorkloadPods]) -> list[str]:
    names = [w.name for w in workloads]
    names += [stranger_name(ns) for ns in sorted({w.namespace for w in workloads})]
    return names


def build(
    policies: Sequence[Mapping[str, Any]],
    workloads: Sequence[WorkloadPods],
    expected: set[FlowKey],
    version: Version = DEFAULT_CILIUM,
    fqdn_flows: Sequence[str] = (),
    peers: Sequence[PeerEndpoint] = (),
) -> Matrix:
    """Every (source, target) cell decided by the verdict engine.

    Peers are rows and columns too, judged only where the stack's policies decide: a peer's
    row against the workloads' ports (its own egress and DNS are not the stack's), a peer's
    column from the workloads and strangers.
    """
    sources: list[tuple[str, Endpoint]] = [(w.name, w.endpoint()) for w in workloads]
    sources += [
        (stranger_name(ns), stranger(ns)) for ns in sorted({w.namespace for w in workloads})
    ]
    managed_sources = len(sources)
    sources += [(p.name, p.endpoint) for p in peers if p.source]
    targets: list[tuple[str, Endpoint, int, str]] = [
        (w.name, w.endpoint(), port, proto) for w in workloads for port, proto in w.ports
    ]
    workload_targets = len(targets)
    dns = Endpoint("kube-system", {"k8s-app": KUBE_DNS}, name=KUBE_DNS)
    targets += [(KUBE_DNS, dns, port, proto) for port, proto in DNS_PORTS]
    targets += [(p.name, p.endpoint, port, proto) for p in peers for port, proto in p.ports]

    engine = Engine(policies, version, [ep for _, ep in sources] + [ep for _, ep, _, _ in targets])
    src_ids = [(name, ep, engine.intern(ep)) for name, ep in sources]
    allowed: set[FlowKey] = set()
    # The loop allocates millions of small tuples and no cycles: pausing the cyclic
    # collector keeps it from rescanning every live object (a big Pulumi run
    # included) over and over: for 1,000 workloads after a plan in the same process,
    # the median went from 4.8 s to 2.7 s (python -m benchmarks.run).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for column, (dst_name, dst_ep, port, proto) in enumerate(targets):
            d = engine.intern(dst_ep)
            rows = src_ids if column < workload_targets else src_ids[:managed_sources]
            for src_name, _src_ep, s in rows:
                if engine.allowed(s, d, port, proto):
                    allowed.add((src_name, dst_name, port, proto))
    finally:
        if was_enabled:
            gc.enable()

    m = Matrix(
        sources=[n for n, _ in sources],
        targets=[(n, p, pr) for n, _, p, pr in targets],
        allowed=allowed,
        expected=set(expected),
        cells=managed_sources * len(targets) + (len(sources) - managed_sources) * workload_targets,
    )
    by_name = {n: ep for n, ep in sources} | {n: ep for n, ep, _, _ in targets} | {p.name: p.endpoint for p in peers}
    m.namespaces = {n: ep.namespace for n, ep in by_name.items() if ep.reserved is None and ep.namespace}
    for ref, why in engine.rejected:
        m.findings.append(Finding("rejected", ref, f"policy {ref} would be rejected by Cilium: {why}"))
    for key in sorted(allowed - m.expected):
        v = engine.decide(by_name[key[0]], by_name[key[1]], key[2], key[3])
        m.findings.append(Finding("undeclared", fmt(key), f"{fmt(key)} is allowed but not declared: {v.reason}"))
    for key in sorted(m.expected - allowed):
        if key[0] not in by_name or key[1] not in by_name:
            m.findings.append(Finding("missing", fmt(key), f"{fmt(key)} is declared but names no deployed workload"))
            continue
        v = engine.decide(by_name[key[0]], by_name[key[1]], key[2], key[3])
        m.findings.append(Finding("missing", fmt(key), f"{fmt(key)} is declared but denied: {v.reason}"))
    for key in sorted(allowed) if engine.has_offline_parts else ():
        v = engine.decide(by_name[key[0]], by_name[key[1]], key[2], key[3])
        if not v.exact:
            m.notes.append(f"{fmt(key)}: {v.reason}")
    m.notes += [f"{f}: FQDN flows are not decided offline" for f in fqdn_flows]
    return m


def diff(base: Matrix, head: Matrix) -> tuple[list[str], list[str]]:
    """(newly allowed, no longer allowed) flows between two matrices, as applied: staging a namespace
    allows what its default deny denied, and enforcing it denies it again."""
    before, after = base.live_allowed, head.live_allowed
    return [fmt(k) for k in sorted(after - before)], [fmt(k) for k in sorted(before - after)]
