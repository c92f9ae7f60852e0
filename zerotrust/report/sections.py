"""The pieces every report format shares: the matrix as a table, a list and a graph, the declared
flows as data, and the sections on guardrails, observed traffic, the budget, the probes and outputs."""

from __future__ import annotations

import json
import re
from typing import Any

from policies.analysis import budget as budget_
from policies.analysis import matrix as mx
from policies.analysis import probes as probes_
from policies.config import StackConfig
from policies.verdict import stranger_name
from zerotrust.mockrun import Run
from zerotrust.plan import Plan
from zerotrust.report import escape as md


def matrix_table(m: mx.Matrix) -> tuple[list[str], list[list[str]]]:
    header = ["from \\ to"] + [f"{n}:{p}/{pr}" for n, p, pr in m.targets]
    rows = []
    for src in m.sources:
        row = [src]
        for n, p, pr in m.targets:
            key = (src, n, p, pr)
            mark = "allow" if key in m.allowed else "-"
            if (key in m.allowed) != (key in m.expected):
                mark = "ALLOW!" if key in m.allowed else "DENY!"
            row.append(mark)
        rows.append(row)
    return header, rows


def matrix_list(m: mx.Matrix) -> list[str]:
    """The matrix as one line per source: what it may reach, and any cell that disagrees with the declared flows."""
    out = []
    for src in m.sources:
        allowed = [f"{m.where(n)}:{p}/{pr}" for n, p, pr in m.targets if (src, n, p, pr) in m.allowed]
        wrong = [
            f"{m.where(n)}:{p}/{pr}{' ALLOW!' if (src, n, p, pr) in m.allowed else ' DENY!'}"
            for n, p, pr in m.targets
            if ((src, n, p, pr) in m.allowed) != ((src, n, p, pr) in m.expected)
        ]
        line = f"{m.where(src)} -> {', '.join(allowed) or 'nothing'}"
        out.append(line + (f"  ! {', '.join(wrong)}" if wrong else ""))
    return out


_MERMAID_TEXT = re.compile(r"[^A-Za-z0-9 ._:/@,()*+-]")


def _mermaid_text(text: str) -> str:
    """A label Mermaid shows as text: names from a capture never close a node or inject markup."""
    return _MERMAID_TEXT.sub("_", text)


