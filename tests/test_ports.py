"""Ports: a workload serves none, one or several named ports; flows name them by number or by name."""

from __future__ import annotations

import copy

import pytest

from policies.config import load_config
from tests.conftest import errors_of
from policies.analysis.matrix import build, declared_flows, workloads_from_manifests
from policies.analysis.probes import probes
from policies.render import render


@pytest.fixture
def multi(dev_config):
    """backend serves http (80) and metrics (9090); a portless worker talks to it."""
    w = dev_config["zero-trust-aks:workloads"]
    del w["backend"]["port"]
    w["backend"]["ports"] = [{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}]
    w["worker"] = {"namespace": "frontend", "image": "ghcr.io/example/worker:1", "securityProfile": "restricted"}
    dev_config["zero-trust-aks:flows"] = [
        {"from": "frontend", "to": "backend", "port": "http"},
        {"from": "worker", "to": "backend", "port": 9090},
    ]
    return dev_config


def objects(config) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(load_config(config)).all()}



def test_a_portless_workload_gets_no_service_no_container_ports_and_no_tcp_probes(multi):
    o = objects(multi)
    assert ("Service", "worker") not in o
    (container,) = o[("Deployment", "worker")]["spec"]["template"]["spec"]["containers"]
    assert "ports" not in container and "readinessProbe" not in container and "livenessProbe" not in container


def test_named_ports_reach_the_container_the_service_and_the_policies_as_numbers(multi):
    o = objects(multi)
    (container,) = o[("Deployment", "backend")]["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 80, "protocol": "TCP"}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert [p["name"] for p in o[("Service", "backend")]["spec"]["ports"]] == ["http", "metrics"]
    ingress = o[("CiliumNetworkPolicy", "zt-allow.backend")]["spec"]["ingress"]
    assert [r["toPorts"][0]["ports"] for r in ingress] == [[{"port": "80", "protocol": "TCP"}], [{"port": "9090", "protocol": "TCP"}]]


def test_the_matrix_judges_every_port_and_allows_only_the_declared_one_per_source(multi):
    cfg = load_config(multi)
    rendered = render(cfg)
    workloads = workloads_from_manifests(rendered.all())
    m = build(rendered.policies(), workloads, declared_flows(cfg, workloads), cfg.cilium_version)
    assert m.ok, m.findings
    assert ("frontend", "backend", 80, "TCP") in m.allowed and ("frontend", "backend", 9090, "TCP") not in m.allowed
    assert ("worker", "backend", 9090, "TCP") in m.allowed and ("worker", "backend", 80, "TCP") not in m.allowed


def test_probes_follow_the_named_port_and_each_probed_port_gets_its_strangers(multi):
    cfg = load_config(multi)
    flows = {p.flow: p.expect for p in probes(cfg, render(cfg)).probes}
    assert flows["frontend -> backend:80/TCP"] == "allow" and flows["worker -> backend:9090/TCP"] == "allow"
    assert flows["stranger@frontend -> backend:80/TCP"] == "deny" and flows["stranger@frontend -> backend:9090/TCP"] == "deny"


def test_a_flow_to_a_workload_with_several_ports_must_name_one(multi):
    multi["zero-trust-aks:flows"][0].pop("port")
    assert errors_of(multi) == [
        "zero-trust-aks:flows[0].port: required: 'backend' serves several ports: http (80/TCP), metrics (9090/TCP)"
    ]


def test_a_port_name_the_target_does_not_have_is_refused(multi):
    multi["zero-trust-aks:flows"][0]["port"] = "grpc"
    assert errors_of(multi) == ["zero-trust-aks:flows[0].port: 'backend' has no port 'grpc'; it serves: http (80/TCP), metrics (9090/TCP)"]


def test_nothing_can_flow_to_a_portless_workload(multi):
    multi["zero-trust-aks:flows"].append({"from": "frontend", "to": "worker"})
    assert errors_of(multi) == ["zero-trust-aks:flows[2].to: 'worker' serves no port, so nothing can connect to it; give it port or ports"]


def test_port_and_ports_together_and_duplicate_names_are_refused(multi):
    b = multi["zero-trust-aks:workloads"]["backend"]
    b["port"] = 80
    b["ports"].append({"name": "http", "port": 81})
    assert errors_of(copy.deepcopy(multi)) == [
        "zero-trust-aks:workloads.backend: give port (one port) or ports (several, named), not both",
        "zero-trust-aks:workloads.backend.ports: the name 'http' is used twice",
    ]


def test_a_port_name_needs_a_letter():
    from policies.config.kubernetes import port_name_problem

    assert port_name_problem("8080") and port_name_problem("http") is None
