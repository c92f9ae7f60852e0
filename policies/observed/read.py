"""Reading capture files of every shape Hubble and Log Analytics produce, detected by content.

A file is one of (see docs/adopting-zero-trust.md):

- ``lines``: one JSON value per line (``hubble observe -o json``, exporter files and AKS's
  ``events.log``): parsed line by line with orjson; a line that is not JSON (cut by rotation) is one
  malformed record;
- ``array``: a JSON array of values (``az monitor log-analytics query -o json``, tools that store flows
  as a list), streamed item by item with ijson;
- ``values``: pretty-printed or concatenated JSON values (``jq .`` output, records pasted from docs),
  streamed value by value;
- ``tables``: the Log Analytics query API's own JSON (``{"tables": [{"columns", "rows"}]}``), streamed
  row by row.

Each value is then a Hubble record (``{"flow": ...}`` or a bare Flow, in proto or camelCase names,
with or without exporter ``aggregate`` counts), a Log Analytics row, a non-flow event (node status,
lost events), or something else; each is counted per file. A file from which no flow or row could be
read is reported (``Observations.unreadable``), never taken for "nothing dropped".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

from policies.observed import hubble, log_analytics
from policies.observed.records import FileCounts, Observations

BAD_SHAPE = (KeyError, TypeError, ValueError, AttributeError, IndexError)
"""What reading a record of the wrong shape raises: the record is reported as malformed."""
_EVENTS = ("node_status", "lost_events", "agent_event", "debug_event", "nodeStatus", "lostEvents", "agentEvent", "debugEvent")
_FLOW_KEYS = ("l4", "IP", "source", "destination")
_FLOW_MARKS = ("verdict", "Type", "event_type", "eventType", "time", "node_name", "nodeName", "is_reply", "isReply")
_TABLES = re.compile(rb'^\{\s*"tables"\s*:')
_REPLY = b'"is_reply":true'

HEAD = 1 << 16
"""Bytes read to tell a file's shape."""


def read(paths: Iterable[Path]) -> Observations:
    """Every file's records, each file read in the shape its content has."""
    obs = Observations()
    for path in paths:
        counts = FileCounts(Path(path).name)
        obs.files.append(counts)
        with open(path, "rb") as f:
            counts.shape = shape(f.read(HEAD))
            f.seek(0)
            if f.read(3) != b"\xef\xbb\xbf":  # a UTF-8 byte order mark (PowerShell's redirection writes one)
                f.seek(0)
            _READERS[counts.shape](f, obs, counts)
    obs.resolve()
    return obs


