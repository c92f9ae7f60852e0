"""``--format markdown``: the plan as a pull-request comment. Every string a stack file, a level file, the
exceptions or a capture put there goes through ``escape``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zerotrust.plan import Plan, resource_rows
from zerotrust.report import escape as md
from zerotrust.report.sections import budget_lines, guardrail_lines, matrix_table, mermaid, observed_lines, probe_lines, staging_lines

if TYPE_CHECKING:  # the diff is imported only by a plan against a base
    from zerotrust.diff import BaseDiff


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
    out += staging_lines(m, markdown=True)
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


def errors_markdown(stack: str, lines: list[str]) -> str:
    """What ``--format markdown`` prints when the stack cannot be planned, so a pull-request comment says why."""
    out = [f"## zero-trust-aks plan: {md.code(stack)}", "", "**The stack cannot be planned:** fix these, one line per problem:", ""]
    out += [f"- {md.code(line)}" for line in lines]
    return "\n".join(out + [""])
