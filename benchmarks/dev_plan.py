"""The dev plan against the import floor, paired: ``python -m benchmarks.dev_plan --repeat 7``.

Each round starts two fresh interpreters back to back: one importing the SDK modules the
program instantiates (the floor, ``benchmarks.run.IMPORTS``) and one running
``python -m zerotrust plan --stack dev --format json``; a busy machine slows both alike, so
the round's ratio is fair. Prints the medians and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--stack", default="dev")
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


if __name__ == "__main__":
    main()