def shape(head: bytes) -> str:
    """The file's shape from its first bytes."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] == b"[":
        return "array"
    if text[:1] != b"{":
        return "lines"
    for line in [ln for ln in text.splitlines() if ln.strip()][:5]:
        try:
            if isinstance(orjson.loads(line), dict):
                return "lines"
        except orjson.JSONDecodeError:
            continue
    return "tables" if _TABLES.match(text) else "values"


def _lines(f: BinaryIO, obs: Observations, counts: FileCounts) -> None:
    loads, add_flow = orjson.loads, hubble.connection_of
    records = flows = replies = 0
    for number, line in enumerate(f, 1):
        if line.isspace():
            continue
        records += 1
        if _REPLY in line and line[:9] == b'{"flow":{':
            # A reply (Hubble writes the key once, and inside a string its quotes would be escaped): a third
            # to a half of a capture's lines, counted without parsing them.
            replies += 1
            continue
        try:
            doc = loads(line)
        except orjson.JSONDecodeError:
            counts.bad(str(number), "not JSON (a line cut by log rotation?)")
            continue
        flow = doc.get("flow") if type(doc) is dict else None
        if type(flow) is dict and ("is_reply" in flow or "event_type" in flow) and "aggregate" not in flow:
            flows += 1  # the usual line, a proto-named Hubble record: straight to the flow reader
            try:
                add_flow(flow, obs, counts, doc.get("time") or "")
            except BAD_SHAPE as e:
                counts.bad(str(number), f"{type(e).__name__} reading the flow")
            continue
        _value(doc, str(number), obs, counts)
    counts.records += records
    if flows + replies:
        counts.kinds["Hubble flow"] += flows + replies
    if replies:
        counts.skipped[hubble.NOT_A_CONNECTION["reply"]] += replies


def _array(f: BinaryIO, obs: Observations, counts: FileCounts) -> None:
    _stream(ijson.items(f, "item", use_float=True), "item", obs, counts)


def _values(f: BinaryIO, obs: Observations, counts: FileCounts) -> None:
    _stream(ijson.items(f, "", multiple_values=True, use_float=True), "value", obs, counts)


def _stream(values: Iterator[Any], what: str, obs: Observations, counts: FileCounts) -> None:
    n = 0
    try:
        for n, value in enumerate(values, 1):
            counts.records += 1
            _value(value, f"{what} {n}", obs, counts)
    except ijson.JSONError as e:
        counts.records += 1
        counts.bad(f"{what} {n + 1}", f"the JSON breaks off here ({str(e).splitlines()[0][:80]})")


def _tables(f: BinaryIO, obs: Observations, counts: FileCounts) -> None:
    """``{"tables": [{"columns": [...], "rows": [[...], ...]}]}``, one row at a time."""
    columns: list[Any] = []
    builder = None
    n = 0
    try:
        for prefix, event, value in ijson.parse(f, use_float=True):
            if builder is not None:
                builder.event(event, value)
                if prefix == "tables.item.rows.item" and event in ("end_array", "end_map"):
                    n += 1
                    counts.records += 1
                    row = builder.value
                    _row(dict(zip(columns, row)) if isinstance(row, list) else row, f"row {n}", obs, counts)
                    builder = None
            elif prefix == "tables.item" and event == "start_map":
                columns = []
            elif prefix == "tables.item.columns.item.name" and event == "string":
                columns.append(value)
            elif prefix == "tables.item.rows.item":
                if event in ("start_array", "start_map"):
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
                else:  # a row that is a number, a string or null
                    n += 1
                    counts.records += 1
                    counts.bad(f"row {n}", "not a row object")
    except ijson.JSONError as e:
        counts.records += 1
        counts.bad(f"row {n + 1}", f"the JSON breaks off here ({str(e).splitlines()[0][:80]})")


_READERS = {"lines": _lines, "array": _array, "values": _values, "tables": _tables}


def _value(value: Any, where: str, obs: Observations, counts: FileCounts) -> None:
    """One JSON value, whatever it holds."""
    if isinstance(value, list):  # a line or item that is itself a list of records
        for i, item in enumerate(value, 1):
            _value(item, f"{where}[{i}]", obs, counts)
        return
    if not isinstance(value, Mapping):
        counts.bad(where, "not a JSON object")
        return
    flow = value.get("flow")
    if isinstance(flow, Mapping):
        _flow(flow, "Hubble flow", value.get("time") or "", where, obs, counts)
    elif isinstance(value.get("tables"), list):
        for table in value["tables"]:
            for i, row in enumerate(log_analytics.rows_of_table(table) if isinstance(table, Mapping) else (), 1):
                _row(row, f"{where} row {i}", obs, counts)
    elif log_analytics.is_row(value):
        _row(value, where, obs, counts)
    elif any(k in value for k in _FLOW_KEYS) and any(k in value for k in _FLOW_MARKS):
        _flow(value, "bare flow (hubble CLI before v0.11)", "", where, obs, counts)
    elif any(k in value for k in _EVENTS):
        counts.skipped["not a flow (node status, lost or agent events)"] += 1
    else:
        counts.skipped["not a flow record or Log Analytics row"] += 1


def _flow(flow: Mapping[str, Any], kind: str, when: str, where: str, obs: Observations, counts: FileCounts) -> None:
    if hubble.is_camel(flow):
        flow, kind = hubble.snake(flow), f"{kind}, camelCase names"
    if flow.get("aggregate"):
        kind += ", exporter aggregate"
    counts.kinds[kind] += 1
    try:
        hubble.connection_of(flow, obs, counts, str(when))
    except BAD_SHAPE as e:
        counts.bad(where, f"{type(e).__name__} reading the flow")


def _row(row: Any, where: str, obs: Observations, counts: FileCounts) -> None:
    if not isinstance(row, Mapping):
        counts.bad(where, "not a row object")
        return
    counts.kinds["Log Analytics row"] += 1
    try:
        log_analytics.connection_of(row, obs, counts)
    except BAD_SHAPE as e:
        counts.bad(where, f"{type(e).__name__} reading the row")
