"""The ``verify`` command: where the kubeconfig comes from, progress, the table, the exit code."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from policies.config import ConfigErrors, StackConfig, load_config
from policies.analysis.probes import probes
from policies.render import render
from policies.config.stackfile import StackFileError, read_stack
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.verify import Kube, Report, Unreachable, verify


class BadInput(Exception):
    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


@contextmanager
def kubeconfig_for(
    cfg: StackConfig,
    stack: str,
    kubeconfig: Path | None,
    context: str | None,
    which: Callable[[str], str | None] | None = None,
    run: Callable[..., subprocess.CompletedProcess] | None = None,
) -> Iterator[tuple[str | dict | None, str | None]]:
    """(kubeconfig, context) for the cluster: a path (None: the default), or a stack's kubeconfig output
    parsed in memory."""
    which, run = which or shutil.which, run or subprocess.run
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            raise BadInput([f"--kubeconfig {kubeconfig}: no such file"])
        yield str(kubeconfig), context
        return
    if cfg.kubernetes is not None:
        yield cfg.kubernetes.kubeconfig, context or cfg.kubernetes.context
        return
    pulumi = which("pulumi")
    if pulumi is None:
        raise BadInput(
            [f"--stack {stack}: reading its kubeconfig output needs the Pulumi CLI on PATH; or pass --kubeconfig FILE"]
        )
    out = run(
        [pulumi, "stack", "output", "kubeconfig", "--show-secrets", "--stack", stack, "--cwd", str(PROJECT_DIR)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0 or not out.stdout.strip():
        why = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise BadInput([f"--stack {stack}: `pulumi stack output kubeconfig` failed: {why}"])
    try:
        doc = yaml.safe_load(out.stdout)
    except yaml.YAMLError:
        doc = None
    if not isinstance(doc, dict):
        raise BadInput([f"--stack {stack}: the kubeconfig output is not a kubeconfig"])
    # Held in memory only: never written to disk by this tool (see docs/plan-and-verify.md for
    # what the kubernetes client itself writes).
    yield doc, context


def run_verify(args: argparse.Namespace, kube_factory: Callable[[str | dict | None, str | None], Kube] = Kube.from_kubeconfig) -> int:
    try:
        try:
            stack = read_stack(PROJECT_DIR, args.stack, args.stack_file)
            cfg = load_config(stack.config, stack.problems)
        except StackFileError as e:
            raise BadInput(e.lines) from None
        except ConfigErrors as e:
            raise BadInput(e.lines) from None
        rendered = render(cfg)
        probe_set = probes(cfg, rendered)
        with kubeconfig_for(cfg, args.stack, args.kubeconfig, args.context) as (path, context):
            kube = kube_factory(path, context)
            report = _run(kube, cfg, rendered, probe_set.probes, args)
    except BadInput as e:
        for line in e.lines:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except Unreachable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps({"ok": report.ok, "skipped": list(probe_set.skipped), "checks": [r.__dict__ for r in report.rows]}, indent=2))
    else:
        print_report(report, probe_set.skipped)
    return 0 if report.ok else 1


def _run(kube: Kube, cfg: StackConfig, rendered, probe_list, args) -> Report:
    if args.format == "json" or not sys.stderr.isatty():
        return verify(kube, cfg, rendered, probe_list, timeout=args.timeout)
    from rich.console import Console

    with Console(stderr=True).status(f"waiting for {len(probe_list)} probes") as status:
        return verify(
            kube, cfg, rendered, probe_list, timeout=args.timeout,
            progress=lambda done, total: status.update(f"waiting for probes: {done}/{total} done"),
        )


def print_report(report: Report, skipped: tuple[str, ...]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    table = Table(title="zero-trust-aks verify")
    for col in ("check", "expected", "observed", "time", ""):
        table.add_column(col)
    for r in report.rows:
        table.add_row(
            escape(r.check), escape(r.expected), escape(r.observed),
            "" if r.seconds is None else f"{r.seconds:.0f} s",
            "[green]ok[/green]" if r.ok else "[red]FAIL[/red]",
        )
    console.print(table)
    for s in skipped:
        console.print(f"not probed: {escape(s)}")
    failed = [r for r in report.rows if not r.ok]
    for r in failed:
        console.print(f"[red]disagrees:[/red] {escape(r.check)}: expected {escape(r.expected)}, observed {escape(r.observed)}")
    console.print("verify: " + ("[green]the cluster enforces what the stack declares[/green]" if not failed else f"[red]{len(failed)} check(s) failed[/red]"))
