"""Learn: from the observed connections a plan would drop, propose the stack config that allows them.

Input is a replay (``policies.replay``); output is config in the stack file's own keys
(``zero-trust-aks:peers``, ``zero-trust-aks:flows``) plus what cannot become config: pods of
managed namespaces that match no workload, and notes (a port the workload does not serve, traffic
from the internet to a workload without a LoadBalancer, flows between two peers).

Each observed end becomes, in this order: the workload or peer it already is; for an outside
address, ``toFqdns`` with the names its DNS proxy learned (when the cluster's ACNS level allows
FQDN rules) or else a peer of that one address; an entity peer for a reserved identity; a peer of
the pod's namespace and ``app`` label for a pod of a namespace the stack does not manage.
Applying the proposal and replaying the same capture drops nothing but the unknown pods' traffic.
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
from policies.matrix import KUBE_DNS
from policies.observed.records import End, host_cidr
from policies.observed.replay import Replayed, ReplayReport

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
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    declined: list[Replayed] = field(default_factory=list)
    """The dropped connections no config can allow: each has a note or an unknown pod."""

    @property
    def empty(self) -> bool:
        return not self.flows and not self.peers


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

    def peer(self, base: str, spec: dict[str, Any]) -> str:
        """A new peer's name (reusing one with the same spec), never clashing with a workload or peer."""
        for name, existing in (*self.p.peers.items(), *self.pending.items()):
            if existing == spec:
                return name
        name, n = _label(base), 2
        while name in self.cfg.workloads or name in self.cfg.peers or name in self.p.peers or name in self.pending:
            name, n = f"{_label(base)[:60]}-{n}", n + 1
        self.pending[name] = spec
        return name

    def ref(self, end: End, name: str, dst: bool, what: str) -> str | list[str] | None:
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
        if end.reserved == "world" and not end.ip:
            entity = next((n for n, p in sorted(self.cfg.peers.items()) if p.entity == "world"), None)
            return entity or self.peer("internet", {"entity": "world"})
        if end.reserved == "world" and end.ip:
            ip = ipaddress.ip_address(end.ip)
            for peer_name, peer in sorted(self.cfg.peers.items()):
                if any(ip in ipaddress.ip_network(e) for e in peer.except_):
                    self.p.notes.append(f"{what}: {end.ip} is in the except ranges of peer {peer_name}: excluded there on purpose, not proposed")
                    return None
            if not dst and ip.is_global:
                # Clients on the internet: one entity peer, not a peer per client address.
                entity = next((n for n, p in sorted(self.cfg.peers.items()) if p.entity == "world"), None)
                return entity or self.peer("internet", {"entity": "world"})
            names = [n.rstrip(".").lower() for n in end.names or () if re.match(outside_names.FQDN, n.lower())]
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
            if end.display not in self.p.unknown:
                self.p.unknown.append(end.display)
            return None
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
        target = self.cfg.workloads.get(flow.get("to", ""))
        spec = target.find_port(flow["port"], flow["protocol"]) if target is not None else None
        port = spec.container_port if spec is not None else flow["port"]
        for f in self.cfg.flows:
            if f.source != flow["from"] or self.cfg.flow_port(f) != port or self.cfg.flow_protocol(f) != flow["protocol"]:
                continue
            if "to" in flow and f.to == flow["to"]:
                return True
            if "toFqdns" in flow and f.to_fqdns and all(
                any(outside_names.name_matches(p, n, self.cfg.cilium_version) for p in f.to_fqdns) for n in flow["toFqdns"]
            ):
                return True
        return False

    def add(self, row: Replayed, exact: bool) -> None:
        self.pending = {}
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
        self.p.peers.update(self.pending)  # only the peers an accepted flow names
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
        src, dst = self.ref(src_end, row.src, False, what), self.ref(dst_end, row.dst, True, what)
        if src is None or dst is None:
            return None
        assert isinstance(src, str)
        peers = set(self.cfg.peers) | set(self.p.peers) | set(self.pending)
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
        if names and len(names) > MAX_FQDNS_PER_FLOW:  # one flow holds at most that many names
            for i in range(0, len(names), MAX_FQDNS_PER_FLOW):
                flows.append(ProposedFlow(f.flow | {"toFqdns": names[i : i + MAX_FQDNS_PER_FLOW]}, f.count, f.first, f.last))
        else:
            flows.append(f)
    p.flows = sorted(flows, key=lambda f: (-f.count, json.dumps(f.flow, sort_keys=True)))
    p.unknown = sorted(set(p.unknown) | set(report.unknown))
    p.notes = list(dict.fromkeys(p.notes))
    return p


def apply(config: Mapping[str, Any], proposal: Proposal) -> dict[str, Any]:
    """A stack's config with the proposal merged in (what a reviewer does by hand)."""
    out = dict(config)
    out[f"{PROJECT}:peers"] = {**(config.get(f"{PROJECT}:peers") or {}), **proposal.peers}
    out[f"{PROJECT}:flows"] = [*(config.get(f"{PROJECT}:flows") or []), *(f.flow for f in proposal.flows)]
    return out


def as_yaml(p: Proposal, header: str) -> str:
    """A stack-file fragment: each entry a JSON flow mapping (valid YAML) with its counts as a comment."""
    out = [f"# {header}", "# Review before merging: every entry below widens what the stack allows."]
    if p.peers:
        out.append(f"{PROJECT}:peers:")
        out += [f"  {name}: {json.dumps(spec)}" for name, spec in p.peers.items()]
    if p.flows:
        out.append(f"{PROJECT}:flows:")
        out += [f"  - {json.dumps(f.flow)}  # {f.count} seen, {f.first} .. {f.last}" for f in p.flows]
    if p.empty:
        out.append("# no peers or flows to add")
    if p.unknown:
        out.append("# pods that match no workload (add a workload for each, or they lose their traffic):")
        out += [f"#   {u}" for u in p.unknown]
    if p.notes:
        out.append("# notes:")
        out += [f"#   {n}" for n in p.notes]
    return "\n".join(out) + "\n"


def as_json(p: Proposal) -> dict[str, Any]:
    return {"peers": p.peers, "flows": [f.as_dict() for f in p.flows], "unknown": p.unknown, "notes": p.notes}


def as_markdown(p: Proposal, header: str) -> str:
    out = [f"## {header}", ""]
    if p.peers:
        out += ["### Peers to add", "", "| peer | spec |", "|---|---|"]
        out += [f"| {_code(n)} | {_code(json.dumps(s))} |" for n, s in p.peers.items()] + [""]
    if p.flows:
        out += ["### Flows to add", "", "| flow | seen | first | last |", "|---|---:|---|---|"]
        out += [f"| {_code(json.dumps(f.flow))} | {f.count} | {_code(f.first)} | {_code(f.last)} |" for f in p.flows] + [""]
    if p.empty:
        out += ["No peers or flows to add.", ""]
    if p.unknown:
        out += ["### Pods that match no workload", ""] + [f"- {_code(u)}" for u in p.unknown] + [""]
    if p.notes:
        out += ["### Notes", ""] + [f"- {_code(n)}" for n in p.notes] + [""]
    return "\n".join(out)


def _code(text: str) -> str:
    """A markdown code span: names from a capture never render as markdown or HTML."""
    return "`" + text.replace("`", "'") + "`"
