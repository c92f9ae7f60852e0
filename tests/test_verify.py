"""``python -m zerotrust verify`` against a stand-in of the Kubernetes API at the client boundary.

``FakeApi`` has the methods, arguments and raw responses (``_preload_content=False``:
an object whose ``data`` is the API server's JSON) of the ``kubernetes`` client's
CoreV1Api, BatchV1Api and CustomObjectsApi that verify calls. Nodes and Cilium
agents come from recorded responses in tests/fixtures/verify; policies and
probe Jobs are answered from what verify created.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from policies.config import load_config
from policies.analysis.probes import group, probes
from policies.render import render
from zerotrust import verify_cli
from zerotrust.verify import RUN_LABEL, Kube, verify

FIXTURES = Path(__file__).parent / "fixtures" / "verify"


class Raw:
    def __init__(self, body: Any):
        self.data = body if isinstance(body, bytes) else json.dumps(body).encode()


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FakeApi:
    def __init__(self, rendered, nodes="nodes.json", agents="cilium-agents.json", observed=None, missing=(), invalid=None, polls=1, forbidden=False, extra=(), edited=None):
        self.nodes = recorded(nodes)
        self.agents = recorded(agents)
        self.policies = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in rendered.policies()}
        self.missing, self.invalid = set(missing), invalid or {}
        self.observed = observed or {}  # flow -> what the probe observes (default: what it expects)
        self.polls, self.forbidden = polls, forbidden
        self.jobs: dict[tuple[str, str], dict] = {}
        self.reads: dict[str, int] = {}
        self.deleted: list[tuple[str, str]] = []
        self.extra = list(extra)  # policies in the cluster the stack did not render
        for key, change in (edited or {}).items():  # policies changed in place: (namespace, name) -> f(spec)
            self.policies[key] = {**self.policies[key], "spec": change(json.loads(json.dumps(self.policies[key]["spec"])))}

    # CoreV1Api
    def list_node(self, _preload_content=True):
        if self.forbidden:
            raise ApiException(status=403, reason="Forbidden")
        return Raw(self.nodes)

    def list_namespaced_pod(self, namespace, label_selector=None, _preload_content=True):
        if label_selector == "k8s-app=cilium":
            return Raw(self.agents if namespace == "kube-system" else recorded("no-pods.json"))
        name = label_selector.removeprefix("job-name=")
        return Raw({"kind": "PodList", "items": [{"metadata": {"name": f"{name}-x2k9p", "namespace": namespace}}]})

    def read_namespaced_pod_log(self, name, namespace, _preload_content=True):
        lines = [
            f'zero-trust-aks probe: flow="{flow}" expect={expect} observed={observed} curl_exit=0 attempts=1 seconds=6\n'
            for flow, expect, observed in self._checks(namespace, name.rsplit("-", 1)[0])
        ]
        return Raw("".join(lines).encode())

    # BatchV1Api
    def create_namespaced_job(self, namespace, body, _preload_content=True):
        if namespace in self.missing:
            raise ApiException(status=404, reason="Not Found")
        self.jobs[(namespace, body["metadata"]["name"])] = body
        return Raw(body)

    def read_namespaced_job_status(self, name, namespace, _preload_content=True):
        self.reads[name] = self.reads.get(name, 0) + 1
        body = dict(self.jobs[(namespace, name)])
        if self.reads[name] >= self.polls:
            agree = all(observed == ("connected" if expect == "allow" else "timeout") for _, expect, observed in self._checks(namespace, name))
            body["status"] = {"succeeded": 1} if agree else {"failed": 1}
        else:
            body["status"] = {"active": 1}
        return Raw(body)

    def delete_namespaced_job(self, name, namespace, propagation_policy=None, _preload_content=True):
        self.deleted.append((namespace, name))
        return Raw({"kind": "Status", "status": "Success"})

    # CustomObjectsApi, NetworkingV1Api
    def list_cluster_custom_object(self, group, version, plural, _preload_content=True):
        kind = {"ciliumnetworkpolicies": "CiliumNetworkPolicy", "ciliumclusterwidenetworkpolicies": "CiliumClusterwideNetworkPolicy"}[plural]
        items = [p for p in self.policies.values() if p["kind"] == kind] + [p for p in self.extra if p["kind"] == kind]
        return Raw({"kind": f"{kind}List", "items": items})

    def list_network_policy_for_all_namespaces(self, _preload_content=True):
        return Raw({"kind": "NetworkPolicyList", "items": [p for p in self.extra if p["kind"] == "NetworkPolicy"]})

    def get_namespaced_custom_object(self, group, version, namespace, plural, name, _preload_content=True):
        assert (group, version, plural) == ("cilium.io", "v2", "ciliumnetworkpolicies")
        if (namespace, name) in self.missing:
            raise ApiException(status=404, reason="Not Found")
        body = dict(self.policies[(namespace, name)])
        message = self.invalid.get((namespace, name))
        status = "False" if message else "True"
        body["status"] = {"conditions": [{"type": "Valid", "status": status, "message": message or "Policy validation succeeded"}]}
        return Raw(body)

    def _env(self, namespace, name):
        body = self.jobs[(namespace, name)]
        return {e["name"]: e["value"] for e in body["spec"]["template"]["spec"]["containers"][0]["env"]}

    def _checks(self, namespace, name):
        """(flow, expect, observed) of every check the Job runs (observed: what it expects, unless told)."""
        out = []
        for line in self._env(namespace, name)["CHECKS"].splitlines():
            flow, expect, _host, _port = line.split("|")
            out.append((flow, expect, self.observed.get(flow, "connected" if expect == "allow" else "timeout")))
        return out


@pytest.fixture
def dev(dev_config):
    cfg = load_config(dev_config)
    rendered = render(cfg)
    return cfg, rendered, probes(cfg, rendered).probes


def run(dev, api, **kw):
    cfg, rendered, probe_list = dev
    return verify(Kube(api, api, api, api), cfg, rendered, probe_list, run="0a1b2c3d", sleep=lambda s: None, **kw)


def failed(report) -> list[tuple[str, str, str]]:
    return [(r.check, r.expected, r.observed) for r in report.rows if not r.ok]


def test_a_healthy_cluster_passes_every_check_and_every_probe(dev):
    api = FakeApi(dev[1])
    report = run(dev, api)
    assert report.ok
    checks = [r.check for r in report.rows]
    assert checks[:2] == ["nodes", "Cilium agents"]
    assert "policy backend/zt-default-deny" in checks
    assert [r.observed for r in report.rows if r.check.startswith("probe ")] == ["connected"] + ["timeout"] * (len(dev[2]) - 1)
    assert report.rows[0].observed == "3/3 Ready" and report.rows[1].observed == "3/3 Running and ready"


def test_probe_jobs_carry_the_run_label_and_are_always_deleted(dev):
    api = FakeApi(dev[1])
    run(dev, api)
    assert len(dev[2]) == 6 and len(api.jobs) == 4  # six checks, one Job per source identity (the ingress prober's too)
    assert all(j["metadata"]["labels"][RUN_LABEL] == "0a1b2c3d" and name.endswith("-0a1b2c3d") for (_, name), j in api.jobs.items())
    assert sorted(api.deleted) == sorted(api.jobs)


def test_a_probe_that_disagrees_fails_and_names_the_flow(dev):
    api = FakeApi(dev[1], observed={"stranger@frontend -> backend:80/TCP": "connected"})
    report = run(dev, api)
    assert failed(report) == [("probe stranger@frontend -> backend:80/TCP", "deny", "connected")]


def test_a_dns_failure_is_not_taken_for_a_drop(dev):
    api = FakeApi(dev[1], observed={"stranger@backend -> backend:80/TCP": "dns-failure"})
    assert failed(run(dev, api)) == [("probe stranger@backend -> backend:80/TCP", "deny", "dns-failure")]


def test_a_node_that_is_not_ready_fails_the_node_check(dev):
    report = run(dev, FakeApi(dev[1], nodes="nodes-one-not-ready.json"))
    assert failed(report) == [("nodes", "all Ready", "2/3 Ready: aks-system-12345678-vmss000002 NotReady (KubeletNotReady)")]


def test_missing_cilium_agents_fail_the_agent_check(dev):
    report = run(dev, FakeApi(dev[1], agents="no-pods.json"))
    assert failed(report) == [
        ("Cilium agents", "Running and ready on each of 3 nodes", "none (k8s-app=cilium in kube-system): is Cilium the dataplane?")
    ]


def test_a_missing_or_rejected_policy_fails_its_row(dev):
    api = FakeApi(dev[1], missing={("frontend", "zt-allow.frontend")}, invalid={("backend", "zt-default-deny"): "unknown field"})
    assert failed(run(dev, api)) == [
        ("policy backend/zt-default-deny", "present, Valid", "rejected: unknown field"),
        ("policy frontend/zt-allow.frontend", "present, Valid", "missing"),
    ]


def test_a_probe_whose_namespace_is_missing_fails_alone(dev):
    api = FakeApi(dev[1], missing={"frontend"})
    report = run(dev, api)
    assert [(c, o.split(":")[0]) for c, _, o in failed(report)] == [
        ("probe frontend -> backend:80/TCP", "not run"),
        ("probe stranger@frontend -> backend:80/TCP", "not run"),
        ("probe stranger@frontend -> outside 1.1.1.1:443/TCP", "not run"),
    ]
    assert [r.observed for r in report.rows if r.check == "probe stranger@backend -> backend:80/TCP"] == ["timeout"]
    assert sorted(api.deleted) == sorted(api.jobs) and len(api.jobs) == 2  # the stranger of backend's and the prober's Jobs ran


def test_a_stack_policy_changed_in_the_cluster_fails_its_row_naming_the_change(dev):
    def widen(spec):
        spec["ingress"][0]["fromEndpoints"][0]["matchLabels"].pop("k8s:io.kubernetes.pod.namespace")
        return spec

    api = FakeApi(dev[1], edited={("backend", "zt-allow.backend"): widen})
    assert failed(run(dev, api)) == [(
        "policy backend/zt-allow.backend",
        "the rendered spec",
        "changed in the cluster: spec.ingress[0].fromEndpoints[0].matchLabels.k8s:io.kubernetes.pod.namespace was removed",
    )]


def test_other_policies_that_select_managed_pods_fail_each_naming_the_pods(dev):
    extra = [
        {"kind": "CiliumNetworkPolicy", "metadata": {"name": "open-80", "namespace": "backend"},
         "spec": {"endpointSelector": {"matchLabels": {"app": "backend"}}, "ingress": [{"fromEntities": ["world"]}]}},
        {"kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "everyone"},
         "spec": {"endpointSelector": {}, "egress": [{"toEntities": ["world"]}]}},
        {"kind": "NetworkPolicy", "metadata": {"name": "allow-all", "namespace": "frontend"},
         "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}},
        {"kind": "CiliumNetworkPolicy", "metadata": {"name": "dns", "namespace": "kube-system"},
         "spec": {"endpointSelector": {}, "ingress": [{}]}},
        {"kind": "NetworkPolicy", "metadata": {"name": "other-app", "namespace": "frontend"},
         "spec": {"podSelector": {"matchLabels": {"app": "not-ours"}}, "ingress": [{}]}},
    ]
    report = run(dev, FakeApi(dev[1], extra=extra))
    assert [(c, o) for c, _, o in failed(report)] == [
        ("other policy CiliumClusterwideNetworkPolicy everyone", "selects backend/backend, backend/stranger, frontend/frontend, frontend/stranger"),
        ("other policy CiliumNetworkPolicy backend/open-80", "selects backend/backend"),
        ("other policy NetworkPolicy frontend/allow-all", "selects frontend/frontend, frontend/stranger"),
    ]


def test_without_other_policies_the_row_passes(dev):
    (row,) = [r for r in run(dev, FakeApi(dev[1])).rows if r.check == "other policies"]
    assert row.ok and row.observed == "none"


def test_probes_that_never_finish_time_out_and_are_still_deleted(dev):
    api = FakeApi(dev[1], polls=10**6)
    ticks = iter(range(0, 10**6, 10))
    report = run(dev, api, timeout=30, clock=lambda: next(ticks))
    assert {r.observed for r in report.rows if r.check.startswith("probe ")} == {"no result after 30 s"}
    assert len(api.deleted) == len(group(dev[2])) and not report.ok


# -- the command ----------------------------------------------------------------------------------------------


def args(**kw) -> argparse.Namespace:
    base = {"stack": "dev", "stack_file": None, "kubeconfig": None, "context": None, "timeout": 5.0, "format": "json"}
    return argparse.Namespace(**{**base, **kw})


def test_the_command_prints_the_checks_and_exits_one_when_a_probe_disagrees(tmp_path, dev, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    api = FakeApi(dev[1], observed={"frontend -> backend:80/TCP": "timeout"})
    seen = []

    def factory(path, context):
        seen.append((path, context))
        return Kube(api, api, api, api)

    assert verify_cli.run_verify(args(kubeconfig=kubeconfig), factory) == 1
    doc = json.loads(capsys.readouterr().out)
    assert seen == [(str(kubeconfig), None)] and doc["ok"] is False
    assert [c["check"] for c in doc["checks"] if not c["ok"]] == ["probe frontend -> backend:80/TCP"]


def test_the_text_report_is_a_table_with_a_verdict(tmp_path, dev, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    api = FakeApi(dev[1])
    assert verify_cli.run_verify(args(kubeconfig=kubeconfig, format="text"), lambda p, c: Kube(api, api, api, api)) == 0
    out = capsys.readouterr().out
    assert "probe frontend -> backend:80/TCP" in out and "verify: the cluster enforces what the stack declares" in out


def test_an_api_server_that_refuses_is_one_error_line_and_exit_two(tmp_path, dev, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    api = FakeApi(dev[1], forbidden=True)
    assert verify_cli.run_verify(args(kubeconfig=kubeconfig), lambda p, c: Kube(api, api, api, api)) == 2
    assert capsys.readouterr().err == "error: list nodes: the API server answered 403 Forbidden\n"


def test_an_api_server_that_cannot_be_reached_is_one_error_line(tmp_path, dev, capsys):
    from urllib3.exceptions import MaxRetryError

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    api = FakeApi(dev[1])
    api.list_node = lambda _preload_content=True: (_ for _ in ()).throw(MaxRetryError(None, "https://x:443/api/v1/nodes"))
    assert verify_cli.run_verify(args(kubeconfig=kubeconfig), lambda p, c: Kube(api, api, api, api)) == 2
    assert capsys.readouterr().err == "error: list nodes: cannot reach the API server (MaxRetryError)\n"


def test_a_local_stack_uses_its_own_context(capsys):
    seen = []

    def factory(path, context):
        seen.append((path, context))
        raise verify_cli.Unreachable("stop here")

    assert verify_cli.run_verify(args(stack="local"), factory) == 2
    assert seen == [(None, "kind-zero-trust")]


def test_an_aks_stack_reads_the_kubeconfig_output_through_the_cli_into_memory_only(dev, monkeypatch, tmp_path):
    import tempfile

    cfg = dev[0]
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="apiVersion: v1\nkind: Config\nusers: []\n", stderr="")

    def no_files(*a, **kw):
        raise AssertionError("the kubeconfig must not be written to disk")

    monkeypatch.setattr(tempfile, "mkstemp", no_files)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_files)
    with verify_cli.kubeconfig_for(cfg, "dev", None, None, which=lambda _: "/usr/bin/pulumi", run=fake_run) as (source, context):
        assert source == {"apiVersion": "v1", "kind": "Config", "users": []} and context is None
    assert calls[0][1:6] == ["stack", "output", "kubeconfig", "--show-secrets", "--stack"] and calls[0][6] == "dev"


def stack_output_error(dev, code: int, stdout: str, stderr: str = "") -> list[str]:
    """The error lines when ``pulumi stack output kubeconfig`` answers this way."""

    def fake_run(cmd, **kw):
        return subprocess.CompletedProcess(cmd, code, stdout=stdout, stderr=stderr)

    with pytest.raises(verify_cli.BadInput) as e:
        with verify_cli.kubeconfig_for(dev[0], "dev", None, None, which=lambda _: "pulumi", run=fake_run):
            pass
    return e.value.lines


def test_a_kubeconfig_output_that_is_not_a_mapping_is_one_error_line(dev):
    assert stack_output_error(dev, 0, "just text\n") == ["--stack dev: the kubeconfig output is not a kubeconfig"]


def test_an_aks_stack_without_the_pulumi_cli_asks_for_a_kubeconfig(capsys, monkeypatch):
    monkeypatch.setattr(verify_cli.shutil, "which", lambda name: None)
    assert verify_cli.run_verify(args(), lambda p, c: pytest.fail("no cluster should be contacted")) == 2
    assert capsys.readouterr().err == (
        "error: --stack dev: reading its kubeconfig output needs the Pulumi CLI on PATH; or pass --kubeconfig FILE\n"
    )


def test_a_failing_stack_output_is_one_error_line(dev):
    assert stack_output_error(dev, 255, "", "error: no stack named 'dev' found\n") == [
        "--stack dev: `pulumi stack output kubeconfig` failed: error: no stack named 'dev' found"
    ]


# -- the real kubernetes client against a recorded API server --------------------------------------------------


class RecordedApiServer:
    """An HTTP stand-in of the API server for the paths verify calls, answering from a FakeApi."""

    def __init__(self, api: FakeApi):
        import http.server
        import threading
        from urllib.parse import parse_qs, urlparse

        fake = api
        self.requests: list[tuple[str, str]] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, method: str):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                parts = url.path.strip("/").split("/")
                requests.append((method, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                try:
                    raw = self._route(method, parts, query, body)
                except ApiException as e:
                    self.send_response(e.status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps({"kind": "Status", "code": e.status}).encode())
                    return
                self.send_response(201 if method == "POST" else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(raw.data)

            def _route(self, method, parts, query, body):
                if parts == ["api", "v1", "nodes"]:
                    return fake.list_node()
                if parts[:3] == ["api", "v1", "namespaces"] and parts[4:] == ["pods"]:
                    return fake.list_namespaced_pod(parts[3], label_selector=query.get("labelSelector"))
                if parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods" and parts[6:] == ["log"]:
                    return fake.read_namespaced_pod_log(parts[5], parts[3])
                if parts[:2] == ["apis", "cilium.io"] and len(parts) == 4:
                    return fake.list_cluster_custom_object("cilium.io", parts[2], parts[3])
                if parts == ["apis", "networking.k8s.io", "v1", "networkpolicies"]:
                    return fake.list_network_policy_for_all_namespaces()
                if parts[:2] == ["apis", "cilium.io"]:
                    return fake.get_namespaced_custom_object("cilium.io", parts[2], parts[4], parts[5], parts[6])
                if parts[:3] == ["apis", "batch", "v1"] and method == "POST":
                    return fake.create_namespaced_job(parts[4], body)
                if parts[:3] == ["apis", "batch", "v1"] and method == "DELETE":
                    return fake.delete_namespaced_job(parts[6], parts[4])
                if parts[:3] == ["apis", "batch", "v1"] and parts[7:] == ["status"]:
                    return fake.read_namespaced_job_status(parts[6], parts[4])
                raise ApiException(status=404, reason="Not Found")

            def do_GET(self):  # noqa: N802
                self._answer("GET")

            def do_POST(self):  # noqa: N802
                self._answer("POST")

            def do_DELETE(self):  # noqa: N802
                self._answer("DELETE")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_the_real_kubernetes_client_talks_to_a_recorded_api_server_end_to_end(tmp_path, dev, capsys):
    api = FakeApi(dev[1])
    with RecordedApiServer(api) as url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "recorded",
            "clusters": [{"name": "recorded", "cluster": {"server": url}}],
            "contexts": [{"name": "recorded", "context": {"cluster": "recorded", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "recorded-token"}}],
        }))
        assert verify_cli.run_verify(args(kubeconfig=kubeconfig)) == 0
    doc = json.loads(capsys.readouterr().out)
    cfg, rendered, probe_list = dev
    assert doc["ok"] and len(doc["checks"]) == 3 + len(rendered.policies()) + len(probe_list)  # nodes, agents, other policies
    assert len(api.jobs) == len(group(probe_list)) and sorted(api.deleted) == sorted(api.jobs)


def test_the_real_kubernetes_client_talks_to_the_cluster_from_a_kubeconfig_held_in_memory(dev, capsys):
    api = FakeApi(dev[1])
    with RecordedApiServer(api) as url:
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "recorded",
            "clusters": [{"name": "recorded", "cluster": {"server": url}}],
            "contexts": [{"name": "recorded", "context": {"cluster": "recorded", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "recorded-token"}}],
        }
        kube = verify_cli.Kube.from_kubeconfig(doc, None)
        report = verify_cli.verify(kube, dev[0], dev[1], dev[2], timeout=30)
    assert report.ok and len(api.jobs) == len(group(dev[2])) and sorted(api.deleted) == sorted(api.jobs)