def mermaid(plan: Plan) -> str:
    """The allowed flows as a graph: workloads grouped by namespace, peers and outside names drawn, L7 edges
    labelled; with a replay, declared flows never observed are dashed and observed connections the plan
    would drop are red."""
    cfg, m, r = plan.config, plan.matrix, plan.observed
    lines = ["graph LR"]
    ids: dict[str, str] = {}
    edges: list[str] = []
    red: list[int] = []

    def node_id(name: str) -> str:
        return ids.setdefault(name, f"n{len(ids)}")

    groups: dict[str, list[str]] = {}
    for name, w in sorted(cfg.workloads.items()):
        groups.setdefault(w.namespace, []).append(f'    {node_id(name)}["{_mermaid_text(name)}"]')
    for name, peer in sorted(cfg.peers.items()):
        if peer.namespace is not None:
            groups.setdefault(f"{peer.namespace} (not managed)", []).append(f'    {node_id(name)}(["{_mermaid_text(name)}"])')
    for ns, members in sorted(groups.items()):
        lines.append(f'  subgraph {node_id("ns:" + ns)}["{_mermaid_text(ns)}"]')
        lines += members
        lines.append("  end")
    for name, peer in sorted(cfg.peers.items()):
        if peer.namespace is None:
            what = peer.entity or ", ".join(peer.cidrs or ())
            lines.append(f'  {node_id(name)}{{{{"{_mermaid_text(f"{name}: {what}")}"}}}}')
    l7 = {(f.source, f.to, cfg.flow_port(f)) for f in cfg.flows if f.http}
    strangers = {stranger_name(ns) for ns in cfg.namespaces}
    unseen = set(r.never_observed) if r is not None else set()
    for src, dst, port, proto in sorted(m.allowed):
        if dst == mx.KUBE_DNS or src in strangers or src not in ids or dst not in ids:
            continue
        label = f"{port}/{proto}" + (" HTTP" if (src, dst, port) in l7 else "")
        never = mx.fmt((src, dst, port, proto)) in unseen
        edges.append(f"  {ids[src]} -.->|{label} never observed| {ids[dst]}" if never else f"  {ids[src]} -->|{label}| {ids[dst]}")
    for f in cfg.flows:
        if f.to_fqdns and f.source in ids:
            target = node_id("fqdn:" + ",".join(f.to_fqdns))
            lines.append(f'  {target}[/"{_mermaid_text(", ".join(f.to_fqdns))}"/]')
            never = f"{f.source} -> {','.join(f.to_fqdns)}:{cfg.flow_port(f)}/{cfg.flow_protocol(f)}" in unseen
            edges.append(f"  {ids[f.source]} -.->|{cfg.flow_port(f)}/{cfg.flow_protocol(f)}{' never observed' if never else ''}| {target}")
    for d in r.would_drop if r is not None else ():
        for end in (d.src, d.dst):
            if end not in ids:
                lines.append(f'  {node_id(end)}(["{_mermaid_text(end)}"])')
        what = f"{d.port}/{d.protocol}" + ("" if d.layer == "L3/L4" else f" {d.layer}") + " DROPS"
        red.append(len(edges))
        edges.append(f"  {ids[d.src]} -->|{what}| {ids[d.dst]}")
    dns_sources = sorted({k[0] for k in m.allowed if k[1] == mx.KUBE_DNS})
    if dns_sources:
        lines.append(f'  dns(["kube-dns:53 (from {len(dns_sources)} sources)"])')
    lines += edges
    if red:
        lines.append(f"  linkStyle {','.join(map(str, red))} stroke:#d00,stroke-width:3px,color:#d00")
    return "\n".join(lines)


