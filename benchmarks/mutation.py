"""The mutation score of the core, from mutmut's last run: ``make mutate`` (``mutmut run``, then this).

Reads ``mutants/`` (the mutated copy mutmut leaves, and its ``*.meta`` verdicts) and prints, per module,
how many mutants the tests killed. A mutant that only changes the text of a string (a message, a
docstring) is counted apart: it changes no decision, only words, so the score of
**behaviour-changing** mutants leaves those out. ``--survivors`` lists the rest that survived.
"""

from __future__ import annotations

import argparse
import ast
import json
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {1, 3, 36, 24, -24, 152, 255, 37}
"""Exit codes mutmut records for a mutant the tests (or a timeout, or the type check) caught."""
SURVIVED = {0}
NO_TESTS = {5, 33}


def _normalised(node: ast.AST) -> str:
    """A function's AST with every string constant blanked: two that differ only in text compare equal."""

    class Blank(ast.NodeTransformer):
        def visit_Constant(self, n: ast.Constant) -> ast.AST:
            return ast.copy_location(ast.Constant("" if isinstance(n.value, str) else n.value), n)

        def visit_FunctionDef(self, n: ast.FunctionDef) -> ast.AST:
            n.name = ""
            self.generic_visit(n)
            return n

    return ast.dump(Blank().visit(node))


def text_only_mutants(source: Path) -> set[str]:
    """The mutants of a mutated module (``x_name__mutmut_N``) that differ from the original only in string text."""
    tree = ast.parse(source.read_text())
    functions: dict[str, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions[node.name] = node
    out = set()
    for name, node in functions.items():
        base, sep, _ = name.rpartition("__mutmut_")
        if not sep or name.endswith("__mutmut_orig"):
            continue
        orig = functions.get(f"{base}__mutmut_orig")
        if orig is not None and _normalised(node) == _normalised(orig):
            out.add(name)
    return out


def results(root: Path) -> dict[str, dict[str, str]]:
    """module -> mutant key -> killed / survived / no tests / text (a surviving text-only mutant counts as text)."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for meta in sorted(root.rglob("*.py.meta")):
        source = meta.with_suffix("")
        module = ".".join(source.relative_to(root).with_suffix("").parts)
        text = text_only_mutants(source)
        for key, code in json.loads(meta.read_text()).get("exit_code_by_key", {}).items():
            name = key.rsplit(".", 1)[-1]
            if name in text or key.split(".")[-1].replace("ǁ", "") in text:
                out[module][key] = "text"
            elif code in KILLED:
                out[module][key] = "killed"
            elif code in SURVIVED:
                out[module][key] = "survived"
            elif code in NO_TESTS:
                out[module][key] = "no tests"
            else:
                out[module][key] = "not run"
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--survivors", action="store_true", help="list the behaviour-changing mutants that survived")
    args = parser.parse_args()
    found = results(args.mutants)
    total: Counter[str] = Counter()
    print("| module | mutants | text only | killed | survived | no tests | behaviour-changing killed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for module, by_key in sorted(found.items()):
        c = Counter(by_key.values())
        total.update(c)
        judged = c["killed"] + c["survived"] + c["no tests"]
        score = f"{c['killed'] / judged:.0%}" if judged else "-"
        print(f"| {module} | {sum(c.values())} | {c['text']} | {c['killed']} | {c['survived']} | {c['no tests']} | {score} |")
    judged = total["killed"] + total["survived"] + total["no tests"]
    print(f"| **all** | {sum(total.values())} | {total['text']} | {total['killed']} | {total['survived']} | {total['no tests']} "
          f"| **{total['killed'] / judged:.1%}** |" if judged else "| **all** | 0 |")
    if total["not run"]:
        print(f"\n{total['not run']} mutants not run yet")
    if args.survivors:
        for module, by_key in sorted(found.items()):
            for key, status in sorted(by_key.items()):
                if status in ("survived", "no tests"):
                    print(f"{status}: {key}")


if __name__ == "__main__":
    main()
