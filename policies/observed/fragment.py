"""A ``learn`` proposal as people and tools take it: a stack-file fragment, JSON, markdown, and merged into a
stack file's own text (``learn --write``).

The fragment holds the whole new value of every config key the proposal changes (the existing entries
first, then the proposed ones, each with its counts as a comment), indented as it stands under ``config:``:
pasted in place of those keys, it is the merged stack. ``merged_text`` does the same to the file's text with
a round-trip YAML library, so every comment, the key order and each entry's style stay as they were.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from policies.config import PROJECT
from policies.observed.learn import Proposal, apply

FLOWS, PEERS, WORKLOADS = f"{PROJECT}:flows", f"{PROJECT}:peers", f"{PROJECT}:workloads"


def _seen(f) -> str:
    return f"{f.count} seen, {f.first} .. {f.last}"


def as_yaml(p: Proposal, header: str, config: Mapping[str, Any], stack_file: str) -> str:
    """The keys the proposal changes, with their merged values, as they stand under ``config:``."""
    out = [f"# {header}", "# Review before merging: every entry marked 'learned' widens what the stack allows.",
           f"# Replace these keys under config: in {stack_file} (or run learn --write to merge them, keeping the file's comments)."]
    merged = apply(config, p)
    for key, added in ((PEERS, p.peers), (WORKLOADS, p.workloads)):
        if added:
            out.append(f"  {key}:")
            out += [f"    {name}: {json.dumps(spec)}" + ("  # learned" if name in added else "") for name, spec in merged[key].items()]
    if p.flows:
        out.append(f"  {FLOWS}:")
        existing = len(merged[FLOWS]) - len(p.flows)
        out += [f"    - {json.dumps(flow)}" for flow in merged[FLOWS][:existing]]
        out += [f"    - {json.dumps(f.flow)}  # learned: {_seen(f)}" for f in p.flows]
    if p.empty:
        out.append("# no workloads, peers or flows to add")
    if p.unknown:
        out.append("# pods that match no workload (add a workload for each, or they lose their traffic):")
        out += [f"#   {u}" for u in p.unknown]
    if p.notes:
        out.append("# notes:")
        out += [f"#   {n}" for n in p.notes]
    return "\n".join(out) + "\n"


def as_json(p: Proposal) -> dict[str, Any]:
    return {"workloads": p.workloads, "peers": p.peers, "flows": [f.as_dict() for f in p.flows], "unknown": p.unknown, "notes": p.notes}


def as_markdown(p: Proposal, header: str) -> str:
    out = [f"## {header}", ""]
    for title, what in (("Workloads to add (deployed elsewhere)", p.workloads), ("Peers to add", p.peers)):
        if what:
            out += [f"### {title}", "", "| name | spec |", "|---|---|"]
            out += [f"| {_code(n)} | {_code(json.dumps(s))} |" for n, s in what.items()] + [""]
    if p.flows:
        out += ["### Flows to add", "", "| flow | seen | first | last |", "|---|---:|---|---|"]
        out += [f"| {_code(json.dumps(f.flow))} | {f.count} | {_code(f.first)} | {_code(f.last)} |" for f in p.flows] + [""]
    if p.empty:
        out += ["No workloads, peers or flows to add.", ""]
    if p.unknown:
        out += ["### Pods that match no workload", ""] + [f"- {_code(u)}" for u in p.unknown] + [""]
    if p.notes:
        out += ["### Notes", ""] + [f"- {_code(n)}" for n in p.notes] + [""]
    return "\n".join(out)


def _code(text: str) -> str:
    """A markdown code span: names from a capture never render as markdown or HTML."""
    return "`" + text.replace("`", "'") + "`"


def merged_text(text: str, p: Proposal) -> str:
    """A stack file's text with the proposal merged under ``config:``: comments, key order and style kept; each
    learned entry in flow style with its counts as a comment."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml, doc, config = round_trip(text)

    def flow_style(value: Any) -> Any:
        if isinstance(value, dict):
            m = CommentedMap((k, flow_style(v)) for k, v in value.items())
            m.fa.set_flow_style()
            return m
        if isinstance(value, list):
            seq = CommentedSeq(flow_style(v) for v in value)
            seq.fa.set_flow_style()
            return seq
        return value

    for key, added in ((PEERS, p.peers), (WORKLOADS, p.workloads)):
        if added:
            section = config.get(key)
            if section is None:
                section = config[key] = CommentedMap()
            for name, spec in added.items():
                section[name] = flow_style(spec)
                section.yaml_add_eol_comment("learned", name)
    if p.flows:
        flows = config.get(FLOWS)
        if flows is None:
            flows = config[FLOWS] = CommentedSeq()
        for f in p.flows:
            flows.append(flow_style(f.flow))
            flows.yaml_add_eol_comment(f"learned: {_seen(f)}", len(flows) - 1)
    return dumped(yaml, doc)


def round_trip(text: str) -> tuple[Any, Any, Any]:
    """(the round-trip YAML library, the stack file's document, its ``config:`` mapping, created if missing)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()  # round-trip: comments, key order, quotes and style kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    doc = yaml.load(text)
    if doc is None:
        doc = CommentedMap()
    return yaml, doc, doc.setdefault("config", CommentedMap())


def dumped(yaml: Any, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()
