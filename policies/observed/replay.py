"""Replay observed connections against a plan: what would the planned policies drop that the
applications really did, and which declared flows were never seen?

Each observed end is named in the stack's terms (``ends``); the verdict engine then decides every
distinct connection once, with Cilium's semantics, as it will be enforced: its L3/L4 verdict, then,
where the connection passes the L7 proxy, each HTTP request and DNS lookup the capture holds
against the rules that will apply to it (``policies.verdict.http``, ``policies.verdict.fqdn``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.cilium_versions import Version, features
from policies.config import StackConfig
from policies.analysis.matrix import WorkloadPods
from policies.observed.ends import Named, namer
from policies.observed import staged as staged_
from policies.observed.records import Connection, End, Observations, keep_worst
from policies.observed.staged import StagedTally
from policies.verdict import Engine, Verdict
from policies.verdict import fqdn, http


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
    layer: str = "L3/L4"
    """Where it would be dropped: ``L3/L4`` (the connection), ``HTTP`` (requests), ``DNS`` (lookups), or
    ``other L7`` (Kafka, TLS: undecided)."""
    requests: tuple[str, ...] = ()
    """For ``HTTP`` and ``DNS``: the requests or names the rules reject."""
    decided_by: str = "replay"
    """``replay`` (the verdict engine, offline) or ``cilium`` (the capture's policy verdicts of a staged namespace)."""

    def as_dict(self) -> dict[str, Any]:
        out = {
            "from": self.src, "to": self.dst, "port": self.port, "protocol": self.protocol, "count": self.count,
            "firstSeen": self.first, "lastSeen": self.last, "droppedBy": self.dropped_by, "layer": self.layer,
            "decidedBy": self.decided_by,
        }
        if self.requests:
            out["requests"] = list(self.requests)
        return out

    @property
    def line(self) -> str:
        what = f" {', '.join(self.requests)}" if self.requests else ""
        return f"{self.src} -> {self.dst}:{self.port}/{self.protocol}{what} ({self.count} seen, {self.first} .. {self.last})"


@dataclass(frozen=True)
class Unattributed:
    """Connections with an end the capture does not let anyone name: counted, never judged."""

    end: str
    why: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"end": self.end, "why": self.why, "count": self.count}


@dataclass(frozen=True)
class ReplayReport:
    connections: int
    would_drop: tuple[Replayed, ...]
    never_observed: tuple[str, ...]
    unknown: tuple[str, ...]
    """Observed pods of managed namespaces that match no workload (candidates for new workloads)."""
    undecided: tuple[Replayed, ...] = ()
    """Denied, or allowed through L7 rules, where something the records cannot show decides."""
    unattributed: tuple[Unattributed, ...] = ()
    staged: StagedTally | None = None
    """With staged namespaces: how their connections were decided (Cilium's verdicts, or offline)."""
    not_applied: tuple[str, ...] = ()
    """Policies Cilium would reject, objects not replayed and fields pruned, one line each: none vanishes."""


def _observed(cfg: StackConfig, source: str, to: str | None, fqdns: Sequence[str] | None, port: int | None, protocol: str, seen: set) -> bool:
    """Whether a declared flow matches an observed connection (a toFqdns flow: any of its names)."""
    if to is not None:
        return (source, to, port, protocol) in seen
    names = {d.removeprefix("name:") for s, d, p, proto in seen if s == source and p == port and proto == protocol and d.startswith("name:")}
    return any(fqdn.name_matches(pattern, n, cfg.cilium_version) for pattern in fqdns or () for n in names)


@dataclass
class _Group:
    """Every connection with the same named ends, port and protocol: judged once."""

    src: Named
    dst: Named
    port: int
    protocol: str
    ends: tuple[End, End]
    count: int = 0
    first: str = ""
    last: str = ""
    requests: dict = field(default_factory=dict)
    queries: set = field(default_factory=set)
    cilium_verdicts: dict[str, str | None] = field(default_factory=dict)
    """Cilium's policy verdicts on the group's connections, the worst of each direction."""

    def add(self, c: Connection) -> None:
        for direction, verdict in c.cilium_verdicts.items():
            keep_worst(self.cilium_verdicts, direction, verdict)
        self.count += c.seen
        self.first = min(filter(None, (self.first, c.first)), default="")
        self.last = max(self.last, c.last)
        for k, r in c.requests.items():
            self.requests.setdefault(k, r)
        self.queries |= c.queries

    def row(self, reason: str, layer: str = "L3/L4", requests: tuple[str, ...] = (), decided_by: str = "replay") -> Replayed:
        return Replayed(self.src.name, self.dst.name, self.port, self.protocol, self.count, self.first, self.last, reason,
                        self.ends, layer, requests, decided_by)


