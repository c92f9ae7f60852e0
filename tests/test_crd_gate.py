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
