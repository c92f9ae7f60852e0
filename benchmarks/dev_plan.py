"""The dev plan against the import floor, paired: ``python -m benchmarks.dev_plan --repeat 7``.

Each round starts two fresh interpreters back to back: one importing the SDK modules the
program instantiates (the floor, ``benchmarks.run.IMPORTS``) and one running
``python -m zerotrust plan --stack dev --format json``; a busy machine slows both alike, so
the round's ratio is fair. Prints the medians and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.run import IMPORTS
from zerotrust.mockrun import PROJECT_DIR


ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
"""A user's interpreter writes bytecode caches: with PYTHONDONTWRITEBYTECODE set (some CI images set it), every
round would compile the project's modules from source while the SDK's, compiled by pip, load from cache."""


def seconds(*argv: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


BREAKDOWN = """
import contextlib, io, json, sys, time
t0 = time.perf_counter()
exec(sys.argv[1])
t1 = time.perf_counter()
import pydantic
t2 = time.perf_counter()
import zerotrust.__main__ as cli, zerotrust.plan as plan_module
t3 = time.perf_counter()
program = plan_module.run_program
spent = []
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return program(*args, **kwargs)
    finally:
        spent.append(time.perf_counter() - start)
plan_module.run_program = timed
with contextlib.redirect_stdout(io.StringIO()):
    cli.main(["plan", "--stack", sys.argv[2], "--format", "json"])
t4 = time.perf_counter()
print(json.dumps({"SDK imports (the floor)": t1 - t0, "pydantic": t2 - t1, "the project's modules": t3 - t2,
                  "the program under the mock engine": sum(spent), "the rest of the plan (matrix, guardrails, budget, "
                  "probes, output)": t4 - t3 - sum(spent)}))
"""
"""One process timing its own phases: where the plan's time beyond the floor goes."""


def breakdown(repeat: int, stack: str) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", BREAKDOWN, IMPORTS, stack], check=True, cwd=PROJECT_DIR,
                             capture_output=True, text=True, env=ENV).stdout
        runs.append(json.loads(out))
    return {phase: statistics.median(r[phase] for r in runs) for phase in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--breakdown", action="store_true", help="also time the plan's phases in one process")
    args = parser.parse_args()
    seconds("-c", IMPORTS)  # warm the file cache and the bytecode caches once
    seconds("-m", "zerotrust", "plan", "--stack", args.stack, "--format", "json")
    bare, floor, plan = [], [], []
    for _ in range(args.repeat):
        bare.append(seconds("-c", "pass"))
        floor.append(seconds("-c", IMPORTS))
        plan.append(seconds("-m", "zerotrust", "plan", "--stack", args.stack, "--format", "json"))
    ratios = [(p - b) / (f - b) for b, f, p in zip(bare, floor, plan)]
    print(f"{args.repeat} paired rounds: bare interpreter {statistics.median(bare):.2f} s, import floor "
          f"{statistics.median(floor):.2f} s, plan --stack {args.stack} {statistics.median(plan):.2f} s (medians); "
          f"plan / floor (bare start taken off both, median of the rounds' ratios): {statistics.median(ratios):.2f}x")
    if args.breakdown:
        print(f"phases of one process (medians of {args.repeat}):")
        for phase, spent in breakdown(args.repeat, args.stack).items():
            print(f"  {spent:.3f} s  {phase}")


if __name__ == "__main__":
    main()
