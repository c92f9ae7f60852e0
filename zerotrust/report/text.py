"""The text report, for people at a terminal."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from zerotrust.plan import Plan, resource_rows
from zerotrust.report.sections import (
    budget_lines,
    guardrail_lines,
    matrix_list,
    matrix_table,
    observed_lines,
    one_line,
    outputs_summary,
    probe_lines,
    staging_lines,
)

if TYPE_CHECKING:  # the diff is imported only by a plan against a base
    from zerotrust.diff import BaseDiff


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
    for line in staging_lines(m, markdown=False):
        console.print(escape(line), style="yellow")
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
