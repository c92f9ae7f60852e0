"""Observed traffic: Hubble flow JSON and Container Network Logs rows, as connections.

Readers stream their files line by line; memory grows with the distinct connections
seen, not with the lines. Formats (see docs/adopting-zero-trust.md):

- **Hubble flow JSON lines**: ``hubble observe -o json`` / ``-o jsonpb``, the Hubble
  exporter's files, and AKS Container Network Logs' on-node ``events.log`` (the same
  shape): ``{"flow": {...}, "node_name": ..., "time": ...}``. Lines without a ``flow``
  (node status, lost events, agent events) are skipped and counted.
- **Log Analytics ``ContainerNetworkLogs`` rows** as ``az monitor log-analytics query -o
  json`` prints them: a JSON array of objects (aggregated: namespaces, workloads,
  identities and ports, no pod labels or addresses).

Each flow becomes at most one connection, initiator -> destination:port/protocol
(cilium/cilium pkg/hubble/parser/threefour ``decodeIsReply``):

- ``is_reply: false``: the source initiated; ``true``: a reply, not a connection.
- ``is_reply`` absent (drops, older captures): a TCP ``SYN`` without ``ACK`` starts a
  connection and ``SYN+ACK`` is a reply; any other packet with no reply flag is skipped
  and counted as "direction unknown" (it belongs to a connection whose first packet
  says more).
- The two observation points of one connection (source node, destination node) carry
  the same addresses and ports: a connection is counted once per (initiator address and
  port, responder, port, protocol).
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PROTOCOLS = ("TCP", "UDP", "SCTP")
KUBE_DNS = ("kube-system", "kube-dns")
_IGNORED_LABEL_PREFIXES = ("io.kubernetes.pod.namespace", "io.cilium.k8s.")
BAD_SHAPE = (KeyError, TypeError, ValueError, AttributeError)
"""What reading a record of the wrong shape raises: the record is reported as malformed, by line."""
RESERVED_IDENTITIES = {
    1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init", 6: "remote-node", 7: "kube-apiserver",
    8: "ingress", 9: "world", 10: "world",
}
"""Cilium's fixed numeric identities (``pkg/identity/numericidentity.go``); 9 and 10 are world-ipv4/-ipv6."""
LOCAL_IDENTITY_FLAG = 1 << 24
"""Identities from here up are node-local CIDR identities: addresses outside the cluster, ``world``."""


def reserved_of(identity: Any) -> str | None:
    """The reserved entity a numeric identity stands for, or None for a pod identity."""
    try:
        n = int(identity)
    except (TypeError, ValueError):
        return None
    return "world" if n >= LOCAL_IDENTITY_FLAG else RESERVED_IDENTITIES.get(n)


@dataclass(frozen=True)
class End:
    """One side of an observed connection, as much as the log tells."""

    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    """The pod's own labels (``k8s:`` source, without the namespace and Cilium's own)."""
    workload: str | None = None
    """The owning workload's name, where the log has it (``workloads[0].name``)."""
    reserved: str | None = None
    """A reserved identity: ``world``, ``host``, ``kube-apiserver``..."""
    ip: str | None = None
    names: tuple[str, ...] = ()
    """DNS names the other side's DNS proxy learned for this address (``destination_names``)."""
    pod: str | None = None
    """The pod's name, kept only when a field-masked record has no labels and no workload."""

    @property
    def display(self) -> str:
        if self.reserved:
            return f"{self.reserved}{f' {self.ip}' if self.ip else ''}"
        who = self.workload or ",".join(f"{k}={v}" for k, v in self.labels) or self.pod or "pod"
        return f"{self.namespace}/{who}"


@dataclass
class Connection:
    src: End
    dst: End
    port: int
    protocol: str
    count: int = 0
    first: str = ""
    last: str = ""
    verdicts: set[str] = field(default_factory=set)


DEDUPE_WINDOW = 65536
"""How many recent (connection, 5-tuple) markers are kept to recognise a connection's second
observation point. Both records of one connection lie milliseconds apart in a capture, so a
window bounds memory (it grows with distinct connections, not with lines)."""