def one_line(text: str) -> str:
    """A value for a terminal line: its line breaks shown, not taken."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def flow_object(cfg: StackConfig, f) -> dict[str, Any]:
    """A declared flow as data: its ends (and what kind of thing each is), port, protocol and L7/FQDN rules."""

    def kind(name: str | None) -> str | None:
        if name is None:
            return None
        if name in cfg.workloads:
            return "workload"
        peer = cfg.peers.get(name)
        return {"pods": "peer-pods", "addresses": "peer-addresses", "entity": f"peer-entity:{peer.entity}"}.get(peer.kind or "") if peer else None

    out: dict[str, Any] = {
        "from": f.source,
        "fromKind": kind(f.source),
        "to": f.to,
        "toKind": kind(f.to) if f.to else "outside-names",
        "port": cfg.flow_port(f),
        "protocol": cfg.flow_protocol(f),
    }
    if f.to_fqdns:
        out["toFqdns"] = list(f.to_fqdns)
    if f.http:
        out["http"] = [h.model_dump(exclude_none=True) for h in f.http]
    return out


def probes_json(ps: probes_.ProbeSet | None) -> dict[str, Any] | None:
    if ps is None:
        return None
    return {
        "checks": [{"flow": p.flow, "expect": p.expect, "proves": p.proves, "namespace": p.namespace} for p in ps.probes],
        "skipped": list(ps.skipped),
    }


def probe_lines(ps: probes_.ProbeSet | None, markdown: bool) -> list[str]:
    """The live checks and the side each proves: a summary line in text, the list in markdown."""
    if ps is None or not ps.probes:
        return []
    allow = sum(p.expect == "allow" for p in ps.probes)
    ingress = sorted({p.who for p in ps.probes if p.proves.startswith("ingress of ")})
    head = (f"probes: {len(ps.probes)} checks ({allow} must connect, {len(ps.probes) - allow} must time out); "
            f"the targets' ingress proven by {', '.join(ingress) or 'no check'}"
            + (f"; {len(ps.skipped)} flows not probed" if ps.skipped else ""))
    if not markdown:
        return [head]
    rows = [f"| {md.text(p.flow)} | {p.expect} | {md.text(p.proves)} |" for p in ps.probes]
    return ["<details><summary>Live checks (pulumi up, verify)</summary>", "", md.text(head), "",
            "| check | must | proves |", "|---|---|---|", *rows, "", "</details>", ""]


def staging_json(m: mx.Matrix) -> dict[str, Any] | None:
    if m.staging is None:
        return None
    return {"namespaces": list(m.staging.namespaces), "enforcingDenies": [mx.fmt(k) for k in m.enforcing_denies]}


def staging_lines(m: mx.Matrix, markdown: bool) -> list[str]:
    """The staged namespaces: nothing is dropped there, and which cells enforcing them would deny."""
    if m.staging is None:
        return []
    names = ", ".join(m.staging.namespaces)
    denies = m.enforcing_denies
    head = (f"staged (default deny off, nothing dropped): {names}; the matrix shows them enforced, and enforcing them "
            f"would deny {len(denies)} cell(s) allowed now, besides anything else their pods reach or are reached from")
    if not markdown:
        return [head] + [f"  enforcing would deny: {mx.fmt(k)}" for k in denies]
    return ["### Staged namespaces", "", md.text(head), "", *(f"- {md.code(mx.fmt(k))}" for k in denies), ""]


def budget_json(b: budget_.Budget | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return {
        "limit": b.limit,
        "identities": b.identities,
        "otherIdentities": b.other_identities,
        "top": [{"workload": w.workload, "entries": w.entries, "share": round(w.share, 4)} for w in b.top()],
    }


def budget_lines(b: budget_.Budget | None, markdown: bool) -> list[str]:
    """The datapath budget: the stack's identities and its largest policy maps."""
    if b is None or not b.workloads:
        return []
    head = f"policy-map budget: {b.identities} identities (and {b.other_identities} others estimated); the largest maps need " + ", ".join(
        f"{w.workload} {w.entries} ({w.share:.1%})" for w in b.top(3)
    ) + f" of {b.limit} entries"
    if not markdown:
        return [head]
    rows = [f"| {md.text(w.workload)} | {w.entries} | {w.share:.1%} |" for w in b.top()]
    return ["### Datapath budget", "", f"{b.identities} identities, {b.other_identities} others estimated "
            f"(zeroTrust.otherIdentities); policy-map entries per endpoint (an upper bound), of {b.limit}:", "",
            "| workload | entries | share |", "|---|---:|---:|", *rows, ""]


def observed_json(plan: Plan) -> dict[str, Any] | None:
    r, obs = plan.observed, plan.observations
    if r is None or obs is None:
        return None
    return {
        "connections": r.connections,
        "wouldDrop": [d.as_dict() for d in r.would_drop],
        "undecided": [d.as_dict() for d in r.undecided],
        "neverObserved": list(r.never_observed),
        "unknown": list(r.unknown),
        "unattributed": [u.as_dict() for u in r.unattributed],
        "notApplied": list(r.not_applied),
        "staged": None if r.staged is None else {
            "decidedByCilium": r.staged.by_cilium, "judgedOffline": r.staged.offline, "disagreements": list(r.staged.disagreements),
        },
        "skipped": {**dict(obs.skipped), "malformed": obs.malformed},
        "lines": obs.lines,
        "files": [f.as_dict() for f in obs.files],
    }


