"""Learn: from the observed connections a plan would drop, propose the stack config that allows them.

Input is a replay (``policies.replay``); output is config in the stack file's own keys
(``zero-trust-aks:peers``, ``zero-trust-aks:flows``) plus what cannot become config: pods of
managed namespaces that match no workload, and notes (a port the workload does not serve, traffic
from the internet to a workload without a LoadBalancer, flows between two peers).

Each observed end becomes, in this order: the workload or peer it already is; for an outside
address, ``toFqdns`` with the names its DNS proxy learned (when the cluster's ACNS level allows
FQDN rules) or else a peer of that one address; an entity peer for a reserved identity; a workload
deployed elsewhere (``selector`` by its ``app`` label, with the ports it was reached on) for a pod of
a managed namespace that matches no workload; a peer of the pod's namespace and ``app`` label for a
pod of a namespace the stack does not manage. Applying the proposal and replaying the same capture
drops only what was declined, each with a note saying why. ``policies.observed.fragment`` prints a
proposal and merges it into a stack file.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.config import PEER_ENTITIES, PROJECT, StackConfig, outside_names
from policies.config.limits import MAX_FQDNS_PER_FLOW
from policies.analysis.matrix import KUBE_DNS
from policies.observed.records import End
from policies.observed.replay import Replayed, ReplayReport
from policies.render import pod_labels
from policies.verdict import fqdn, host_cidr

SELECTOR_LABELS = ("app", "app.kubernetes.io/name", "k8s-app")
"""The label a new pod peer selects by, the first one the observed pod has."""


@dataclass
class ProposedFlow:
    flow: dict[str, Any]
    count: int
    first: str
    last: str

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "count": self.count, "firstSeen": self.first, "lastSeen": self.last}


@dataclass
class Proposal:
    flows: list[ProposedFlow] = field(default_factory=list)
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)
    workloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Pods of managed namespaces that match no workload, proposed as workloads deployed elsewhere (``selector``)."""
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    declined: list[Replayed] = field(default_factory=list)
    """The dropped connections no config can allow: each has a note or an unknown pod."""

    @property
    def empty(self) -> bool:
        return not self.flows and not self.peers and not self.workloads


