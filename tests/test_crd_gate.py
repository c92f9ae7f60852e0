"""The CRD readiness gate waits for Cilium's CRDs, and gives up with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from components.crd_gate import CILIUM_POLICY_CRDS, CrdTimeout, wait_for_crds
from zerotrust.mockrun import PROJECT_DIR

ESTABLISHED = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
PENDING = {"status": {"conditions": [{"type": "Established", "status": "False"}]}}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_the_gate_returns_once_every_crd_is_established():
    clock = FakeClock()
    answers = {name: [None, PENDING, ESTABLISHED] for name in CILIUM_POLICY_CRDS}
    reads = []

    def read(name):
        reads.append(name)
        return answers[name].pop(0) if len(answers[name]) > 1 else answers[name][0]

    assert wait_for_crds(read, CILIUM_POLICY_CRDS, 600, sleep=clock.sleep, clock=clock) == list(CILIUM_POLICY_CRDS)
    assert clock.now == 10.0  # two waits of 5 s: absent, then pending, then established
    assert reads.count(CILIUM_POLICY_CRDS[0]) == 3


def test_the_gate_stops_reading_crds_that_are_already_established():
    clock = FakeClock()
    reads = []

    def read(name):
        reads.append(name)
        if name == CILIUM_POLICY_CRDS[0]:
            return ESTABLISHED
        return ESTABLISHED if clock.now >= 15 else None

    wait_for_crds(read, CILIUM_POLICY_CRDS, 600, sleep=clock.sleep, clock=clock)
    assert reads.count(CILIUM_POLICY_CRDS[0]) == 1


def test_the_gate_times_out_naming_the_missing_crd_and_what_to_check():
    clock = FakeClock()
    with pytest.raises(CrdTimeout, match=r"ciliumnetworkpolicies.cilium.io were not Established after 60s; is the cluster's networkDataplane cilium"):
        wait_for_crds(lambda name: None, CILIUM_POLICY_CRDS[:1], 60, sleep=clock.sleep, clock=clock)
    assert clock.now == 60.0


def test_the_gate_provider_survives_pickling_into_a_fresh_process():
    """Pulumi ships a dynamic provider to its own process with dill; it must load there."""
    import base64

    from components.crd_gate import _CrdGateProvider
    from pulumi.dynamic.dynamic import serialize_provider

    blob = serialize_provider(_CrdGateProvider())
    code = (
        "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.argv[1])); "
        "print(type(p).__name__, callable(p.create))"
    )
    out = subprocess.run([sys.executable, "-c", code, blob], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "_CrdGateProvider True"
    assert base64.b64decode(blob)


# -- the provider's create and diff against a recorded API server ----------------------------------------


class RecordedApiServer:
    """Answers GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/<name> from a script of (status, body)."""

    def __init__(self, script):
        import http.server
        import json
        import threading

        self.script, self.requests = script, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append(name)
                answers = outer.script[name]
                status, body = answers.pop(0) if len(answers) > 1 else answers[0]
                payload = json.dumps(body or {"kind": "Status", "code": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        import yaml

        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
        })

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def crd(name: str, established: bool) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
        "spec": {"group": "cilium.io", "names": {"kind": "X", "plural": name.split(".")[0]}, "scope": "Namespaced", "versions": []},
        "status": {"conditions": [{"type": "Established", "status": "True" if established else "False", "lastTransitionTime": None, "reason": "x", "message": "y"}]},
    }


def props(kubeconfig: str, timeout: float = 5) -> dict:
    return {"kubeconfig": kubeconfig, "crds": list(CILIUM_POLICY_CRDS), "timeoutSeconds": timeout, "established": None}


def test_create_completes_once_the_recorded_api_server_reports_both_crds_established():
    from components.crd_gate import _CrdGateProvider

    script = {n: [(404, None), (200, crd(n, False)), (200, crd(n, True))] for n in CILIUM_POLICY_CRDS}
    with RecordedApiServer(script) as kubeconfig:
        result = _CrdGateProvider(interval=0.01).create(props(kubeconfig))
    assert result.outs["established"] == list(CILIUM_POLICY_CRDS)


def test_create_times_out_naming_the_crd_the_api_server_never_established():
    from components.crd_gate import _CrdGateProvider

    script = {CILIUM_POLICY_CRDS[0]: [(200, crd(CILIUM_POLICY_CRDS[0], True))], CILIUM_POLICY_CRDS[1]: [(404, None)]}
    with RecordedApiServer(script) as kubeconfig, pytest.raises(CrdTimeout, match=CILIUM_POLICY_CRDS[1]):
        _CrdGateProvider(interval=0.01).create(props(kubeconfig, timeout=0.2))


def test_create_turns_a_403_into_one_line_naming_the_permission():
    from components.crd_gate import CrdGateError, _CrdGateProvider

    script = {n: [(403, {"kind": "Status", "code": 403, "reason": "Forbidden"})] for n in CILIUM_POLICY_CRDS}
    with RecordedApiServer(script) as kubeconfig, pytest.raises(CrdGateError) as e:
        _CrdGateProvider(interval=0.01).create(props(kubeconfig))
    assert str(e.value).startswith(f"reading CustomResourceDefinition {CILIUM_POLICY_CRDS[0]}: the API server answered 403")
    assert "needs get on customresourcedefinitions.apiextensions.k8s.io" in str(e.value)


def test_diff_replaces_the_gate_only_when_the_cluster_or_the_crd_list_changes():
    from components.crd_gate import _CrdGateProvider

    p = _CrdGateProvider()
    old = props("kubeconfig-a", 600)
    same = p.diff("cilium-crds", old, {**old, "timeoutSeconds": 900})
    assert same.changes is False and same.replaces == []
    new_cluster = p.diff("cilium-crds", old, {**old, "kubeconfig": "kubeconfig-b"})
    assert new_cluster.changes is True and new_cluster.replaces == ["kubeconfig"] and new_cluster.delete_before_replace is True