def observed_lines(plan: Plan, markdown: bool) -> list[str]:
    """What the plan would drop of the observed traffic, and the declared flows never seen."""
    r, obs = plan.observed, plan.observations
    if r is None or obs is None:
        return []
    head = (
        f"observed: {obs.lines} records, {r.connections} distinct connections; "
        f"{len(r.would_drop)} would be dropped by this plan, {len(r.never_observed)} declared flows never observed"
    )
    rows = [f"would drop{'' if d.layer == 'L3/L4' else ' at ' + d.layer} {d.line}: {d.dropped_by}" for d in r.would_drop]
    if r.staged is not None:
        rows.append(
            f"staged namespaces: {r.staged.by_cilium} connections decided by Cilium's policy verdicts, {r.staged.offline} judged "
            "offline as enforced (the capture holds no policy verdict for a staged side: hubble observe --type policy-verdict "
            "records them; aggregated Log Analytics rows do not)"
        )
        rows += [f"Cilium disagrees with the offline replay: {x}" for x in r.staged.disagreements]
    rows += [f"undecided offline {d.line}: {d.dropped_by}" for d in r.undecided]
    rows += [f"policy {x}" for x in r.not_applied]
    rows += [f"never observed: {f}" for f in r.never_observed]
    rows += [f"unknown pod (matches no workload): {u}" for u in r.unknown]
    rows += [f"unattributed {u.end} ({u.count} seen, not judged): {u.why}" for u in r.unattributed]
    for f in obs.files:
        kinds = ", ".join(f"{n} {k}" for k, n in f.kinds.most_common())
        skipped = "".join(f"; skipped {n} {why}" for why, n in sorted(f.skipped.items()))
        rows.append(f"file {f.name} ({f.shape}): {f.records} records ({kinds or 'none readable'}), {f.connections} counted as connections"
                    f"{skipped}" + (f"; {f.malformed} malformed" if f.malformed else ""))
    rows += [f"malformed {m}" for m in obs.malformed]
    if not markdown:
        return [head] + rows
    status = "would DROP observed traffic" if r.would_drop else "drops no observed traffic"
    # Names in a capture come from the cluster (pod labels, DNS answers): code spans keep them from
    # being read as markdown or HTML in a pull-request comment.
    return [f"### Observed traffic: {status}", "", md.text(head), ""] + [f"- {md.code(x)}" for x in rows] + [""]


def outputs_summary(run: Run) -> str:
    """The stack outputs in one short line: short values as they are, longer ones by their size."""
    parts = []
    for k, v in sorted(run.outputs.items()):
        if k in run.secret_outputs:
            parts.append(f"{k} [secret]")
        elif isinstance(v, (list, dict)):
            noun = ("entry", "entries") if isinstance(v, dict) else ("item", "items")
            parts.append(f"{k} ({len(v)} {noun[len(v) != 1]})")
        else:
            text = json.dumps(v)
            parts.append(f"{k} {text if len(text) <= 40 else text[:37] + '...'}")
    return ", ".join(parts)


def outputs_json(run: Run) -> dict[str, Any]:
    return {k: "[secret]" if k in run.secret_outputs else v for k, v in sorted(run.outputs.items())}


def guardrail_lines(plan: Plan, markdown: bool) -> list[str]:
    """The guardrail verdicts, one line each (the same rules as the CrossGuard pack)."""
    r = plan.guardrails
    head = f"guardrails ({plan.levels_source}): " + (
        f"{len(r.mandatory)} mandatory, {len(r.violations) - len(r.mandatory)} advisory violation(s)"
        if r.violations
        else "every rule passes"
    )
    lines = [f"{v.level} {v.rule}: {v.message}" for v in r.violations]
    lines += [f"excepted {e.rule}: {e.resource}: {e.reason} (owner {e.owner}, until {e.expires})" for e in r.excepted]
    if markdown:
        status = "pass" if r.ok else "FAIL"
        bullets = [f"- **{x.split(' ', 1)[0]}** {md.text(x.split(' ', 1)[1])}" for x in lines]
        return [f"### Guardrails: {status}", "", md.text(head)] + ([""] + bullets if bullets else [])
    return [head] + lines
