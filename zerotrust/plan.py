"""``python -m zerotrust plan``: the offline plan of a stack.

Runs the real program under the mock engine, then shows the resource tree,
writes every Kubernetes object as YAML, and proves the connectivity: the
declared flows must equal the flows the generated policies allow.
"""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from policies.analysis import budget as budget_
from policies import guardrails as g
from policies.analysis import matrix as mx
from policies.analysis import probes as probes_
from policies.config import ConfigErrors, StackConfig, load_config
from policies.render import as_enforced, describe, render
from policies.config.stackfile import StackFileError, StackFiles, read_stack
from policies.verdict import crd
from zerotrust import collector
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
    levels: g.StackLevels | None = None
    """The guardrail levels, limits and exceptable rules the plan judged with."""
    exceptions: tuple[g.RuleException, ...] = ()
    """The exceptions the plan judged with (all of the file's, not only this stack's)."""
    probes: probes_.ProbeSet | None = None
    """The checks `pulumi up` and `verify` run, and the side each proves."""
    observed: Any = None
    """With ``--observed``: the replay (``policies.observed.replay.ReplayReport``), imported only then."""
    observations: Any = None
    """With ``--observed``: what was read (``policies.observed.Observations``)."""

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


@collector.fewer_collections()
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
    in_cluster, cluster_notes = read_cluster_policies(cluster_policies) if cluster_policies is not None else ([], [])
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
    # Staged namespaces are judged as enforced (what their rules mean); what they allow meanwhile is kept apart.
    staged = cfg.staged_namespaces
    judged = as_enforced(policies, staged) if staged else policies
    declared = mx.declared_flows(cfg, workloads)
    fqdn_flows = [describe(cfg, f) for f in cfg.flows if f.to_fqdns]
    m = mx.build(judged, workloads, declared, version=cfg.cilium_version, fqdn_flows=fqdn_flows, peers=peers)
    if staged:
        now = mx.build(policies, workloads, declared, version=cfg.cilium_version, peers=peers)
        m.staging = mx.Staging(staged, frozenset(now.allowed))
    m.notes += peer_notes
    report = g.evaluate(policy_resources(run), levels.levels, waivers, levels.settings)
    b = budget_.estimate(objects, cfg.cilium_version, [w.endpoint() for w in mx.workloads_elsewhere(cfg)], cfg.other_identities)
    source = _levels_source(policy_config, levels_dir or project_dir, stack_name)
    plan = Plan(stack, cfg, run, m, report, source, b, levels=levels, exceptions=waivers.exceptions,
                probes=probes_.probes(cfg, render(cfg)) if cfg.zero_trust.verify else None)
    if observed:
        from policies import observed as observed_  # the dev path without captures never pays for the readers
        from policies.observed import replay as replay_

        plan.observations = observed_.read(observed)
        if plan.observations.unreadable:
            raise PlanError([f"--observed {line}" for line in plan.observations.unreadable])
        ours = {_policy_key(p) for p in policies}
        others = [p for p in in_cluster if _policy_key(p) not in ours]  # the plan replaces its own
        plan.observed = replay_.replay(cfg, judged + others, workloads, plan.observations, cfg.cilium_version, cluster_notes)
    return plan


def _policy_key(m: dict[str, Any]) -> tuple[str, str, str]:
    meta = m.get("metadata") or {}
    return (str(m.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def read_cluster_policies(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The policies in ``kubectl get cnp,ccnp,networkpolicies -A -o yaml`` (a List) or a multi-document file,
    as the API server stores them, and a line for each object not replayed or pruned."""
    if not path.is_file():
        raise PlanError([f"--cluster-policies {path}: no such file"])
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as e:
        raise PlanError([f"--cluster-policies {path}: not YAML: {str(e).splitlines()[0]}"]) from None
    items: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("items"), list):
            items += doc["items"]
        elif doc is not None:
            items.append(doc)
    return crd.as_stored(items, f"--cluster-policies {path.name}")


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