@dataclass
class Observations:
    connections: dict[tuple, Connection] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)
    malformed: list[str] = field(default_factory=list)
    lines: int = 0
    _seen: set[int] = field(default_factory=set)
    _order: deque = field(default_factory=deque)

    def add(self, src: End, dst: End, port: int, protocol: str, when: str, verdict: str, instance: Any, weight: int = 1) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range")
        key = (src, dst, port, protocol)
        c = self.connections.get(key)
        if c is None:
            c = self.connections[key] = Connection(src, dst, port, protocol, 0, when, when)
        marker = hash((key, instance))
        if instance is not None and marker in self._seen:
            return  # the same connection seen at its other observation point
        if instance is not None:
            self._seen.add(marker)
            self._order.append(marker)
            if len(self._order) > DEDUPE_WINDOW:
                self._seen.discard(self._order.popleft())  # the oldest marker
        c.count += weight
        if when:
            c.first = min(c.first, when) if c.first else when
            c.last = max(c.last, when)
        if verdict:
            c.verdicts.add(verdict)


def read(paths: Iterable[Path]) -> Observations:
    """Every file, its format detected from its first non-blank character (``[``: Log Analytics rows)."""
    obs = Observations()
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = ""
            while True:
                ch = f.read(1)
                if not ch or not ch.isspace():
                    head = ch
                    break
            f.seek(0)
            if head == "[":
                _read_rows(path, f, obs)
            else:
                _read_lines(path, f, obs)
    return obs


def _read_lines(path: Path, lines: Iterable[str], obs: Observations) -> None:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        obs.lines += 1
        try:
            doc = json.loads(line)
        except ValueError:
            obs.malformed.append(f"{path.name}:{number}: not JSON (a line cut by log rotation?)")
            continue
        if not isinstance(doc, Mapping):
            obs.malformed.append(f"{path.name}:{number}: not a JSON object")
            continue
        flow = doc.get("flow")
        if not isinstance(flow, Mapping):
            obs.skipped["not a flow (node status, lost or agent events)"] += 1
            continue
        try:
            _add_flow(flow, obs)
        except BAD_SHAPE as e:
            obs.malformed.append(f"{path.name}:{number}: {type(e).__name__} reading the flow")


_ENDS: dict[tuple, End] = {}
"""Parsed ends by their raw fields: a capture repeats the same few thousand pods a million times."""


def _end(raw: Any) -> End:
    raw = raw if isinstance(raw, Mapping) else {}
    workloads = raw.get("workloads") or ()
    key = (
        raw.get("namespace"), tuple(map(str, raw.get("labels") or ())), raw.get("identity"), raw.get("pod_name"),
        workloads[0].get("name") if workloads and isinstance(workloads[0], Mapping) else None,
    )
    end = _ENDS.get(key)
    if end is None:
        if len(_ENDS) > 100_000:
            _ENDS.clear()
        end = _ENDS[key] = _parse_end(raw, key[4])
    return end


def _parse_end(raw: Mapping[str, Any], workload: str | None) -> End:
    labels, reserved, namespace = [], None, raw.get("namespace") or None
    for label in raw.get("labels") or []:
        source, _, rest = str(label).partition(":")
        key, _, value = rest.partition("=")
        if source == "k8s" and key == "io.kubernetes.pod.namespace":
            namespace = namespace or value  # older captures name the namespace only as a label
        elif source == "reserved":
            reserved = reserved or key.removesuffix("-ipv4").removesuffix("-ipv6")
        elif source == "k8s" and not key.startswith(_IGNORED_LABEL_PREFIXES):
            labels.append((key, value))
    if reserved is None and namespace is None:
        reserved = reserved_of(raw.get("identity"))  # a field-masked record may keep only the number
    pod = raw.get("pod_name") or None if not labels and not workload and reserved is None else None
    return End(namespace, tuple(sorted(labels)), workload, reserved, pod=pod)


