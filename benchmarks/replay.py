"""Replay benchmark (run by hand): ``python -m benchmarks.replay --lines 1000000``.

Writes a capture of N Hubble lines for the 200-workload benchmark stack, shaped like real captures
(the fields, label sets and sizes of cilium/hubble-otel's kind and GKE records, about 1.4 KB a line):
every declared flow's connections seen at both of their nodes with their SYN-ACK replies, an L7
HTTP request and its response on a share of them, DNS lookups with their answers, and a share of
undeclared calls to the internet. Then measures, as medians of --repeat paired runs (the three
loops run back to back in each round, so a busy machine slows all three alike):

- a bare ``json.loads`` loop and a bare ``orjson.loads`` loop over the same lines;
- the reader (``policies.observed.read``): lines per second, and its time as a multiple of each loop;
- the replay of the distinct connections against the stack's plan;
- the process's peak resident memory after planning and after reading and replaying.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import yaml

from benchmarks.run import stack_config
from policies.analysis import matrix as mx
from policies import observed
from policies.observed import replay as replay_
from policies.observed.hubble import L7_RECORD
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan


def endpoint(namespace: str, app: str, identity: int, pod_name: str, local: bool) -> dict:
    """An end as Hubble writes a pod: Cilium's identity labels, the pod name, its numeric ID when local."""
    labels = [
        f"k8s:app={app}",
        f"k8s:app.kubernetes.io/name={app}",
        "k8s:app.kubernetes.io/managed-by=zero-trust-aks",
        f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={namespace}",
        "k8s:io.cilium.k8s.namespace.labels.pod-security.kubernetes.io/enforce=restricted",
        "k8s:io.cilium.k8s.policy.cluster=default",
        f"k8s:io.cilium.k8s.policy.serviceaccount={app}",
        f"k8s:io.kubernetes.pod.namespace={namespace}",
    ]
    out = {"identity": identity, "namespace": namespace, "labels": labels, "pod_name": pod_name,
           "workloads": [{"name": app, "kind": "Deployment"}]}
    return {"ID": identity % 4000, **out} if local else out


def record(time_: str, node: str, src: dict, dst: dict, sip: str, dip: str, proto: str, sport: int, dport: int, *,
           flags: dict | None = None, reply: bool = False, point: str = "TO_ENDPOINT", l7: dict | None = None) -> bytes:
    l4 = {proto: {"source_port": sport, "destination_port": dport, **({"flags": flags} if flags else {})}}
    flow = {
        "time": time_, "verdict": "FORWARDED",
        "ethernet": {"source": "6e:3c:ce:d3:9e:a6", "destination": "d2:d9:76:de:f4:90"},
        "IP": {"source": sip, "destination": dip, "ipVersion": "IPv4"}, "l4": l4, "source": src, "destination": dst,
        "Type": L7_RECORD if l7 else "L3_L4", "node_name": node, "event_type": {"type": 129 if l7 else 4},
        "traffic_direction": "INGRESS" if point == "TO_ENDPOINT" else "EGRESS", "is_reply": reply,
    }
    if l7:
        flow["l7"] = l7
    else:
        flow.update(trace_observation_point=point, interface={"index": 25, "name": "lxc25aced2f4021"})
    flow["Summary"] = f"{proto} Flags: {', '.join(flags or {})}" if proto == "TCP" else proto
    return orjson.dumps({"flow": flow, "node_name": node, "time": time_}) + b"\n"


