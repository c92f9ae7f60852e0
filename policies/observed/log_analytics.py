"""Log Analytics ``ContainerNetworkLogs`` rows as connections, and the query that aggregates them.

Columns (MicrosoftDocs azure-monitor-docs ``reference/tables/containernetworklogs.md``): ``Reply`` is
``flow.is_reply`` (null when unknown, as for Hubble's drops), ``Layer4`` and ``IP`` are dynamic
(``{"TCP": {"destination_port": 80}}``, ``{"source": ..., "destination": ...}``), the three
``*FlowCount`` columns count flow events per 30-second aggregate. Rows carry namespaces, workloads,
pod names and identity numbers, never labels, and, aggregated, no addresses, URLs or DNS names.

Both result shapes are read: the query API's own JSON (``{"tables": [{"columns", "rows"}]}``, values
typed) and ``az monitor log-analytics query -o json`` (a list of objects whose every value went
through Python's ``str()``: ``"None"``, ``"True"``, numbers and dynamic columns as text). So are the
rows of ``query_text`` (summarized server-side: ``SourceWorkload``, ``Protocol``, ``DestinationPort``...).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

from policies.observed.hubble import NOT_A_CONNECTION, PROTOCOLS, not_a_connection, policy_drop
from policies.observed.records import End, FileCounts, Observations, reserved_of

COLUMNS = frozenset({
    "TimeGenerated", "Verdict", "Reply", "SourceNamespace", "DestinationNamespace", "Layer4", "SourceWorkloads",
    "DestinationWorkloads", "SourceIdentity", "DestinationIdentity", "SourceWorkload", "DestinationWorkload", "DestinationPort",
})
"""Columns that make an object a row (any two of them)."""
COUNTS = ("IngressFlowCount", "EgressFlowCount", "UnknownDirectionFlowCount")
_DYNAMIC = ("Layer4", "IP", "SourceWorkloads", "DestinationWorkloads")
_NUMBERS = ("SourceIdentity", "DestinationIdentity", "DestinationPort", *COUNTS)


def is_row(value: Mapping[str, Any]) -> bool:
    return len(COLUMNS.intersection(value)) >= 2


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with ``az -o json``'s strings turned back into values (null, booleans, numbers, dynamic columns)."""
    out = dict(row)
    for k, v in row.items():
        if v == "None" or v == "":
            out[k] = None
        elif v in ("True", "False", "true", "false"):
            out[k] = v in ("True", "true")
    for k in _DYNAMIC:
        v = out.get(k)
        if isinstance(v, str) and v[:1] in "{[":
            out[k] = json.loads(v)
    for k in _NUMBERS:
        v = out.get(k)
        if isinstance(v, (str, float)):
            out[k] = int(float(v))
    return out


def connection_of(row: Mapping[str, Any], obs: Observations, counts: FileCounts) -> None:
    """Add one row to ``obs``; raises ``KeyError``/``TypeError``/``ValueError`` for a row of the wrong shape."""
    row = _plain(row)
    reply = row.get("Reply")
    if reply is None and policy_drop(row.get("Verdict"), row.get("DropReason")):
        reply = False
    if not_a_connection(reply, counts):
        return
    protocol, port = row.get("Protocol"), row.get("DestinationPort")
    if protocol is None or port is None:
        layer4 = row.get("Layer4") or {}
        protocol = next((p for p in PROTOCOLS if p in layer4), None)
        port = (layer4.get(protocol) or {}).get("destination_port")  # no JSON key is null: no protocol, no port
    if protocol not in PROTOCOLS or port is None:
        counts.skipped[NOT_A_CONNECTION["icmp"]] += 1
        return
    addresses = row.get("IP") or {}
    src = _end(row, "Source", row.get("SourceAddress") or addresses.get("source"))
    dst = _end(row, "Destination", row.get("DestinationAddress") or addresses.get("destination"))
    weight = sum(int(row.get(k) or 0) for k in COUNTS) or 1
    last = str(row.get("TimeGenerated") or "")
    first = str(row.get("FirstSeen") or last)
    c = obs.add(src, dst, int(port), str(protocol), first, None, weight)
    if c is not None:
        counts.connections += 1
        if last > c.last:
            c.last = last


