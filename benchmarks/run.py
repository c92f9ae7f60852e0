"""Benchmarks (run by hand, never timed in tests): ``python -m benchmarks.run``.

Generates stacks of N workloads over M namespaces with 3 flows per workload and
measures, as medians of several runs:
  (a) the connectivity matrix with the verdict engine (render + matrix);
  (b) the probe set (render + verdicts for every probe);
  (c) the guardrails over every rendered object and probe Job;
  (d) ``plan`` end to end (stack file -> mock engine run -> matrix -> guardrails).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from policies import guardrails as g
from policies import matrix as mx
from policies.config import load_config
from policies.probes import job, probes
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
        },
        "zero-trust-aks:workloads": {
            n: {"namespace": f"ns{i % namespaces:03d}", "image": "nginxinc/nginx-unprivileged:1.27", "port": 8080}
            for i, n in enumerate(names)
        },
        "zero-trust-aks:flows": list(unique.values()),
    }


def time_matrix(config: dict) -> tuple[float, mx.Matrix]:
    start = time.perf_counter()
    cfg = load_config(config)
    objects = render(cfg).all()
    workloads = mx.workloads_from_manifests(objects)
    m = mx.build([o for o in objects if o["kind"] == "CiliumNetworkPolicy"], workloads, mx.declared_flows(cfg, workloads))
    return time.perf_counter() - start, m


def time_probes(config: dict) -> tuple[float, int]:
    start = time.perf_counter()
    cfg = load_config(config)
    ps = probes(cfg, render(cfg))
    return time.perf_counter() - start, len(ps.probes)


def time_guardrails(config: dict) -> float:
    cfg = load_config(config)
    rendered = render(cfg)
    objects = rendered.all() + [job(p, cfg.zero_trust.probe_image) for p in probes(cfg, rendered).probes]
    cluster = g.Resource(
        g.MANAGED_CLUSTER, "bench",
        {"networkProfile": {"networkPlugin": "azure", "networkDataplane": "cilium", "networkPolicy": "cilium"},
         "disableLocalAccounts": True, "aadProfile": {"enableAzureRBAC": True},
         "apiServerAccessProfile": {"authorizedIPRanges": ["203.0.113.0/24"]}},
    )
    resources = [cluster] + [
        g.Resource(f"kubernetes:{o['apiVersion']}:{o['kind']}", o["metadata"]["name"], o) for o in objects
    ]
    start = time.perf_counter()
    report = g.evaluate(resources, {r.name: "mandatory" for r in g.RULES})
    elapsed = time.perf_counter() - start
    assert report.violations == (), report.violations[:3]
    return elapsed


def time_plan(config: dict) -> float:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "Pulumi.bench.yaml"
        path.write_text(yaml.safe_dump({"config": config}))
        start = time.perf_counter()
        plan = make_plan("bench", path, PROJECT_DIR)
        elapsed = time.perf_counter() - start
        assert plan.ok, plan.matrix.findings[:3]
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plan-max", type=int, default=200, help="largest stack to run plan end to end on")
    args = parser.parse_args()
    print("| workloads | namespaces | flows | cells | matrix (s) | probes | probe set (s) | guardrails (s) | plan (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for workloads, namespaces in SIZES:
        config = stack_config(workloads, namespaces)
        runs = [time_matrix(config) for _ in range(args.repeat)]
        m = runs[0][1]
        assert m.ok, m.findings[:3]
        matrix_s = statistics.median(t for t, _ in runs)
        probe_runs = [time_probes(config) for _ in range(args.repeat)]
        probe_s, probe_count = statistics.median(t for t, _ in probe_runs), probe_runs[0][1]
        guard_s = statistics.median(time_guardrails(config) for _ in range(args.repeat))
        plan_s = "-"
        if workloads <= args.plan_max:
            plan_s = f"{statistics.median(time_plan(config) for _ in range(max(1, args.repeat // 2))):.2f}"
        print(
            f"| {workloads} | {namespaces} | {len(config['zero-trust-aks:flows'])} | {m.cells} | {matrix_s:.2f} "
            f"| {probe_count} | {probe_s:.2f} | {guard_s:.2f} | {plan_s} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
