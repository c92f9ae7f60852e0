"""``python -m zerotrust plan``: the offline plan of a stack.

Runs the real program under the mock engine, then shows the resource tree,
writes every Kubernetes object as YAML, and proves the connectivity: the
declared flows must equal the flows the generated policies allow.
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from policies import budget as budget_
from policies import guardrails as g
from policies import matrix as mx
from policies import observed as observed_
from policies.observed import replay as replay_
from policies import probes as probes_
from policies import review
from policies.verdict import stranger_name
from policies.config import ConfigErrors, StackConfig, load_config
from policies.render import describe, render
from policies.stackfile import StackFileError, StackFiles, read_stack
from zerotrust import markdown as md
from zerotrust.mockrun import PROJECT_DIR, DuplicateRegistrations, Run, ints, run_program, unwrap_secrets


class PlanError(Exception):
    """Bad input: one line per problem, no traceback."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class Plan:
    stack: StackFiles
    config: StackConfig
    run: Run
    matrix: mx.Matrix
    guardrails: g.Report
    levels_source: str
    budget: budget_.Budget | None = None
    settings: review.StackSettings | None = None
    """What the settings diff against a base compares (config, levels, exceptions)."""
    probes: probes_.ProbeSet | None = None
    """The checks `pulumi up` and `verify` run, and the side each proves."""
    observed: replay_.ReplayReport | None = None
    observations: observed_.Observations | None = None

    @property
    def ok(self) -> bool:
        """The plan holds: declared equals enforced, the guardrails pass, no observed traffic would be dropped."""
        return self.matrix.ok and self.guardrails.ok and not (self.observed and self.observed.would_drop)


def levels_file(project_dir: Path, stack: str) -> Path:
    """A stack's guardrail levels, the file CI passes as ``--policy-pack-config``."""
    return project_dir / "guardrails" / "config" / f"{stack}.json"


def read_levels(path: Path | None) -> g.StackLevels:
    """Levels, rules that accept no exception and the rules' settings from a level file; the defaults without one."""
    if path is None:
        return g.stack_levels(None, "")
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise PlanError([f"{path}: cannot read ({e.strerror})"]) from None
    except json.JSONDecodeError as e:
        raise PlanError([f"{path}: not valid JSON ({e.msg} at line {e.lineno})"]) from None
    try:
        return g.stack_levels(doc, str(path))
    except g.LevelConfigError as e:
        raise PlanError(e.lines) from None


@dataclass(frozen=True)
class PlanInputs:
    """The data a plan reads besides the code: the stack file, and where its guardrail levels and exceptions are."""

    stack_file: Path | None = None
    levels: Path | None = None
    """A level file; None: ``guardrails/config/<stack>.json`` under ``levels_dir`` if it exists, else the defaults."""
    levels_dir: Path | None = None
    exceptions: Path | None = None
    config_dir: Path | None = None
    """Where ``Pulumi.yaml`` (its project-level config values) is read; None: the project's own."""


def checkout_inputs(checkout: Path, stack: str, flag: str, missing: str) -> PlanInputs:
    """A checkout's inputs, read as data: its stack file, its levels (the defaults where it has none) and its
    exceptions (none where it has no file)."""
    stack_file = checkout / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise PlanError([f"{flag} {checkout}: no Pulumi.{stack}.yaml there ({missing})"])
    project = checkout if (checkout / "Pulumi.yaml").is_file() else None
    return PlanInputs(stack_file, None, checkout, checkout / g.EXCEPTIONS_FILE, project)


def base_inputs(base: Path, stack: str, head: PlanInputs) -> PlanInputs:
    """The base's inputs: from a checkout directory, its own stack file, levels and exceptions; from a stack
    file, that file with the head's levels and exceptions."""
    if base.is_dir():
        return checkout_inputs(base, stack, "--base", "a new stack has no base to compare with")
    if not base.is_file():
        raise PlanError([f"--base {base}: no such file or directory"])
    return PlanInputs(base, head.levels, head.levels_dir, head.exceptions, head.config_dir)


def read_exceptions(project_dir: Path, path: Path | None = None) -> tuple[g.RuleException, ...]:
    """The reviewed exceptions (``path``, default ``guardrails/exceptions.yaml``); none when the file does not exist."""
    path = path if path is not None else project_dir / g.EXCEPTIONS_FILE
    if not path.exists():
        return ()
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise PlanError([f"{g.EXCEPTIONS_FILE}: not valid YAML" + (f" (line {mark.line + 1})" if mark else "")]) from None
    try:
        return g.parse_exceptions(doc, g.EXCEPTIONS_FILE, g.BY_NAME)
    except g.ExceptionsFileError as e:
        raise PlanError(e.lines) from None


