"""Hubble flows (``hubble observe -o json``, exporter files, AKS Container Network Logs' ``events.log``)
as connections: one record, at most one connection, initiator -> destination:port/protocol.

Read in cilium/cilium ``api/v1/flow/flow.proto`` and ``pkg/hubble/parser/threefour`` (``decodeIsReply``,
``decodeTrafficDirection``):

- ``is_reply: false``: the source initiated; ``true`` (or the older ``reply: true``): a reply.
- ``is_reply`` absent: a TCP ``SYN`` without ``ACK`` starts a connection, a ``SYN+ACK`` is a reply; a
  drop by policy (``POLICY_DENIED``, ``POLICY_DENY``, ``AUTH_REQUIRED``) is the initiator's packet,
  since Cilium decides policy on a connection's first packet and replies pass its conntrack; anything
  else is counted as "direction unknown" (its connection's first packet says more).
- An end with a namespace and a pod name is that pod, whatever reserved label a proxy observation
  gives it (``Type: L7`` records report the far end as ``reserved:world``). Without either, its
  reserved label or reserved identity number names it; with nothing at all it is unattributed.
- L7 HTTP requests and DNS lookups are kept on their connection (for its HTTP and DNS rules) and
  count no connection;
  ``aggregate`` (exporter aggregation) counts weigh a record.
- protojson's camelCase names (``isReply``, ``podName``, ``destinationPort``...) read as the proto names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from policies.memo import Memo
from policies.observed.records import End, FileCounts, Observations, reserved_of
from policies.verdict.http import Request

PROTOCOLS = ("TCP", "UDP", "SCTP")
L7_RECORD = "L7"
"""Hubble's flow ``Type`` of a record the L7 proxy observed (``L3_L4`` otherwise)."""
POLICY_DROPS = frozenset({"POLICY_DENIED", "POLICY_DENY", "AUTH_REQUIRED"})
POLICY_DROP_CODES = frozenset({133, 181, 189})
"""The same drops as numbers (the deprecated ``drop_reason``)."""
NS_KEY = "io.kubernetes.pod.namespace"
CILIUM_LABELS = "io.cilium.k8s."
NOT_A_CONNECTION = {
    "icmp": "not TCP, UDP or SCTP (ICMP and others)",
    "reply": "replies",
    "unknown": "direction unknown (no is_reply, not a SYN, not a policy drop)",
}

POLICY_VERDICT = 5
"""``event_type.type`` of a policy-verdict event: Cilium's decision on a connection's first packet, per direction."""
MATCH_ALL = 4
"""``policy_match_type`` ALL: the wildcard matched (flow.proto field 23: 1 L3-only, 2 L3-L4, 3 L4-only, 4 all,
5 L3-proto, 6 proto-only)."""
DEFAULT_ALLOW_LABEL = "io.cilium.policy.derived-from=allow-any-"
"""The labels newer Cilium gives the allow-all rule it adds where every selecting rule has default deny off."""