def _label(text: str) -> str:
    """A DNS label (a peer name) from free text."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return out[:63].rstrip("-") or "peer"


class _Learner:
    def __init__(self, cfg: StackConfig):
        self.cfg = cfg
        self.p = Proposal()
        level = cfg.acns_level
        self.fqdn_level = level is None or "fqdn" in level.allows
        self.fqdn_ok = self.fqdn_level and cfg.zero_trust.default_deny == "ingress-and-egress"
        self._flows: dict[str, ProposedFlow] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        """New peers the connection being learned names, kept only if its flow is."""
        self.pending_workloads: dict[str, dict[str, Any]] = {}
        self.named_pods: set[str] = set()
        """Unknown pods a proposed workload now names."""

    def _taken(self, name: str) -> bool:
        return any(name in names for names in (self.cfg.workloads, self.cfg.peers, self.p.peers, self.pending, self.p.workloads,
                                              self.pending_workloads))

    def _free(self, base: str) -> str:
        name, n = _label(base), 2
        while self._taken(name):
            name, n = f"{_label(base)[:60]}-{n}", n + 1
        return name

    def peer(self, base: str, spec: dict[str, Any]) -> str:
        """A new peer's name (reusing one this proposal has with the same spec, or the stack's own entity peer:
        the namer names a world client by its address, not by the stack's ``entity: world`` peer), never
        clashing with a workload or peer."""
        declared = ((n, {"entity": p.entity}) for n, p in sorted(self.cfg.peers.items()) if p.entity)
        for name, existing in (*declared, *self.p.peers.items(), *self.pending.items()):
            if existing == spec:
                return name
        name = self._free(base)
        self.pending[name] = spec
        return name

    def workload(self, end: End, port: int | None, protocol: str) -> str | None:
        """A pod of a managed namespace that matches no workload, as a workload deployed elsewhere: selected by its
        ``app`` (or ``app.kubernetes.io/name``, ``k8s-app``) label; None when it has none."""
        labels = dict(end.labels)
        key = next((k for k in SELECTOR_LABELS if k in labels), None)
        if key is None:
            return None
        selector = {key: labels[key]}
        clash = next((n for n, w in sorted(self.cfg.workloads.items())
                      if w.namespace == end.namespace and selector.items() <= pod_labels(n, w).items()), None)
        if clash is not None:
            self.p.notes.append(f"{end.display}: selecting it by {key}={labels[key]} would select the pods of {clash!r} too; declare it by hand")
            return None
        name = next((n for n, w in (*self.p.workloads.items(), *self.pending_workloads.items())
                     if w["selector"] == selector and w["namespace"] == end.namespace), None)
        if name is None:
            name = self._free(labels[key])
            self.pending_workloads[name] = {"namespace": end.namespace, "selector": selector, "ports": []}
        spec = self.p.workloads.get(name) or self.pending_workloads[name]
        if port is not None and not any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in spec["ports"]):
            spec["ports"] = [*spec["ports"], {"name": f"{protocol.lower()}-{port}", "port": port, **({} if protocol == "TCP" else {"protocol": protocol})}]
        return name

    def ref(self, end: End, name: str, dst: bool, what: str, port: int = 0, protocol: str = "TCP") -> str | list[str] | None:
        """What a flow names for this end: a workload or peer name, outside names (toFqdns), or None (cannot)."""
        if end.reserved == "world" and not end.ip and dst:
            self.p.notes.append(
                f"{what}: the capture has no address for the outside end (aggregated Log Analytics rows carry none), and "
                "a flow to all of world is never proposed: capture it with Hubble, or with the addresses `python -m zerotrust query` keeps"
            )
            return None
        if name in self.cfg.workloads or name in self.cfg.peers:
            return name
        if name == KUBE_DNS:
            self.p.notes.append(f"{what}: DNS to kube-dns would be dropped: set {PROJECT}:zeroTrust.allowDns: true")
            return None
        # (A world end a peer of the stack covers was named by that peer above: what is left is proposed.)
        if end.reserved == "world" and not end.ip:
            return self.peer("internet", {"entity": "world"})
        if end.reserved == "world" and end.ip:
            ip = ipaddress.ip_address(end.ip)
            for peer_name, peer in sorted(self.cfg.peers.items()):
                if any(ip in ipaddress.ip_network(e) for e in peer.except_):
                    self.p.notes.append(f"{what}: {end.ip} is in the except ranges of peer {peer_name}: excluded there on purpose, not proposed")
                    return None
            if not dst and ip.is_global:
                # Clients on the internet: one entity peer, not a peer per client address.
                return self.peer("internet", {"entity": "world"})
            names = [n for n in end.names or () if re.match(outside_names.FQDN, n)]  # read in lower case, no final dot
            if dst and names and self.fqdn_ok:
                return sorted(set(names))
            if names:
                needs = (
                    f"{PROJECT}:zeroTrust.defaultDeny: ingress-and-egress" if self.fqdn_level
                    else f"{PROJECT}:cluster.advancedNetworking.security: fqdn"
                )
                self.p.notes.append(
                    f"{what}: {end.ip} is {', '.join(names)}: an address peer is proposed; with {needs} a toFqdns flow would follow address changes"
                )
            return self.peer(f"addr-{end.ip.replace('.', '-').replace(':', '-')}", {"cidrs": [host_cidr(end.ip)]})
        if end.reserved is not None:
            if end.reserved in PEER_ENTITIES:
                return self.peer(end.reserved, {"entity": end.reserved})
            self.p.notes.append(f"{what}: traffic of the reserved identity {end.reserved!r} cannot be declared as a flow")
            return None
        if end.namespace in self.cfg.namespaces:
            proposed = self.workload(end, port if dst else None, protocol)
            if proposed is None:
                self.p.unknown.append(end.display)  # listed once, less the pods named elsewhere, by propose
            else:
                self.named_pods.add(end.display)
            return proposed
        labels = dict(end.labels)
        key = next((k for k in SELECTOR_LABELS if k in labels), None)
        spec: dict[str, Any] = {"namespace": end.namespace}
        if key is not None:
            spec["labels"] = {key: labels[key]}
        else:
            self.p.notes.append(
                f"{end.display}: no app label in the capture (Log Analytics rows carry none); "
                f"the proposed peer admits every pod of namespace {end.namespace}: narrow it with labels"
            )
        return self.peer(f"{end.namespace}-{labels[key]}" if key else str(end.namespace), spec)

    def declared(self, flow: dict[str, Any]) -> bool:
        """Whether a declared flow already covers this one (for outside names: every name)."""
        target = self.cfg.workloads.get(flow["to"]) if "to" in flow else None
        spec = target.find_port(flow["port"], flow["protocol"]) if target is not None else None
        port = spec.container_port if spec is not None else flow["port"]
        for f in self.cfg.flows:
            if f.source != flow["from"] or self.cfg.flow_port(f) != port or self.cfg.flow_protocol(f) != flow["protocol"]:
                continue
            if "to" in flow and f.to == flow["to"]:
                return True
            if "toFqdns" in flow and f.to_fqdns and all(
                any(fqdn.name_matches(p, n, self.cfg.cilium_version) for p in f.to_fqdns) for n in flow["toFqdns"]
            ):
                return True
        return False

    def add(self, row: Replayed, exact: bool) -> None:
        self.pending, self.pending_workloads = {}, {}
        if row.layer != "L3/L4":
            what = ", ".join(row.requests) or "its requests"
            fix = "a toFqdns flow for a name lets its pods look it up" if row.layer == "DNS" else "widen the flow's http rules if they are intended"
            self.p.notes.append(f"{row.src} -> {row.dst}:{row.port}/{row.protocol}: {row.layer} rules reject {what}; {fix}")
            self.p.declined.append(row)
            return
        flow = self.flow_for(row)
        if flow is None or (exact and self.declared(flow)):
            if flow is not None:
                self.p.notes.append(f"{row.src} -> {row.dst}:{row.port}/{row.protocol} is declared and still dropped: {row.dropped_by}")
            self.p.declined.append(row)
            return
        if self.declared(flow):
            return  # an undecided connection a declared flow already covers (toFqdns)
        self.p.peers.update(self.pending)  # only the peers and workloads an accepted flow names
        self.p.workloads.update(self.pending_workloads)
        key = json.dumps({k: v for k, v in flow.items() if k != "toFqdns"} | {"fqdn": "toFqdns" in flow}, sort_keys=True)
        old = self._flows.get(key)
        if old is None:
            self._flows[key] = ProposedFlow(flow, row.count, row.first, row.last)
            return
        if "toFqdns" in flow:
            old.flow["toFqdns"] = sorted(set(old.flow["toFqdns"]) | set(flow["toFqdns"]))
        old.count += row.count
        old.first = min(filter(None, (old.first, row.first)), default="")
        old.last = max(old.last, row.last)

    def flow_for(self, row: Replayed) -> dict[str, Any] | None:
        """The flow that would allow a dropped connection, or None (and a note saying why) when none can."""
        assert row.ends is not None
        src_end, dst_end = row.ends
        what = f"{row.src} -> {row.dst}:{row.port}/{row.protocol}"
        src, dst = self.ref(src_end, row.src, False, what), self.ref(dst_end, row.dst, True, what, row.port, row.protocol)
        if src is None or dst is None:
            return None
        assert isinstance(src, str)
        peers = set(self.cfg.peers) | set(self.p.peers) | set(self.pending)
        proposed = set(self.p.workloads) | set(self.pending_workloads)
        if src in peers and (isinstance(dst, list) or dst in peers):
            self.p.notes.append(f"{what}: between two peers (or a peer and outside names), not this stack's to enforce")
            return None
        flow: dict[str, Any] = {"from": src}
        port = row.port
        if isinstance(dst, list):
            flow["toFqdns"] = dst
        else:
            flow["to"] = dst
            w = self.cfg.workloads.get(dst)
            if w is not None:
                spec = w.find_container_port(row.port, row.protocol)  # a capture records where the pods listen
                if spec is None:
                    self.p.notes.append(f"{what}: {dst} does not serve {row.port}/{row.protocol}; add it to its ports")
                    return None
                port = spec.port  # a flow names the port clients dial
            if w is not None or dst in proposed:
                peer = self.cfg.peers.get(src) or self.p.peers.get(src) or self.pending.get(src) or {}
                entity = getattr(peer, "entity", None) if not isinstance(peer, dict) else peer.get("entity")
                if entity == "world" and dst not in self.cfg.exposed:
                    self.p.notes.append(f"{what}: set {PROJECT}:workloads.{dst}.expose: loadBalancer to take traffic from the internet")
                    return None
        return flow | {"port": port, "protocol": row.protocol}


def propose(cfg: StackConfig, report: ReplayReport) -> Proposal:
    """The config that would allow every connection the replay would drop (or cannot decide)."""
    learner = _Learner(cfg)
    for row in report.would_drop:
        learner.add(row, exact=True)
    for row in report.undecided:
        learner.add(row, exact=False)
    p = learner.p
    flows = []
    for f in learner._flows.values():
        names = f.flow.get("toFqdns")
        if not names:
            flows.append(f)
            continue
        for i in range(0, len(names), MAX_FQDNS_PER_FLOW):  # one flow holds at most that many names
            flows.append(ProposedFlow(f.flow | {"toFqdns": names[i : i + MAX_FQDNS_PER_FLOW]}, f.count, f.first, f.last))
    p.flows = sorted(flows, key=lambda f: (-f.count, json.dumps(f.flow, sort_keys=True)))
    for spec in p.workloads.values():
        if not spec["ports"]:
            del spec["ports"]  # a client only: it serves nothing
    p.unknown = sorted((set(p.unknown) | set(report.unknown)) - learner.named_pods)
    p.notes = list(dict.fromkeys(p.notes))
    return p


def apply(config: Mapping[str, Any], proposal: Proposal) -> dict[str, Any]:
    """A stack's config with the proposal merged in (what a reviewer does by hand, or ``learn --write``)."""
    out = dict(config)
    for key, added in ((f"{PROJECT}:peers", proposal.peers), (f"{PROJECT}:workloads", proposal.workloads)):
        if added:
            out[key] = {**(config.get(key) or {}), **added}
    if proposal.flows:
        out[f"{PROJECT}:flows"] = [*(config.get(f"{PROJECT}:flows") or []), *(f.flow for f in proposal.flows)]
    return out