def _add_flow(flow: Mapping[str, Any], obs: Observations) -> None:
    l4 = flow.get("l4") or {}
    protocol = next((p for p in PROTOCOLS if p in l4), None)
    if protocol is None:
        obs.skipped["not TCP, UDP or SCTP (ICMP and others)"] += 1
        return
    ports = l4[protocol]
    reply = flow.get("is_reply", True if flow.get("reply") else None)
    if reply is None:
        flags = ports.get("flags") or {}
        if protocol == "TCP" and flags.get("SYN") and not flags.get("ACK"):
            reply = False
        elif protocol == "TCP" and flags.get("SYN") and flags.get("ACK"):
            reply = True
        else:
            obs.skipped["direction unknown (no is_reply, not a SYN)"] += 1
            return
    if reply:
        obs.skipped["replies"] += 1
        return
    ip = flow.get("IP") or {}
    src, dst = _end(flow.get("source")), _end(flow.get("destination"))
    for address in (ip.get("source") if src.reserved else None, ip.get("destination") if dst.reserved else None):
        if address is not None:
            ipaddress.ip_address(address)  # a ValueError makes the line malformed
    if src.reserved:
        src = replace(src, ip=ip.get("source"))
    names = flow.get("destination_names")
    if dst.reserved or names:
        dst = replace(dst, ip=ip.get("destination") if dst.reserved else None, names=tuple(names or ()))
    instance = (ip.get("source"), ports.get("source_port"), ip.get("destination"))
    obs.add(src, dst, int(ports["destination_port"]), protocol, str(flow.get("time") or ""), str(flow.get("verdict") or ""), instance)


def _read_rows(path: Path, f, obs: Observations) -> None:
    try:
        rows = json.load(f)
    except ValueError:
        obs.malformed.append(f"{path.name}: not a JSON array of Log Analytics rows")
        return
    for number, row in enumerate(rows if isinstance(rows, list) else [], 1):
        obs.lines += 1
        if not isinstance(row, Mapping):
            obs.malformed.append(f"{path.name}: row {number}: not an object")
            continue
        try:
            _add_row(row, obs)
        except BAD_SHAPE as e:
            obs.malformed.append(f"{path.name}: row {number}: {type(e).__name__} reading the row")


def _add_row(row: Mapping[str, Any], obs: Observations) -> None:
    if row.get("Reply") in (True, "true", "True"):
        obs.skipped["replies"] += 1
        return
    layer4 = row.get("Layer4")
    layer4 = json.loads(layer4) if isinstance(layer4, str) and layer4.startswith("{") else layer4 or {}
    protocol = next((p for p in PROTOCOLS if p in layer4), None)
    if protocol is None or "destination_port" not in (layer4.get(protocol) or {}):
        obs.skipped["not TCP, UDP or SCTP (ICMP and others)"] += 1
        return
    src = _row_end(row, "Source")
    dst = _row_end(row, "Destination")
    weight = sum(int(row.get(k) or 0) for k in ("IngressFlowCount", "EgressFlowCount", "UnknownDirectionFlowCount")) or 1
    port = int(layer4[protocol]["destination_port"])
    obs.add(src, dst, port, protocol, str(row.get("TimeGenerated") or ""), str(row.get("Verdict") or ""), None, weight)


def _row_end(row: Mapping[str, Any], side: str) -> End:
    workloads = row.get(f"{side}Workloads")
    if isinstance(workloads, str) and workloads.startswith("["):
        workloads = json.loads(workloads)
    name = workloads[0].get("name") if isinstance(workloads, list) and workloads and isinstance(workloads[0], Mapping) else None
    namespace = row.get(f"{side}Namespace") or None
    reserved = None if namespace else reserved_of(row.get(f"{side}Identity")) or "world"
    return End(namespace, (), name, reserved)


def summary(obs: Observations) -> dict[str, Any]:
    return {"lines": obs.lines, "connections": len(obs.connections), "skipped": dict(obs.skipped), "malformed": obs.malformed}


__all__ = ["Connection", "End", "Observations", "read", "summary"]