def policy_verdict(flow: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """What a policy-verdict event says of its connection: (direction, ``matched``, ``default-allow`` or
    ``denied``); the classification is None where the record cannot tell. None: not a policy-verdict event.

    With default deny off, Cilium adds an allow-all entry beside a pod's rules (pkg/policy/repository.go
    ``computePolicyEnforcementAndRules``): a connection through it is reported as match type ALL with no
    policy of the user's in ``*_allowed_by`` (filled since Cilium 1.15, cilium/cilium#27854), which is
    exactly a connection default deny would drop. A record with no ``*_allowed_by`` at all cannot tell
    that from a user's allow-all rule.
    """
    kind = flow.get("event_type")
    if not isinstance(kind, Mapping) or kind.get("type") != POLICY_VERDICT:
        return None
    direction = str(flow.get("traffic_direction") or "").lower()
    if direction not in ("ingress", "egress"):
        return None
    verdict = flow.get("verdict")
    if verdict == "DROPPED":
        return direction, "denied"
    if verdict == "AUDIT":  # policy audit mode: allowed, would have been dropped
        return direction, "default-allow"
    if int(flow.get("policy_match_type") or 0) != MATCH_ALL:
        return direction, "matched"
    by = flow.get(f"{direction}_allowed_by")
    if by is None:
        return direction, None
    users = [p for p in by if isinstance(p, Mapping) and p.get("name") and not any(DEFAULT_ALLOW_LABEL in str(label) for label in p.get("labels") or ())]
    return direction, "matched" if users else "default-allow"


_CAMEL_MARKERS = ("isReply", "eventType", "trafficDirection", "nodeName", "dropReasonDesc", "destinationNames", "traceObservationPoint")
_KEEP = frozenset({"IP", "TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6", "Type", "ID", "ipVersion", "Summary"})
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


_SNAKE_MARKERS = ("is_reply", "event_type", "node_name", "traffic_direction")


def is_camel(flow: Mapping[str, Any]) -> bool:
    """Whether a flow uses protojson's camelCase names (``UseProtoNames`` off)."""
    if "is_reply" in flow or "event_type" in flow:  # the usual record, decided in two look-ups
        return False
    if any(k in flow for k in _CAMEL_MARKERS):
        return True
    ends = (flow.get("source"), flow.get("destination"))
    return any(isinstance(e, Mapping) and ("podName" in e or "clusterName" in e) for e in ends) or any(
        isinstance(p, Mapping) and "destinationPort" in p for p in (flow.get("l4") or {}).values()
    )


def snake(value: Any) -> Any:
    """A camelCase record with the proto names (``destinationPort`` -> ``destination_port``)."""
    if isinstance(value, Mapping):
        return {(k if k in _KEEP or not isinstance(k, str) else _CAMEL.sub(r"_\1", k).lower()): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


_ENDS: Memo[End] = Memo(100_000)
"""Parsed ends by their raw fields: a capture repeats the same few thousand pods a million times."""


def end(raw: Any) -> End:
    if type(raw) is not dict:  # records come from JSON: anything else is an empty or broken end
        raw = {}
    labels = raw.get("labels")
    workloads = raw.get("workloads")
    first = workloads[0] if workloads else None
    key = (
        raw.get("namespace"), tuple(labels) if labels else (), raw.get("identity"), raw.get("pod_name"),
        first.get("name") if type(first) is dict else None,
    )
    return _ENDS.get(key, lambda: _parse_end(key))


def _parse_end(key: tuple) -> End:
    namespace, raw_labels, identity, pod, workload = key
    labels, cilium, reserved, node = [], [], None, []
    namespace = namespace or None
    for label in raw_labels:
        source, _, rest = str(label).partition(":")
        k, _, v = rest.partition("=")
        if source == "node":
            node.append((k, v))
        elif source == "k8s":
            if k == NS_KEY:
                namespace = namespace or v or None  # older captures name the namespace only as a label
            elif k.startswith(CILIUM_LABELS):
                cilium.append((k, v))
            else:
                labels.append((k, v))
        elif source == "reserved" and reserved in (None, "world"):
            # An API server outside the cluster carries reserved:kube-apiserver, reserved:world and
            # cidr: labels; it is the API server (records list the labels in any order).
            reserved = k.removesuffix("-ipv4").removesuffix("-ipv6")
        elif source == "cidr" and reserved is None:
            reserved = "world"
    if namespace is not None and (pod or labels or cilium or workload or not reserved):
        known = bool(labels or cilium)
        return End(
            namespace, tuple(sorted(labels)), known, tuple(sorted(cilium)), str(workload) if workload else None,
            pod=str(pod) if pod and not known and not workload else None,
        )
    reserved = reserved or reserved_of(identity)
    if reserved in ("host", "remote-node") and raw_labels:
        return End(reserved=reserved, labels_known=False, node_labels=tuple(sorted(node)))
    return End(reserved=reserved, labels_known=False)


def connection_of(flow: Mapping[str, Any], obs: Observations, counts: FileCounts, envelope_time: str = "") -> None:
    """Add one Hubble flow record (proto names) to ``obs``; raises ``KeyError``/``TypeError``/``ValueError``
    for a record of the wrong shape."""
    l4 = flow.get("l4") or {}
    protocol = "TCP" if "TCP" in l4 else "UDP" if "UDP" in l4 else "SCTP" if "SCTP" in l4 else None
    if protocol is None:
        counts.skipped[NOT_A_CONNECTION["icmp"]] += 1
        return
    ports = l4[protocol]
    l7 = flow.get("l7")
    reply = flow.get("is_reply")
    if not_a_connection(_direction(flow, protocol, ports) if reply is None else reply, counts):
        return
    raw_src, raw_dst = flow.get("source"), flow.get("destination")
    src, dst = end(raw_src), end(raw_dst)
    if src.labels_known and src.namespace and raw_src.get("pod_name"):
        obs.pods[(src.namespace, raw_src["pod_name"])] = src
    if dst.labels_known and dst.namespace and raw_dst.get("pod_name"):
        obs.pods[(dst.namespace, raw_dst["pod_name"])] = dst
    ip = flow.get("IP") or {}
    if src.reserved or src.unattributed:  # not a pod: its address says which
        src = replace(src, ip=_address(ip.get("source")))
    if dst.reserved or dst.unattributed:
        names = flow.get("destination_names") if dst.reserved == "world" else None
        dst = replace(dst, ip=_address(ip.get("destination")),
                      names=tuple(sorted({str(n).rstrip(".").lower() for n in names})) if names else None)
    request = query = None
    if l7:
        http, dns = l7.get("http"), l7.get("dns")
        if http:
            headers = http.get("headers")
            request = Request(
                str(http.get("method") or ""), str(http.get("url") or ""),
                tuple((str(h.get("key")), str(h.get("value"))) for h in headers) if headers is not None else None,
            )
        elif dns and dns.get("query"):
            query = str(dns["query"]).rstrip(".").lower()
        else:
            counts.skipped["L7 records other than HTTP and DNS requests (Kafka...)"] += 1
            return
    aggregate = flow.get("aggregate")
    weight = sum(int(aggregate.get(k) or 0) for k in ("ingress_flow_count", "egress_flow_count", "unknown_direction_flow_count")) if aggregate else 1
    instance = None if aggregate else (ip.get("source"), ports.get("source_port"), ip.get("destination"))
    when = str(flow.get("time") or envelope_time or "")
    port = int(ports["destination_port"])
    if obs.add(src, dst, port, protocol, when, instance, weight or 1, request, query) is not None:
        counts.connections += 1
    said = policy_verdict(flow)
    if said is not None:  # every observation point's verdict counts, the second one's too
        obs.connections[(src, dst, port, protocol)].cilium_said(*said)


def _direction(flow: Mapping[str, Any], protocol: str, ports: Mapping[str, Any]) -> bool | None:
    """Whether a record without ``is_reply`` is a reply: True, False, or None (unknown)."""
    if flow.get("reply"):
        return True
    if protocol == "TCP":
        flags = ports.get("flags") or {}
        if flags.get("SYN"):
            return bool(flags.get("ACK"))
    if policy_drop(flow.get("verdict"), flow.get("drop_reason_desc"), flow.get("drop_reason")):
        return False
    return None


def policy_drop(verdict: Any, reason: Any, code: Any = None) -> bool:
    """Whether a record is a drop by policy: the initiator's packet, since Cilium decides policy on a
    connection's first packet and lets its replies through conntrack."""
    return verdict == "DROPPED" and (reason in POLICY_DROPS or code in POLICY_DROP_CODES)


def not_a_connection(reply: bool | None, counts: FileCounts) -> bool:
    """Count a record that starts no connection (a reply, or one whose direction is unknown); True when it is one."""
    if reply is None:
        counts.skipped[NOT_A_CONNECTION["unknown"]] += 1
        return True
    if reply:
        counts.skipped[NOT_A_CONNECTION["reply"]] += 1
        return True
    return False


def _address(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(ipaddress.ip_address(value))  # a ValueError makes the record malformed
