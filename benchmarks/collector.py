"""A plan under CPython's default collector thresholds and under the plan's own (``zerotrust.collector``):
``python -m benchmarks.collector --workloads 200 --repeat 3``.

Each round runs both settings back to back, each in a fresh interpreter (so the peak memory is that
plan's alone), on the generated stack of ``benchmarks.run``; prints the medians of the plan's time, the
time spent collecting (``gc.callbacks``) and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from zerotrust.mockrun import PROJECT_DIR

ONE = """
import gc, json, resource, sys, tempfile, time
from pathlib import Path
import yaml
from benchmarks.run import stack_config
from zerotrust import collector
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan
workloads, default = int(sys.argv[1]), sys.argv[2] == "default"
if default:
    collector.PLAN_THRESHOLDS = gc.get_threshold()
spent, started = [0.0], [0.0]
def timed(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        spent[0] += time.perf_counter() - started[0]
gc.callbacks.append(timed)
with tempfile.TemporaryDirectory() as d:
    path = Path(d) / "Pulumi.bench.yaml"
    path.write_text(yaml.safe_dump({"config": stack_config(workloads, max(1, workloads // 5))}))
    spent[0] = 0.0
    start = time.perf_counter()
    plan = make_plan("bench", path, PROJECT_DIR)
    elapsed = time.perf_counter() - start
assert plan.ok
print(json.dumps({"plan": elapsed, "collecting": spent[0], "peak MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def one(workloads: int, setting: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", ONE, str(workloads), setting], check=True, cwd=PROJECT_DIR,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"default": [], "plan": []}
    for _ in range(args.repeat):
        for setting in runs:
            runs[setting].append(one(args.workloads, setting))
    print(f"| thresholds ({args.workloads} workloads, medians of {args.repeat}) | plan (s) | collecting (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for setting, rs in runs.items():
        row = [statistics.median(r[k] for r in rs) for k in ("plan", "collecting", "peak MiB")]
        print(f"| {setting} | {row[0]:.2f} | {row[1]:.2f} | {row[2]:.0f} |")


if __name__ == "__main__":
    main()
