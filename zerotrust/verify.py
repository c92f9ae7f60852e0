"""``python -m zerotrust verify``: check a live cluster against the stack.

The walkthrough's checks, done for you and for every flow:

- every node is Ready;
- the Cilium agents (``k8s-app=cilium`` in ``kube-system``) run and are ready,
  one per node;
- every CiliumNetworkPolicy of the stack exists, has the rendered spec, and Cilium
  reports it Valid;
- no other CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or Kubernetes
  NetworkPolicy selects a managed pod (allows are additive: one could open traffic);
- the probe set of ``policies.analysis.probes`` (the same Jobs ``pulumi up`` runs),
  created afresh under a run id, agrees with its expectations.

``Kube`` is the client boundary: the handful of API calls made, with the
official ``kubernetes`` client, returning the API server's JSON as plain
dicts. Tests stand in for the client's API objects with recorded responses.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.config import StackConfig
from policies.analysis.drift import extra_policies, spec_difference
from policies.analysis.probes import Probe, ProbeGroup, agrees, group, job, parse_results
from policies.render import MANAGED_BY, Rendered

RUN_LABEL = "zero-trust-aks/verify-run"
VERIFY_TTL = 600
CILIUM_AGENTS = ("kube-system", "k8s-app=cilium")
CNP = ("cilium.io", "v2", "ciliumnetworkpolicies")
CCNP = ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies")


class Unreachable(Exception):
    """The cluster could not be reached or refused a call: one line."""


@dataclass
class Kube:
    """The Kubernetes API calls ``verify`` makes, as plain JSON."""

    core: Any
    batch: Any
    custom: Any
    networking: Any = None

    @classmethod
    def from_kubeconfig(cls, source: str | dict | None, context: str | None) -> Kube:
        """A client from a kubeconfig file (None: the default one) or a kubeconfig already in memory."""
        from kubernetes import client, config

        try:
            if isinstance(source, dict):
                api = config.new_client_from_config_dict(source, context=context, persist_config=False)
            else:
                api = config.new_client_from_config(config_file=source, context=context, persist_config=False)
        except Exception as e:  # the client raises ConfigException, OSError, yaml errors...
            where = "(the stack output)" if isinstance(source, dict) else source or "(default)"
            raise Unreachable(f"kubeconfig {where}{f' context {context}' if context else ''}: {e}") from None
        return cls(client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api), client.NetworkingV1Api(api))

    def _raw(self, what: str, fn: Callable[..., Any], *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _preload_content=False, **kwargs).data
        except ApiException as e:
            if missing_ok and e.status == 404:
                return None
            raise Unreachable(f"{what}: the API server answered {e.status} {e.reason}") from None
        except (HTTPError, OSError) as e:  # refused, timed out, unresolvable, TLS
            raise Unreachable(f"{what}: cannot reach the API server ({type(e).__name__})") from None

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        data = self._raw(what, fn, *args, missing_ok=missing_ok, **kwargs)
        return None if data is None else json.loads(data)

    def nodes(self) -> list[dict[str, Any]]:
        return self._call("list nodes", self.core.list_node)["items"]

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._call(f"list pods in {namespace}", self.core.list_namespaced_pod, namespace, label_selector=selector)["items"]

    def policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._call(f"read policy {namespace}/{name}", self.custom.get_namespaced_custom_object, *CNP[:2], namespace, CNP[2], name, missing_ok=True)

    def all_policies(self) -> list[dict[str, Any]]:
        """Every CNP, CCNP and Kubernetes NetworkPolicy of the cluster, with ``kind`` set."""
        out = []
        for kind, (api_group, version, plural) in (("CiliumNetworkPolicy", CNP), ("CiliumClusterwideNetworkPolicy", CCNP)):
            items = self._call(f"list {plural}", self.custom.list_cluster_custom_object, api_group, version, plural)["items"]
            out += [{**i, "kind": kind} for i in items]
        items = self._call("list networkpolicies", self.networking.list_network_policy_for_all_namespaces)["items"]
        return out + [{**i, "kind": "NetworkPolicy"} for i in items]

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        self._call(f"create job {namespace}/{body['metadata']['name']}", self.batch.create_namespaced_job, namespace, body)

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._call(f"read job {namespace}/{name}", self.batch.read_namespaced_job_status, name, namespace, missing_ok=True)

    def job_log(self, namespace: str, name: str) -> str:
        pods = self.pods(namespace, f"job-name={name}")
        if not pods:
            return ""
        pod = pods[0]["metadata"]["name"]
        data = self._raw(f"read log {namespace}/{pod}", self.core.read_namespaced_pod_log, pod, namespace, missing_ok=True)
        return data.decode(errors="replace") if isinstance(data, (bytes, bytearray)) else str(data or "")

    def delete_job(self, namespace: str, name: str) -> None:
        self._call(
            f"delete job {namespace}/{name}", self.batch.delete_namespaced_job, name, namespace,
            propagation_policy="Background", missing_ok=True,
        )


@dataclass(frozen=True)
class Row:
    check: str
    expected: str
    observed: str
    ok: bool
    seconds: float | None = None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


def _ready(conditions: Sequence[dict[str, Any]] | None, kind: str = "Ready") -> tuple[bool, str]:
    for c in conditions or []:
        if c.get("type") == kind:
            return c.get("status") == "True", c.get("reason") or ""
    return False, "no Ready condition"


def check_nodes(kube: Kube) -> tuple[Row, int]:
    nodes = kube.nodes()
    bad = []
    for n in nodes:
        ready, reason = _ready((n.get("status") or {}).get("conditions"))
        if not ready:
            bad.append(f"{n['metadata']['name']} NotReady ({reason or 'unknown'})")
    observed = f"{len(nodes) - len(bad)}/{len(nodes)} Ready" + (f": {', '.join(bad)}" if bad else "")
    return Row("nodes", "all Ready", observed, bool(nodes) and not bad), len(nodes)


def check_cilium(kube: Kube, node_count: int) -> Row:
    namespace, selector = CILIUM_AGENTS
    pods = kube.pods(namespace, selector)
    expected = f"Running and ready on each of {node_count} nodes"
    if not pods:
        return Row("Cilium agents", expected, f"none ({selector} in {namespace}): is Cilium the dataplane?", False)
    bad = []
    for p in pods:
        status = p.get("status") or {}
        containers = status.get("containerStatuses") or []
        if status.get("phase") != "Running" or not containers or not all(c.get("ready") for c in containers):
            bad.append(f"{p['metadata']['name']} {status.get('phase', 'Unknown')}{'' if status.get('phase') != 'Running' else ', not ready'}")
    observed = f"{len(pods) - len(bad)}/{len(pods)} Running and ready" + (f": {', '.join(bad)}" if bad else "")
    if len(pods) < node_count:
        observed += f"; {node_count - len(pods)} node(s) without an agent"
    return Row("Cilium agents", expected, observed, not bad and len(pods) >= node_count)


def check_policies(kube: Kube, rendered: Rendered) -> list[Row]:
    rows = []
    for p in rendered.policies():
        ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
        found = kube.policy(ns, name)
        if found is None:
            rows.append(Row(f"policy {ns}/{name}", "present, Valid", "missing", False))
            continue
        drift = spec_difference(found.get("spec"), p["spec"])
        if drift:
            rows.append(Row(f"policy {ns}/{name}", "the rendered spec", f"changed in the cluster: {drift}", False))
            continue
        conditions = (found.get("status") or {}).get("conditions") or []
        valid = [c for c in conditions if c.get("type") == "Valid"]
        if not valid:
            rows.append(Row(f"policy {ns}/{name}", "present, Valid", "present (this Cilium reports no Valid condition)", True))
        elif valid[0].get("status") == "True":
            rows.append(Row(f"policy {ns}/{name}", "present, Valid", "Valid", True))
        else:
            why = valid[0].get("message") or valid[0].get("reason") or "no reason given"
            rows.append(Row(f"policy {ns}/{name}", "present, Valid", f"rejected: {why}", False))
    return rows


def check_extra_policies(kube: Kube, rendered: Rendered) -> list[Row]:
    """One row: no policy the stack did not render selects a managed pod (or one failing row per such policy)."""
    extra = extra_policies(kube.all_policies(), rendered)
    if not extra:
        return [Row("other policies", "none select a managed pod", "none", True)]
    return [
        Row(f"other policy {e.kind} {e.ref}", "none select a managed pod", f"selects {', '.join(e.selects)}", False)
        for e in extra
    ]


def run_id() -> str:
    return secrets.token_hex(4)


def verify_job(g: ProbeGroup, image: str, run: str) -> dict[str, Any]:
    """A group's Job under a name and label of this run (never the ones ``pulumi up`` manages)."""
    body = job(g, image)
    body["metadata"]["name"] = g.named(run)
    body["spec"]["ttlSecondsAfterFinished"] = VERIFY_TTL  # a safety net: verify deletes its Jobs itself
    body["metadata"]["labels"] = {**MANAGED_BY, RUN_LABEL: run}
    body["spec"]["template"]["metadata"]["labels"] = {**dict(g.labels), RUN_LABEL: run}
    return body