def _end(row: Mapping[str, Any], side: str, address: Any) -> End:
    namespace = row.get(f"{side}Namespace") or None
    workload = row.get(f"{side}Workload")
    if workload is None:
        workloads = row.get(f"{side}Workloads")
        first = workloads[0] if isinstance(workloads, list) and workloads else None
        workload = first.get("name") if isinstance(first, Mapping) else None
    if namespace is not None:
        pod = row.get(f"{side}PodName")
        return End(namespace, (), False, (), str(workload) if workload else None, pod=str(pod) if pod and not workload else None)
    ip = str(ipaddress.ip_address(str(address))) if address else None  # a ValueError makes the row malformed
    return End(reserved=reserved_of(row.get(f"{side}Identity")), ip=ip, labels_known=False)


def rows_of_table(table: Mapping[str, Any]) -> Sequence[dict[str, Any]]:
    """The rows of one table of the query API's JSON, as objects."""
    columns = [c.get("name") if isinstance(c, Mapping) else c for c in _listed(table.get("columns"))]
    # A row that is not a list of values is passed on as it is, to be reported as not a row object.
    return [dict(zip(columns, r)) if isinstance(r, list) else r for r in _listed(table.get("rows"))]


def _listed(value: Any) -> list[Any]:
    """A list as it is; anything else but null as a list of itself."""
    return value if isinstance(value, list) else [] if value is None else [value]


def query_text(stack: str, namespaces: Sequence[str], days: int) -> str:
    """KQL that aggregates a stack's traffic in Log Analytics, one row per distinct connection and verdict."""
    listed = ", ".join(json.dumps(n) for n in namespaces)
    return f"""// zero-trust-aks: the connections of stack {stack} over {days} days, aggregated in Log Analytics.
// Run: az monitor log-analytics query -w <workspace-id> --analytics-query @query.kql -o json > rows.json
// then: python -m zerotrust plan --stack {stack} --observed rows.json   (or learn --flows rows.json)
let namespaces = dynamic([{listed}]);
ContainerNetworkLogs
| where TimeGenerated > ago({days}d)
| where SourceNamespace in (namespaces) or DestinationNamespace in (namespaces)
// Keep rows whose Reply is null: Hubble leaves it unset on drops, and `Reply == false` is false for null.
| where isnull(Reply) or Reply == false
| extend L4 = parse_json(Layer4), Addresses = parse_json(IP)
| extend Protocol = case(isnotnull(L4.TCP), "TCP", isnotnull(L4.UDP), "UDP", isnotnull(L4.SCTP), "SCTP", "")
| where Protocol != ""
| extend DestinationPort = toint(coalesce(L4.TCP.destination_port, L4.UDP.destination_port, L4.SCTP.destination_port))
| extend SourceWorkload = tostring(SourceWorkloads[0].name), DestinationWorkload = tostring(DestinationWorkloads[0].name)
// Pod names only where no workload names the pod; addresses only for ends outside the pods.
| extend SourcePodName = iff(isempty(SourceWorkload), SourcePodName, ""),
         DestinationPodName = iff(isempty(DestinationWorkload), DestinationPodName, ""),
         SourceAddress = iff(isempty(SourceNamespace), tostring(Addresses.source), ""),
         DestinationAddress = iff(isempty(DestinationNamespace), tostring(Addresses.destination), "")
| summarize FirstSeen = min(TimeGenerated), TimeGenerated = max(TimeGenerated),
            IngressFlowCount = sum(IngressFlowCount), EgressFlowCount = sum(EgressFlowCount),
            UnknownDirectionFlowCount = sum(UnknownDirectionFlowCount)
    by Verdict, DropReason, Reply, Protocol, DestinationPort,
       SourceNamespace, SourceWorkload, SourcePodName, SourceIdentity, SourceAddress,
       DestinationNamespace, DestinationWorkload, DestinationPodName, DestinationIdentity, DestinationAddress
"""