def policy_resources(run: Run) -> list[g.Resource]:
    """The registered custom resources as CrossGuard would see them (type, inputs, URN)."""
    return [
        g.Resource(r.type, r.name, ints(unwrap_secrets(r.inputs)), r.urn)
        for r in run.resources
        if r.custom and not r.type.startswith("pulumi:providers:")
    ]


def make_plan(
    stack_name: str,
    stack_file: Path | None = None,
    project_dir: Path = PROJECT_DIR,
    policy_config: Path | None = None,
    today: datetime.date | None = None,
    observed: Sequence[Path] = (),
    cluster_policies: Path | None = None,
    exceptions: Path | None = None,
    levels_dir: Path | None = None,
    config_dir: Path | None = None,
) -> Plan:
    missing = [f"--observed {p}: no such file" for p in observed if not p.is_file()]
    if missing:
        raise PlanError(missing)
    in_cluster = read_cluster_policies(cluster_policies) if cluster_policies is not None else []
    try:
        stack = read_stack(config_dir or project_dir, stack_name, stack_file)
    except StackFileError as e:
        raise PlanError(e.lines) from None
    if policy_config is None and levels_file(levels_dir or project_dir, stack_name).exists():
        policy_config = levels_file(levels_dir or project_dir, stack_name)
    levels = read_levels(policy_config)
    waivers = g.Waivers(read_exceptions(project_dir, exceptions), stack_name, today or datetime.date.today(), levels.unexceptable)
    try:
        cfg = load_config(stack.config, stack.problems)  # the same validation the program runs first
    except ConfigErrors as e:
        raise PlanError(e.lines) from None
    try:
        run = run_program(stack, project_dir)
    except pulumi.RunError as e:
        raise PlanError(str(e).splitlines()) from None
    except DuplicateRegistrations as e:
        raise PlanError(e.lines) from None
    objects = run.kubernetes_objects()
    workloads = mx.workload_pods(cfg, objects)
    policies = [o for o in objects if o.get("apiVersion", "").startswith("cilium.io/")]
    peers, peer_notes = mx.peer_endpoints(cfg)
    m = mx.build(
        policies,
        workloads,
        mx.declared_flows(cfg, workloads),
        version=cfg.cilium_version,
        fqdn_flows=[describe(cfg, f) for f in cfg.flows if f.to_fqdns],
        peers=peers,
    )
    m.notes += peer_notes
    report = g.evaluate(policy_resources(run), levels.levels, waivers, levels.settings)
    b = budget_.estimate(objects, cfg.cilium_version, [w.endpoint() for w in mx.workloads_elsewhere(cfg)], cfg.other_identities)
    source = _levels_source(policy_config, levels_dir or project_dir, stack_name)
    settings = review.StackSettings(
        cfg, stack.config, stack.ciphertexts, levels, levels_file(Path("."), stack_name).as_posix(), waivers.exceptions, stack_name
    )
    plan = Plan(stack, cfg, run, m, report, source, b, settings=settings, probes=probes_.probes(cfg, render(cfg)) if cfg.zero_trust.verify else None)
    if observed:
        plan.observations = observed_.read(observed)
        if plan.observations.unreadable:
            raise PlanError([f"--observed {line}" for line in plan.observations.unreadable])
        ours = {_policy_key(p) for p in policies}
        others = [p for p in in_cluster if _policy_key(p) not in ours]  # the plan replaces its own
        plan.observed = replay_.replay(cfg, policies + others, workloads, plan.observations, cfg.cilium_version)
    return plan


POLICY_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy", "NetworkPolicy")


