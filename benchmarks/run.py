"""Benchmarks (run by hand, never timed in tests): ``python -m benchmarks.run``.

Generates stacks of N workloads over M namespaces with 3 flows per workload and
measures, as medians of several runs:
  (a) the import floor: a fresh interpreter importing the SDK modules the program uses;
  (b) the connectivity matrix with the verdict engine (render + matrix);
  (c) ``plan`` end to end (stack file -> mock engine run -> matrix -> guardrails -> budget),
      with the resources and probe Jobs it registers and the largest policy map; ``plan / floor`` is the
      median of each plan run's ratio to an import-floor run made just before it (paired, as
      ``benchmarks.dev_plan``: this 2-core machine's speed wanders by a fifth from minute to minute).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from policies.analysis import matrix as mx
from policies import memo
from policies.config import load_config
from policies.analysis.probes import probes
from policies.render import render
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan

SIZES = ((50, 10), (200, 40), (1000, 100))


def stack_config(workloads: int, namespaces: int) -> dict:
    names = [f"w{i:04d}" for i in range(workloads)]
    flows = []
    for i, name in enumerate(names):
        for step in (1, 7, 31):
            target = names[(i + step) % workloads]
            if target != name:
                flows.append({"from": name, "to": target})
    unique = {(f["from"], f["to"]): f for f in flows}
    return {
        "azure-native:location": "westeurope",
        "zero-trust-aks:resourceGroupName": "bench-rg",
        "zero-trust-aks:cluster": {  # production-like, so every guardrail applies and passes
            "name": "bench",
            "entraId": {},
            "disableLocalAccounts": True,
            "authorizedIpRanges": ["203.0.113.0/24"],
            "defender": True,
        },
        "zero-trust-aks:workloads": {
            n: {"namespace": f"ns{i % namespaces:03d}", "image": "nginxinc/nginx-unprivileged:1.27", "port": 8080}
            for i, n in enumerate(names)
        },
        "zero-trust-aks:flows": list(unique.values()),
    }


def time_matrix(config: dict) -> tuple[float, mx.Matrix]:
    memo.clear()
    start = time.perf_counter()
    cfg = load_config(config)
    objects = render(cfg).all()
    workloads = mx.workload_pods(cfg, objects)
    m = mx.build([o for o in objects if o["kind"] == "CiliumNetworkPolicy"], workloads, mx.declared_flows(cfg, workloads))
    return time.perf_counter() - start, m


def time_probes(config: dict) -> tuple[float, int]:
    memo.clear()
    start = time.perf_counter()
    cfg = load_config(config)
    ps = probes(cfg, render(cfg))
    return time.perf_counter() - start, len(ps.probes)


def time_plan(config: dict) -> tuple[float, Any]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "Pulumi.bench.yaml"
        path.write_text(yaml.safe_dump({"config": config}))
        memo.clear()  # cold: nothing compiled or probed by an earlier round
        start = time.perf_counter()
        plan = make_plan("bench", path, PROJECT_DIR)
        elapsed = time.perf_counter() - start
        assert plan.ok, plan.matrix.findings[:3]
        return elapsed, plan


IMPORTS = (
    "from pulumi_azure_native.containerservice import ManagedCluster, list_managed_cluster_user_credentials_output; "
    "from pulumi_azure_native.resources import ResourceGroup, get_resource_group_output; "
    "from pulumi_kubernetes.apps.v1 import Deployment; from pulumi_kubernetes.core.v1 import Namespace, Service; "
    "from pulumi_kubernetes.batch.v1 import Job; from pulumi_kubernetes.apiextensions import CustomResource; "
    "from pulumi_kubernetes import Provider; import pulumi.dynamic"
)
"""The SDK modules the program instantiates: importing them is the floor under any plan."""


def import_floor(repeat: int) -> float:
    """Median seconds for a fresh interpreter to import the SDK modules (less the bare interpreter's start)."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_DIR)
        return time.perf_counter() - start

    bare = statistics.median(run("pass") for _ in range(repeat))
    return statistics.median(run(IMPORTS) for _ in range(repeat)) - bare


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plan-max", type=int, default=200, help="largest stack to run plan end to end on")
    args = parser.parse_args()
    floor = import_floor(args.repeat)
    print(f"import floor: {floor:.2f} s (python -c '{IMPORTS}', less a bare interpreter)")
    print("| workloads | namespaces | flows | cells | matrix (s) | checks | Jobs | resources | per workload | largest policy map | plan (s) | plan / floor |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for workloads, namespaces in SIZES:
        config = stack_config(workloads, namespaces)
        runs = [time_matrix(config) for _ in range(args.repeat)]
        m = runs[0][1]
        assert m.ok, m.findings[:3]
        matrix_s = statistics.median(t for t, _ in runs)
        probe_count = time_probes(config)[1]  # the checks the probes run (counted, not timed: plan includes them)
        plan_s = resources = jobs = per = ratio = biggest = "-"
        if workloads <= args.plan_max:
            # Paired: each plan run right after a fresh floor run, so a machine slower for a while slows both.
            rounds = [(import_floor(1), *time_plan(config)) for _ in range(max(1, args.repeat // 2))]
            seconds = statistics.median(t for _, t, _ in rounds)
            plan = rounds[0][2]
            ratio_x = statistics.median(t / f for f, t, _ in rounds)
            plan_s, ratio = f"{seconds:.2f}", f"{ratio_x:.1f}x"
            resources = len(plan.run.resources)
            jobs = sum(r.type == "kubernetes:batch/v1:Job" for r in plan.run.resources)
            per = f"{resources / workloads:.2f}"
            top = plan.budget.workloads[0]
            biggest = f"{top.entries} ({top.share:.2%})"
        print(
            f"| {workloads} | {namespaces} | {len(config['zero-trust-aks:flows'])} | {m.cells} | {matrix_s:.2f} "
            f"| {probe_count} | {jobs} | {resources} | {per} | {biggest} | {plan_s} | {ratio} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