def run_probes(
    kube: Kube,
    probes: Sequence[Probe],
    image: str,
    *,
    run: str,
    timeout: float,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[Row]:
    """The checks, run as ``pulumi up`` runs them: one Job per source identity, one row per check."""
    groups = group(tuple(probes))
    bodies = {g.name: verify_job(g, image, run) for g in groups}
    results: dict[str, Row] = {}  # flow -> row
    done: set[str] = set()
    created = []
    try:
        for g in groups:
            try:
                kube.create_job(g.namespace, bodies[g.name])
                created.append(g)
            except Unreachable as e:  # e.g. the namespace is not there: that Job's checks fail, the others run
                done.add(g.name)
                for p in g.probes:
                    results[p.flow] = Row(f"probe {p.flow}", p.expect, f"not run: {e}", False)
        start = clock()
        while len(done) < len(groups):
            for g in groups:
                if g.name in done:
                    continue
                name = bodies[g.name]["metadata"]["name"]
                status = (kube.job(g.namespace, name) or {}).get("status") or {}
                if status.get("succeeded") or status.get("failed"):
                    done.add(g.name)
                    lines = parse_results(kube.job_log(g.namespace, name))
                    for p in g.probes:
                        results[p.flow] = _probe_row(p, lines.get(p.flow), clock() - start)
            progress(len(results), len(probes))
            if len(done) < len(groups):
                if clock() - start > timeout:
                    for p in probes:
                        results.setdefault(p.flow, Row(f"probe {p.flow}", p.expect, f"no result after {timeout:.0f} s", False))
                    break
                sleep(interval)
    finally:
        for g in created:
            kube.delete_job(g.namespace, bodies[g.name]["metadata"]["name"])
    return [results[p.flow] for p in probes]


def _probe_row(p: Probe, result: dict[str, str] | None, waited: float) -> Row:
    if result is None:
        return Row(f"probe {p.flow}", p.expect, "no result line in the probe's log", False, waited)
    observed = result.get("observed", "?")
    seconds = float(result["seconds"]) if result.get("seconds", "").isdigit() else waited
    return Row(f"probe {p.flow}", p.expect, observed, agrees(p.expect, observed), seconds)


def verify(
    kube: Kube,
    cfg: StackConfig,
    rendered: Rendered,
    probes: Sequence[Probe],
    *,
    run: str | None = None,
    timeout: float = 300.0,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Report:
    report = Report()
    nodes, count = check_nodes(kube)
    report.rows.append(nodes)
    report.rows.append(check_cilium(kube, count))
    report.rows += check_policies(kube, rendered)
    report.rows += check_extra_policies(kube, rendered)
    report.rows += run_probes(
        kube, probes, cfg.zero_trust.probe_image, run=run or run_id(), timeout=timeout,
        interval=interval, clock=clock, sleep=sleep, progress=progress,
    )
    return report