def write_capture(path: Path, config: dict, lines: int) -> None:
    workloads = config["zero-trust-aks:workloads"]
    addresses = {n: f"10.244.{i // 250}.{i % 250 + 2}" for i, n in enumerate(workloads)}
    flows = config["zero-trust-aks:flows"]
    dns_pod = {"identity": 48342, "namespace": "kube-system", "pod_name": "coredns-5d78c9869d-xq2mz",
               "labels": ["k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=kube-system",
                          "k8s:io.cilium.k8s.policy.cluster=default", "k8s:io.cilium.k8s.policy.serviceaccount=coredns",
                          "k8s:io.kubernetes.pod.namespace=kube-system", "k8s:k8s-app=kube-dns"]}
    world = {"identity": 2, "labels": ["reserved:world"]}
    headers = [{"key": k, "value": v} for k, v in (
        (":scheme", "http"), ("Accept", "*/*"), ("User-Agent", "curl/8.11.1"), ("X-Request-Id", "745380b7-b9c9-454d-b3ba-50c13972f527"))]
    with open(path, "wb") as f:
        n = k = 0
        while n < lines:
            t = f"2026-11-20T09:{(k // 60) % 60:02d}:{k % 60:02d}.{k % 1000:03d}000000Z"
            sport = 1024 + k % 60000
            flow = flows[k % len(flows)]
            a, b = flow["from"], flow["to"]
            na, nb = workloads[a]["namespace"], workloads[b]["namespace"]
            ia, ib = 20000 + int(a[1:]), 20000 + int(b[1:])
            sip, dip = addresses[a], addresses[b]
            src_l, dst_r = endpoint(na, a, ia, f"{a}-7c9f8d6b5c-q4z8w", True), endpoint(nb, b, ib, f"{b}-7c9f8d6b5c-xk2lp", False)
            src_r, dst_l = endpoint(na, a, ia, f"{a}-7c9f8d6b5c-q4z8w", False), endpoint(nb, b, ib, f"{b}-7c9f8d6b5c-xk2lp", True)
            batch = [
                record(t, "aks-nodepool1-0", src_l, dst_r, sip, dip, "TCP", sport, 8080, flags={"SYN": True}, point="TO_STACK"),
                record(t, "aks-nodepool1-1", src_r, dst_l, sip, dip, "TCP", sport, 8080, flags={"SYN": True}),
                record(t, "aks-nodepool1-1", dst_l, src_r, dip, sip, "TCP", 8080, sport, flags={"SYN": True, "ACK": True}, reply=True,
                       point="TO_STACK"),
            ]
            if k % 4 == 0:  # an HTTP request and its response through the proxy
                url = f"http://{b}.{nb}:8080/api/items/{k % 97}"
                batch += [
                    record(t, "aks-nodepool1-0", src_l, dst_r, sip, dip, "TCP", sport, 8080,
                           l7={"type": "REQUEST", "http": {"method": "GET", "url": url, "protocol": "HTTP/1.1", "headers": headers}}),
                    record(t, "aks-nodepool1-0", dst_r, src_l, dip, sip, "TCP", 8080, sport, reply=True,
                           l7={"type": "RESPONSE", "latency_ns": "1630000",
                               "http": {"code": 200, "method": "GET", "url": url, "protocol": "HTTP/1.1", "headers": headers}}),
                ]
            if k % 20 == 0:  # undeclared: to the internet, looked up first
                batch += [
                    record(t, "aks-nodepool1-0", src_l, dns_pod, sip, "10.244.9.10", "UDP", sport, 53,
                           l7={"type": "REQUEST", "dns": {"query": "api.example.com.", "observation_source": "proxy", "qtypes": ["A"]}}),
                    record(t, "aks-nodepool1-0", src_l, world | {"ID": 0}, sip, f"20.0.{k % 200}.1", "TCP", sport, 443,
                           flags={"SYN": True}, point="TO_STACK"),
                ]
            else:
                batch.append(record(t, "aks-nodepool1-0", src_l, dns_pod, sip, "10.244.9.10", "UDP", sport, 53, point="TO_STACK"))
            f.writelines(batch[: lines - n])
            n += len(batch)
            k += 1


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loop(loads, path: Path) -> None:
    with open(path, "rb") as f:
        for line in f:
            loads(line)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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
        size = capture.stat().st_size
        plan = make_plan("bench", stack, PROJECT_DIR)
        objects = plan.run.kubernetes_objects()
        policies = [o for o in objects if o.get("apiVersion", "").startswith("cilium.io/")]
        workloads = mx.workload_pods(plan.config, objects)
        before = peak_mib()
        rounds = []
        for _ in range(args.repeat):
            obs_box: list = []
            json_s = timed(lambda: loop(json.loads, capture))
            orjson_s = timed(lambda: loop(orjson.loads, capture))
            read_s = timed(lambda: obs_box.append(observed.read([capture])))
            obs = obs_box[0]
            replay_s = timed(lambda: obs_box.append(replay_.replay(plan.config, policies, workloads, obs, plan.config.cilium_version)))
            rounds.append((json_s, orjson_s, read_s, replay_s, read_s / json_s, read_s / orjson_s))
        report = obs_box[-1]
    med = [statistics.median(r[i] for r in rounds) for i in range(6)]
    print(f"capture: {args.lines} lines ({size / 2**20:.0f} MiB, {size / args.lines:.0f} bytes a line), {args.workloads}-workload stack, "
          f"{len(config['zero-trust-aks:flows'])} flows; medians of {args.repeat} paired rounds")
    print(f"json.loads loop: {med[0]:.2f} s; orjson.loads loop: {med[1]:.2f} s")
    print(f"read: {med[2]:.2f} s ({args.lines / med[2]:,.0f} lines/s) = {med[4]:.2f}x the json.loads loop, {med[5]:.2f}x the orjson loop; "
          f"kinds {dict(obs.files[0].kinds)}, skipped {dict(obs.skipped)}")
    print(f"replay: {med[3]:.3f} s for {report.connections} distinct connections (each judged once); "
          f"{len(report.would_drop)} would drop, {len(report.undecided)} undecided, {len(report.never_observed)} declared flows never observed")
    print(f"peak RSS: {before:.0f} MiB after planning, {peak_mib():.0f} MiB after reading and replaying")


if __name__ == "__main__":
    main()