def _policy_key(m: dict[str, Any]) -> tuple[str, str, str]:
    meta = m.get("metadata") or {}
    return (str(m.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def read_cluster_policies(path: Path) -> list[dict[str, Any]]:
    """The policies in ``kubectl get cnp,ccnp,networkpolicies -A -o yaml`` (a List) or a multi-document file."""
    if not path.is_file():
        raise PlanError([f"--cluster-policies {path}: no such file"])
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as e:
        raise PlanError([f"--cluster-policies {path}: not YAML: {str(e).splitlines()[0]}"]) from None
    items: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("items"), list):
            items += [i for i in doc["items"] if isinstance(i, dict)]
        elif isinstance(doc, dict):
            items.append(doc)
    return [i for i in items if i.get("kind") in POLICY_KINDS]


def _levels_source(path: Path | None, project_dir: Path, stack: str) -> str:
    if path is None:
        missing = levels_file(project_dir, stack).relative_to(project_dir).as_posix()
        return f"the rules' default (production) levels: add {missing} to set this stack's own"
    return path.relative_to(project_dir).as_posix() if path.is_relative_to(project_dir) else str(path)


# -- outputs -------------------------------------------------------------------------------


def resource_rows(run: Run) -> list[tuple[int, str, str]]:
    """(depth, type, name), children under their parents, siblings sorted (registration order varies)."""
    children: dict[str, list] = {}
    for r in run.resources:
        children.setdefault(r.parent if r.parent in {x.urn for x in run.resources} else "", []).append(r)
    rows: list[tuple[int, str, str]] = []

    def walk(parent: str, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda x: (x.type, x.name)):
            rows.append((depth, r.type, r.name))
            walk(r.urn, depth + 1)

    walk("", 0)
    return rows


def object_path(o: dict[str, Any]) -> str:
    meta = o.get("metadata") or {}
    ns = meta.get("namespace") or "_cluster"
    return f"{ns}/{o.get('kind', 'Object')}-{meta.get('name', 'unnamed')}.yaml"


MARKER = ".zerotrust-plan"
"""Marks a directory as plan output, the only kind ``write_objects`` will clear."""


def check_out_dir(out: Path) -> None:
    """Refuse to clear a directory that is not an earlier plan's output (e.g. ``--out .``)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise PlanError([f"--out {out}: exists and is not the output of an earlier plan; choose a new or empty directory"])


def write_objects(run: Run, out: Path) -> list[str]:
    """One YAML file per Kubernetes object, secrets masked; files of an earlier plan there are removed."""
    check_out_dir(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by python -m zerotrust plan; the next plan replaces this directory\n")
    written = []
    for o in sorted((unwrap_secrets(x, mask=True) for x in run.kubernetes_objects()), key=object_path):
        path = out / object_path(o)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(o, sort_keys=True))
        written.append(object_path(o))
    return written


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


@dataclass(frozen=True)
class BaseDiff:
    """What changes against the base branch's plan: cells, rules and objects."""

    newly_allowed: list[str]
    no_longer_allowed: list[str]
    rules: list[review.RuleChange]
    objects: dict[str, str]
    """object path -> unified diff of its YAML, for every object that changed."""
    settings: list[review.SettingChange] = field(default_factory=list)
    """Settings, guardrail levels and exceptions that differ (what renders no policy)."""

    @property
    def unchanged(self) -> bool:
        return not (self.newly_allowed or self.no_longer_allowed or self.rules or self.objects or self.settings)


def one_line(text: str) -> str:
    """A value for a terminal line: its line breaks shown, not taken."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def cilium_policies(run: Run) -> list[dict[str, Any]]:
    return [o for o in run.kubernetes_objects() if str(o.get("apiVersion", "")).startswith("cilium.io/")]


def base_diff(base: Plan, head: Plan) -> BaseDiff:
    added, removed = mx.diff(base.matrix, head.matrix)
    rules = review.rule_changes(cilium_policies(base.run), cilium_policies(head.run))

    def by_path(run: Run) -> dict[str, str]:
        return {
            object_path(o): yaml.safe_dump(o, sort_keys=True)
            for o in (unwrap_secrets(x, mask=True) for x in run.kubernetes_objects())
            if o.get("kind") != "Job"  # probe Jobs change name with every policy change; their verdicts are in the matrix
        }

    old, new = by_path(base.run), by_path(head.run)
    objects = {}
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            objects[path] = "".join(
                difflib.unified_diff(
                    (old.get(path) or "").splitlines(keepends=True),
                    (new.get(path) or "").splitlines(keepends=True),
                    fromfile=f"base/{path}",
                    tofile=f"head/{path}",
                )
            )
    settings = review.setting_changes(base.settings, head.settings) if base.settings and head.settings else []
    return BaseDiff(added, removed, rules, objects, settings)


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
    return [f"### Datapath budget", "", f"{b.identities} identities, {b.other_identities} others estimated "
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
    rows += [f"undecided offline {d.line}: {d.dropped_by}" for d in r.undecided]
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


def as_json(plan: Plan, base_diff: BaseDiff | None) -> dict[str, Any]:
    m = plan.matrix
    doc: dict[str, Any] = {
        "stack": plan.stack.stack,
        "ok": plan.ok,
        "ciliumVersion": ".".join(map(str, plan.config.cilium_version)),
        "resources": [{"type": t, "name": n, "depth": d} for d, t, n in resource_rows(plan.run)],
        "outputs": outputs_json(plan.run),
        "flows": [flow_object(plan.config, f) for f in plan.config.flows],
        "budget": budget_json(plan.budget),
        "probes": probes_json(plan.probes),
        "observed": observed_json(plan),
        "declared": [mx.fmt(k) for k in sorted(m.expected)],
        "allowed": [mx.fmt(k) for k in sorted(m.allowed)],
        "findings": [{"kind": f.kind, "flow": f.flow, "message": f.message} for f in m.findings],
        "notes": m.notes,
        "cells": m.cells,
        "guardrails": {
            "levels": plan.levels_source,
            "violations": [
                {"rule": v.rule, "level": v.level, "resource": v.resource, "message": v.message}
                for v in plan.guardrails.violations
            ],
            "excepted": [
                {"rule": e.rule, "resource": e.resource, "reason": e.reason, "owner": e.owner, "expires": e.expires}
                for e in plan.guardrails.excepted
            ],
        },
    }
    if base_diff is not None:
        doc["diff"] = {
            "newlyAllowed": base_diff.newly_allowed,
            "noLongerAllowed": base_diff.no_longer_allowed,
            "rules": [
                {"change": c.change, "what": c.what, "policy": c.policy, "flow": c.flow, "before": c.before, "after": c.after}
                for c in base_diff.rules
            ],
            "objects": sorted(base_diff.objects),
            "settings": [
                {"path": s.path, "change": s.change, "before": s.before, "after": s.after, "note": s.note} for s in base_diff.settings
            ],
        }
    return doc


def as_markdown(plan: Plan, base_diff: BaseDiff | None) -> str:
    m = plan.matrix
    verdict = "holds" if m.ok else "does NOT hold"
    # Every string from a stack file, a level file, the exceptions or a capture goes through md.text or
    # md.code: a pull request must not be able to forge or hide a section of its own comment.
    out = [
        f"## zero-trust-aks plan: {md.code(plan.stack.stack)}",
        "",
        f"**Declared flows == enforced flows: {verdict}** "
        f"({len(m.allowed)} allowed of {m.cells} cells, Cilium {'.'.join(map(str, plan.config.cilium_version))} semantics)",
        "",
    ]
    if m.findings:
        out += ["### Findings", ""] + [f"- {md.text(f.message)}" for f in m.findings] + [""]
    out += guardrail_lines(plan, markdown=True) + [""]
    out += observed_lines(plan, markdown=True)
    out += budget_lines(plan.budget, markdown=True)
    out += probe_lines(plan.probes, markdown=True)
    if base_diff is not None:
        out += ["### Change against the base", ""]
        out += [f"- newly allowed: {md.code(f)}" for f in base_diff.newly_allowed]
        out += [f"- no longer allowed: {md.code(f)}" for f in base_diff.no_longer_allowed]
        out += [
            f"- **{c.change}** {c.what} in {md.code(c.policy)}" + (f" ({md.text(c.flow)})" if c.flow else "")
            + f": {md.code(c.before or '-')} → {md.code(c.after or '-')}"
            for c in base_diff.rules
        ]
        out += [
            f"- **{c.change}** setting {md.code(c.path)}: {md.code(c.before or '-')} → {md.code(c.after or '-')}"
            + (f" ({md.text(c.note)})" if c.note else "")
            for c in base_diff.settings
        ]
        if base_diff.unchanged:
            out.append("- no change")
        if base_diff.objects:
            out += ["", f"<details><summary>Objects that change ({len(base_diff.objects)})</summary>", ""]
            out += md.fence([line for d in base_diff.objects.values() for line in d.rstrip("\n").splitlines()], "diff")
            out += ["</details>"]
        out.append("")
    legend = " (dashed: declared, never observed; red: observed, would be dropped)" if plan.observed is not None else ""
    out += [f"### Allowed flows{legend}", "", *md.fence(mermaid(plan).splitlines(), "mermaid"), ""]
    if len(m.sources) * len(m.targets) <= 400:
        header, rows = matrix_table(m)
        out += ["| " + " | ".join(map(md.text, header)) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(map(md.text, r)) + " |" for r in rows]
        out.append("")
    out += ["<details><summary>Resources</summary>", ""]
    out += md.fence([f"{'  ' * d}{t}  {n}" for d, t, n in resource_rows(plan.run)])
    out += ["</details>", ""]
    if m.notes:
        out += ["### Not decided offline", ""] + [f"- {md.text(n)}" for n in m.notes] + [""]
    return "\n".join(out)


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


def errors_json(stack: str, lines: list[str]) -> dict[str, Any]:
    """What ``--format json`` prints when the stack cannot be planned: the problems, one per item."""
    return {"stack": stack, "ok": False, "errors": lines}


def errors_markdown(stack: str, lines: list[str]) -> str:
    """What ``--format markdown`` prints when the stack cannot be planned, so a pull-request comment says why."""
    out = [f"## zero-trust-aks plan: {md.code(stack)}", "", "**The stack cannot be planned:** fix these, one line per problem:", ""]
    out += [f"- {md.code(line)}" for line in lines]
    return "\n".join(out + [""])


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


def print_text(plan: Plan, base_diff: BaseDiff | None, written: list[str] | None, out_dir) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.tree import Tree

    # A terminal's own width, or $COLUMNS; 100 columns when piped without it.
    console = Console(highlight=False, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit() else 100)
    tree = Tree(f"pulumi:pulumi:Stack  {plan.stack.project}-{plan.stack.stack}")
    nodes = {-1: tree}
    for depth, typ, name in resource_rows(plan.run):
        nodes[depth] = nodes[depth - 1].add(f"{escape(typ)}  [bold]{escape(name)}[/bold]")
    console.print(tree)
    console.print(escape(f"{len(plan.run.resources)} resources; outputs (all of them with --format json): {outputs_summary(plan.run)}"))
    if written is not None:
        console.print(f"wrote {len(written)} Kubernetes objects to {out_dir}")
    m = plan.matrix
    header, rows = matrix_table(m)
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    if sum(w + 3 for w in widths) + 1 <= console.width and len(rows) <= 60:
        table = Table(title="Connectivity (allow = allowed; ALLOW!/DENY! = disagrees with the declared flows)")
        for h in header:
            table.add_column(h)
        for r in rows:
            table.add_row(*(escape(c) for c in r))
        console.print(table)
    else:  # wider than the terminal: one line per source
        console.print(f"Connectivity ({len(m.allowed)} allowed of {m.cells} cells; ! = disagrees with the declared flows):")
        for line in matrix_list(m):
            console.print(escape(line))
    for n in m.notes:
        console.print(f"note: {escape(n)}")
    if base_diff is not None:
        for f in base_diff.newly_allowed:
            console.print(f"+ newly allowed: {f}")
        for f in base_diff.no_longer_allowed:
            console.print(f"- no longer allowed: {f}")
        for c in base_diff.rules:
            console.print(escape(f"{'!' if c.change in ('widened', 'added', 'changed') else '~'} {c.line}"))
        for s in base_diff.settings:
            console.print(escape(f"{'~' if s.change == 'narrowed' else '!'} {one_line(s.line)}"))
        if base_diff.unchanged:
            console.print("unchanged against the base")
    for f in m.findings:
        console.print(f"[red]finding:[/red] {escape(f.message)}")
    for line in observed_lines(plan, markdown=False):
        console.print(escape(line), style="red" if line.startswith("would drop") else None)
    for line in budget_lines(plan.budget, markdown=False) + probe_lines(plan.probes, markdown=False):
        console.print(escape(line))
    for line in guardrail_lines(plan, markdown=False):
        console.print(escape(line), style="red" if line.startswith("mandatory") else None)
    verdict = "[green]holds[/green]" if m.ok else "[red]does NOT hold[/red]"
    console.print(f"declared flows == enforced flows: {verdict}")
    console.print(f"guardrails: {'[green]pass[/green]' if plan.guardrails.ok else '[red]FAIL[/red]'}")
    if plan.observed is not None:
        drops = len(plan.observed.would_drop)
        console.print(f"observed traffic: {'[red]%d connections would be dropped[/red]' % drops if drops else '[green]none dropped[/green]'}")
