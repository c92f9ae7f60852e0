"""The dev plan against the import floor, paired: ``python -m benchmarks.dev_plan --repeat 7``.

Each round starts fresh interpreters back to back: a bare one, one importing the SDK modules the
program instantiates (the floor, ``benchmarks.run.IMPORTS``), the same with the command's collector
settings (``TUNED_FLOOR``), and one running ``python -m zerotrust plan --stack dev --format json``; a
busy machine slows them alike, so the round's ratios are fair. Prints the medians and the median of
the per-round ratios, against the floor as it is and like for like.
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


TUNED_FLOOR = f"import gc; gc.disable(); {IMPORTS}; gc.freeze()"
"""The floor with the collector settings the command uses (zerotrust.collector): no collection while
importing, none at exit. The command gains them, so the like-for-like ratio is against this floor."""


def seconds(*argv: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


BREAKDOWN = """
import contextlib, gc, io, json, sys, time
gc.disable()  # as the command does while it imports (zerotrust.collector)
t0 = time.perf_counter()
exec(sys.argv[1])
t1 = time.perf_counter()
import pydantic
t2 = time.perf_counter()
import zerotrust.__main__ as cli, zerotrust.plan as plan_module
from zerotrust import collector
collector.command_started()
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
print(json.dumps({"SDK imports (in-process, collection off)": t1 - t0, "pydantic": t2 - t1, "the project's modules": t3 - t2,
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
    bare, floor, tuned, plan = [], [], [], []
    for _ in range(args.repeat):
        bare.append(seconds("-c", "pass"))
        floor.append(seconds("-c", IMPORTS))
        tuned.append(seconds("-c", TUNED_FLOOR))
        plan.append(seconds("-m", "zerotrust", "plan", "--stack", args.stack, "--format", "json"))
    ratios = [(p - b) / (f - b) for b, f, p in zip(bare, floor, plan)]
    like = [(p - b) / (t - b) for b, t, p in zip(bare, tuned, plan)]
    print(f"{args.repeat} paired rounds: bare interpreter {statistics.median(bare):.2f} s, import floor "
          f"{statistics.median(floor):.2f} s, plan --stack {args.stack} {statistics.median(plan):.2f} s (medians); "
          f"plan / floor (bare start taken off both, median of the rounds' ratios): {statistics.median(ratios):.2f}x")
    print(f"the floor with the command's collector settings {statistics.median(tuned):.2f} s; "
          f"plan / that floor, like for like: {statistics.median(like):.2f}x")
    if args.breakdown:
        print(f"phases of one process (medians of {args.repeat}):")
        for phase, spent in breakdown(args.repeat, args.stack).items():
            print(f"  {spent:.3f} s  {phase}")


if __name__ == "__main__":
    main()
