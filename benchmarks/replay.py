"""Replay benchmark (run by hand): ``python -m benchmarks.replay --lines 1000000``.

Writes a capture of N Hubble flow lines for the 200-workload benchmark stack (every declared
flow, each connection a new source port, seen at both of its nodes, with its SYN-ACK reply,
DNS lookups to kube-dns and a share of undeclared calls to the internet), then measures reading
and replaying it against the stack's plan: seconds (median of --repeat runs), lines per second,
distinct connections judged, and the process's peak resident memory before and after.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.run import stack_config
from policies import matrix as mx
from policies import observed
from policies import replay as replay_
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan


def pod(namespace: str, app: str) -> dict:
    return {"namespace": namespace, "labels": [f"k8s:app={app}", f"k8s:io.kubernetes.pod.namespace={namespace}"]}


def write_capture(path: Path, config: dict, lines: int) -> None:
    workloads = config["zero-trust-aks:workloads"]
    ends = {n: (json.dumps(pod(w["namespace"], n)), f"10.{i // 250}.{i % 250}.{10}") for i, (n, w) in enumerate(workloads.items())}
    flows = config["zero-trust-aks:flows"]
    dns = json.dumps(pod("kube-system", "coredns") | {"labels": ["k8s:k8s-app=kube-dns", "k8s:io.kubernetes.pod.namespace=kube-system"]})
    world = json.dumps({"identity": 2, "labels": ["reserved:world"]})
    template = (
        '{{"flow":{{"time":"2026-11-20T09:{m:02d}:{s:02d}Z","verdict":"FORWARDED","IP":{{"source":"{sip}","destination":"{dip}"}},'
        '"l4":{{"{proto}":{{"source_port":{sport},"destination_port":{dport}{flags}}}}},"source":{src},"destination":{dst},'
        '"is_reply":{reply},"node_name":"{node}"}},"node_name":"{node}","time":"2026-11-20T09:{m:02d}:{s:02d}Z"}}\n'
    )
    with open(path, "w") as f:
        n = 0
        while n < lines:
            k = n // 4
            m, s = (k // 60) % 60, k % 60
            sport = 1024 + k % 60000
            flow = flows[k % len(flows)]
            (src, sip), (dst, dip) = ends[flow["from"]], ends[flow["to"]]
            batch = [
                template.format(m=m, s=s, sip=sip, dip=dip, proto="TCP", sport=sport, dport=8080, flags=',"flags":{"SYN":true}',
                                src=src, dst=dst, reply="false", node="node-a"),
                template.format(m=m, s=s, sip=sip, dip=dip, proto="TCP", sport=sport, dport=8080, flags=',"flags":{"SYN":true}',
                                src=src, dst=dst, reply="false", node="node-b"),
                template.format(m=m, s=s, sip=dip, dip=sip, proto="TCP", sport=8080, dport=sport, flags=',"flags":{"SYN":true,"ACK":true}',
                                src=dst, dst=src, reply="true", node="node-b"),
            ]
            if k % 20 == 0:  # undeclared: to the internet
                batch.append(template.format(m=m, s=s, sip=sip, dip=f"20.0.{k % 200}.1", proto="TCP", sport=sport, dport=443,
                                             flags=',"flags":{"SYN":true}', src=src, dst=world, reply="false", node="node-a"))
            else:
                batch.append(template.format(m=m, s=s, sip=sip, dip="10.0.0.10", proto="UDP", sport=sport, dport=53, flags="",
                                             src=src, dst=dns, reply="false", node="node-a"))
            f.writelines(batch[: lines - n])
            n += len(batch)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = stack_config(args.workloads, args.workloads // 5)
    with tempfile.TemporaryDirectory() as d:
        stack, capture = Path(d) / "Pulumi.bench.yaml", Path(d) / "flows.jsonl"
        stack.write_text(yaml.safe_dump({"config": config}))
        write_capture(capture, config, args.lines)
        plan = make_plan("bench", stack, PROJECT_DIR)
        objects = plan.run.kubernetes_objects()
        policies = [o for o in objects if o.get("apiVersion", "").startswith("cilium.io/")]
        workloads = mx.workloads_from_manifests(objects)
        before = peak_mib()
        reads, replays = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            obs = observed.read([capture])
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = replay_.replay(plan.config, policies, workloads, obs, plan.config.cilium_version)
            replays.append(time.perf_counter() - start)
        read_s, replay_s = statistics.median(reads), statistics.median(replays)
        size = capture.stat().st_size / 2**20
    print(f"capture: {args.lines} lines ({size:.0f} MiB), {args.workloads}-workload stack, {len(config['zero-trust-aks:flows'])} flows")
    print(f"read: {read_s:.2f} s median of {args.repeat} ({args.lines / read_s:,.0f} lines/s); skipped {dict(obs.skipped)}")
    print(f"replay: {replay_s:.3f} s for {report.connections} distinct connections (each judged once); "
          f"{len(report.would_drop)} would drop, {len(report.never_observed)} declared flows never observed")
    print(f"peak RSS: {before:.0f} MiB after planning, {peak_mib():.0f} MiB after reading and replaying")


if __name__ == "__main__":
    main()
