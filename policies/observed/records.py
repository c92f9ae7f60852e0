"""What a capture becomes: the ends of each connection, the distinct connections, and per-file counts.

Memory grows with the distinct connections (and the distinct HTTP requests kept per connection),
never with the lines: every reader adds record by record.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from policies.verdict.http import Request

RESERVED_IDENTITIES = {
    1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init", 6: "remote-node", 7: "kube-apiserver",
    8: "ingress", 9: "world", 10: "world",
}
"""Cilium's fixed numeric identities (``pkg/identity/numericidentity.go``); 9 and 10 are world-ipv4/-ipv6."""
LOCAL_IDENTITY_FLAG = 1 << 24
"""Identities from here up are node-local CIDR identities: addresses outside the cluster, ``world``."""


def reserved_of(identity: Any) -> str | None:
    """The reserved entity a numeric identity stands for, or None for a pod identity (or none at all)."""
    try:
        n = int(identity)
    except (TypeError, ValueError):
        return None
    return "world" if n >= LOCAL_IDENTITY_FLAG else RESERVED_IDENTITIES.get(n)


@dataclass(frozen=True)
class End:
    """One side of an observed connection, as much as the record tells.

    Exactly one of: a pod (``namespace`` set), a reserved identity (``reserved`` set: ``world``,
    ``host``, ``kube-apiserver``...), or unattributed (neither: an empty or masked end, or an
    address the record gives no identity for).
    """

    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    """The pod's own labels (``k8s:`` source, without the namespace and Cilium's own)."""
    labels_known: bool = True
    """False when the record lists none of the pod's labels (field-masked, proxy observations,
    Log Analytics rows): the pod is then known by its workload or its name only."""
    cilium_labels: tuple[tuple[str, str], ...] = ()
    """The labels Cilium adds to the identity (``io.cilium.k8s.namespace.labels.*``, service account, cluster)."""
    workload: str | None = None
    """The owning workload's name, where the record has it (``workloads[0].name``)."""
    reserved: str | None = None
    """A reserved identity: ``world``, ``host``, ``kube-apiserver``..."""
    ip: str | None = None
    """The address, for a reserved or unattributed end."""
    names: tuple[str, ...] | None = None
    """An outside destination: the names the source's DNS proxy learned for it (``destination_names``), in
    lower case without the final dot; None when the record has none."""
    pod: str | None = None
    """The pod's name, kept only when neither labels nor a workload name the pod."""
    node_labels: tuple[tuple[str, str], ...] | None = None
    """A ``host``/``remote-node`` end: the node labels its identity carries (``node:`` source, with
    enable-node-selector-labels); None when the record lists no labels at all."""
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Ends key every connection: hash them once, not on every record.
        object.__setattr__(self, "_hash", hash((self.namespace, self.labels, self.workload, self.reserved, self.ip, self.names, self.pod)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def unattributed(self) -> bool:
        return self.namespace is None and self.reserved is None

    @property
    def display(self) -> str:
        if self.reserved:
            return f"{self.reserved}{f' {self.ip}' if self.ip else ''}"
        if self.unattributed:
            return f"unattributed{f' {self.ip}' if self.ip else ''}"
        who = self.workload or ",".join(f"{k}={v}" for k, v in self.labels) or self.pod or "pod"
        return f"{self.namespace}/{who}"


MAX_REQUESTS = 64
"""Distinct HTTP requests kept per connection (method, path, authority): enough to judge its L7 rules."""


@dataclass
class Connection:
    """One distinct connection: initiator -> destination:port/protocol, with what was seen of it."""

    src: End
    dst: End
    port: int
    protocol: str
    count: int = 0
    """Connections started (L3/L4 records, or the flow counts of aggregated ones)."""
    first: str = ""
    last: str = ""
    requests: dict[tuple[str, str, str | None], Request] = field(default_factory=dict)
    """Distinct HTTP requests seen on it (L7 records), at most ``MAX_REQUESTS``."""
    queries: set[str] = field(default_factory=set)
    """Distinct DNS names looked up on it (L7 DNS records), at most ``MAX_REQUESTS``."""
    l7_records: int = 0
    cilium_verdicts: dict[str, str | None] = field(default_factory=dict)
    """Per direction (``ingress``, ``egress``), what Cilium's policy-verdict events said of it: ``matched`` (a
    rule allowed it), ``default-allow`` (it passed only because default deny is off: enforced, it drops),
    ``denied``, or None (an event that cannot tell). The worst of its events wins."""

    def cilium_said(self, direction: str, verdict: str | None) -> None:
        keep_worst(self.cilium_verdicts, direction, verdict)

    @property
    def seen(self) -> int:
        """How often it was seen: its connections, or its L7 records when only those were captured."""
        return self.count or self.l7_records


_WORSE = ("matched", None, "default-allow", "denied")
"""Cilium's verdicts on a connection from the best to the worst."""


def keep_worst(verdicts: dict[str, str | None], direction: str, verdict: str | None) -> None:
    """Record Cilium's verdict on one direction, keeping the worst of those already recorded."""
    if direction not in verdicts or _WORSE.index(verdict) > _WORSE.index(verdicts[direction]):
        verdicts[direction] = verdict

DEDUPE_WINDOW = 65536
"""How many recent (connection, 5-tuple) markers are kept to recognise a connection's second
observation point. Both records of one connection lie milliseconds apart in a capture, so a
window bounds memory (it grows with distinct connections, not with lines)."""
EXAMPLES = 5
"""Malformed lines quoted per file (all are counted)."""


@dataclass
class FileCounts:
    """What one file held, so every format reports the same counts."""

    name: str
    shape: str = ""
    """How the file was read: ``lines``, ``array``, ``values`` (pretty-printed or concatenated) or ``tables``."""
    records: int = 0
    """Values read (lines, array items, rows)."""
    kinds: Counter = field(default_factory=Counter)
    """Records by what they are: Hubble flow, bare flow, camelCase flow, exporter aggregate, Log Analytics row..."""
    connections: int = 0
    """Records that counted towards a connection."""
    skipped: Counter = field(default_factory=Counter)
    malformed: int = 0
    examples: list[str] = field(default_factory=list)
    """The first malformed records, by line or item."""

    @property
    def flows(self) -> int:
        """Records that are flows or Log Analytics rows (whatever became of them)."""
        return sum(self.kinds.values())

    def bad(self, where: str, why: str) -> None:
        self.malformed += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{self.name}:{where}: {why}")

    @property
    def unreadable(self) -> str | None:
        """Why nothing could be read from the file, or None."""
        if self.flows:
            return None
        reasons = [f"{n} {why}" for why, n in self.skipped.most_common(3)]
        if self.malformed:
            reasons.append(f"{self.malformed} malformed (first: {self.examples[0]})")
        return f"{self.name}: no flow records or Log Analytics rows could be read" + (
            f" ({self.records} records: {'; '.join(reasons)})" if self.records else " (the file is empty)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.name, "shape": self.shape, "records": self.records, "kinds": dict(self.kinds),
            "connections": self.connections, "skipped": dict(self.skipped), "malformed": self.malformed,
            "examples": self.examples,
        }


@dataclass
class Observations:
    connections: dict[tuple, Connection] = field(default_factory=dict)
    files: list[FileCounts] = field(default_factory=list)
    pods: dict[tuple[str, str], End] = field(default_factory=dict)
    """Pods by (namespace, name), as a record that lists their labels names them: how a record that names a
    pod without its labels (a proxy observation, a field mask) is resolved (``resolve``)."""
    _seen: set[int] = field(default_factory=set)
    _order: deque = field(default_factory=deque)

    def resolve(self) -> None:
        """Give every pod a record named without labels the labelled end another record of the capture has for it."""
        if not self.pods:
            return
        for key, c in list(self.connections.items()):
            src, dst = (self.pods.get((e.namespace, e.pod), e) if e.pod else e for e in (c.src, c.dst))  # pod: named without labels
            if (src, dst) == (c.src, c.dst):
                continue
            del self.connections[key]
            new = (src, dst, c.port, c.protocol)
            into = self.connections.get(new)
            if into is None:
                c.src, c.dst = src, dst
                self.connections[new] = c
                continue
            into.count += c.count
            into.l7_records += c.l7_records
            into.first = min(filter(None, (into.first, c.first)), default="")
            into.last = max(into.last, c.last)
            for k, r in c.requests.items():
                if len(into.requests) < MAX_REQUESTS:
                    into.requests.setdefault(k, r)
            into.queries |= set(list(c.queries)[: max(0, MAX_REQUESTS - len(into.queries))])
            for direction, verdict in c.cilium_verdicts.items():
                into.cilium_said(direction, verdict)

    @property
    def lines(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def skipped(self) -> Counter:
        out: Counter = Counter()
        for f in self.files:
            out.update(f.skipped)
        return out

    @property
    def malformed(self) -> list[str]:
        """The first malformed records of each file (every one is counted in ``files``)."""
        return [e for f in self.files for e in f.examples]

    @property
    def unreadable(self) -> list[str]:
        return [why for f in self.files if (why := f.unreadable)]

    def add(
        self, src: End, dst: End, port: int, protocol: str, when: str, instance: Any, weight: int = 1,
        request: Request | None = None, query: str | None = None,
    ) -> Connection | None:
        """Count one record of a connection; None when it is the second observation point of one already counted."""
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range")
        key = (src, dst, port, protocol)
        c = self.connections.get(key)
        if c is None:
            c = self.connections[key] = Connection(src, dst, port, protocol)
        if request is not None or query is not None:
            c.l7_records += 1
            if request is not None and len(c.requests) < MAX_REQUESTS:
                c.requests.setdefault((request.method, request.path, request.authority), request)
            if query is not None and len(c.queries) < MAX_REQUESTS:
                c.queries.add(query)
            weight = 0  # an L7 request rides a connection its L3/L4 records count
        elif instance is not None:
            marker = hash((key, instance))
            if marker in self._seen:
                return None  # the same connection seen at its other observation point
            self._seen.add(marker)
            self._order.append(marker)
            if len(self._order) > DEDUPE_WINDOW:
                self._seen.discard(self._order.popleft())  # the oldest marker
        c.count += weight
        if when:
            if not c.first or when < c.first:
                c.first = when
            if when > c.last:
                c.last = when
        return c


def summary(obs: Observations) -> dict[str, Any]:
    return {
        "lines": obs.lines, "connections": len(obs.connections), "skipped": dict(obs.skipped),
        "malformed": obs.malformed, "files": [f.as_dict() for f in obs.files],
    }