def replay(
    cfg: StackConfig,
    policies: Sequence[Mapping[str, Any]],
    workloads: Sequence[WorkloadPods],
    obs: Observations,
    version: Version,
    notes: Sequence[str] = (),
) -> ReplayReport:
    """The observed connections judged against ``policies``; ``notes``: what reading them left out."""
    name = namer(cfg, workloads, obs)
    groups: dict[tuple, _Group] = {}
    seen: set[tuple] = set()
    unattributed: dict[tuple[str, str], int] = {}
    unknown: set[str] = set()
    for c in obs.connections.values():
        src, dst = name(c.src), name(c.dst, c.src)
        unknown.update(n.name for n in (src, dst) if n.unknown)
        for n in (src, dst):
            if n.endpoint is None:
                unattributed[(n.name, n.why)] = unattributed.get((n.name, n.why), 0) + c.seen
        for s_name in (src.name, *src.aliases):
            for d_name in (dst.name, *dst.aliases, *(f"name:{x}" for x in c.dst.names or ())):
                seen.add((s_name, d_name, c.port, c.protocol))
        if src.endpoint is None or dst.endpoint is None:
            continue
        key = (src.name, dst.name, src.identity, dst.identity, c.port, c.protocol)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(src, dst, c.port, c.protocol, (c.src, c.dst))
        group.add(c)
    engine = Engine(policies, version, [e for g in groups.values() for e in (g.src.endpoint, g.dst.endpoint)])
    cilium = features(version)
    drops: list[Replayed] = []
    undecided: list[Replayed] = []
    staged_namespaces = set(cfg.staged_namespaces)
    tally = staged_.StagedTally() if staged_namespaces else None
    for g in groups.values():
        v = engine.decide(g.src.endpoint, g.dst.endpoint, g.port, g.protocol)
        allowed, why, exact, by = v.allowed, v.reason, v.exact, "replay"
        if tally is not None:
            what = f"{g.src.name} -> {g.dst.name}:{g.port}/{g.protocol}"
            said = staged_.decide((g.src.endpoint, g.dst.endpoint), (g.src.name, g.dst.name), v, g.cilium_verdicts,
                                  staged_namespaces, tally, what)
            if said is not None:
                allowed, why, exact, by = said
        if not allowed:
            (drops if exact else undecided).append(g.row(why, decided_by=by))
            continue
        if not exact and by == "replay" and not any(side.http is not None or side.other_l7 for side in (v.egress, v.ingress)):
            # Allowed only if what the records cannot show goes its way: never reported as allowed.
            undecided.append(g.row(why, "L3/L4"))
            continue
        _judge_l7(g, v, cilium, drops, undecided)
    declared = [
        f"{f.source} -> {f.to or ','.join(f.to_fqdns or ())}:{cfg.flow_port(f)}/{cfg.flow_protocol(f)}"
        for f in cfg.flows
        if not _observed(cfg, f.source, f.to, f.to_fqdns, cfg.flow_port(f), cfg.flow_protocol(f), seen)
    ]

    def ordered(rows: list[Replayed]) -> tuple[Replayed, ...]:
        return tuple(sorted(rows, key=lambda r: (-r.count, r.src, r.dst, r.port, r.layer)))

    return ReplayReport(
        len(obs.connections), ordered(drops), tuple(declared), tuple(sorted(unknown)), ordered(undecided),
        tuple(Unattributed(e, why, n) for (e, why), n in sorted(unattributed.items(), key=lambda kv: (-kv[1], kv[0]))),
        tally,
        tuple(notes) + tuple(f"{ref}: not applied, Cilium rejects it: {why.removeprefix(ref).strip(' :')}" for ref, why in engine.rejected),
    )


def _judge_l7(g: _Group, v: Verdict, cilium, drops: list[Replayed], undecided: list[Replayed]) -> None:
    """An allowed connection's requests and lookups against the L7 rules that apply to it."""
    for side in (v.egress, v.ingress):
        if side.other_l7:
            undecided.append(g.row(f"allowed at L3/L4; its {side.other_l7} rules are not decided from records: {side.reason}", "other L7"))
            return
        if side.http is not None:
            if not g.requests:
                undecided.append(g.row(f"allowed at L3/L4 through HTTP rules, and the capture holds no HTTP request of it: {side.reason}", "HTTP"))
                return
            rejected, unknown = http.rejected(side.http, g.requests.values())
            if rejected:
                drops.append(g.row(f"the HTTP rules reject these requests ({side.reason})", "HTTP", tuple(sorted({r.text for r in rejected}))))
                return
            if unknown:
                undecided.append(g.row(f"the records do not show what these requests' HTTP rules match on: {side.reason}", "HTTP",
                                       tuple(sorted({r.text for r in unknown}))))
                return
    dns = v.egress.dns
    if dns is not None and g.queries:
        refused = sorted(q for q in g.queries if not any(fqdn.selects(rule, q, cilium) for rule in dns))
        if refused:
            drops.append(g.row(f"the DNS rules refuse these lookups ({v.egress.reason})", "DNS", tuple(refused)))
