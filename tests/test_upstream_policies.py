"""Policies others wrote (Cilium's examples, a monitoring stack's NetworkPolicies), verbatim, against the connections their documentation describes.

Each connection is decided as documented, or reported undecided naming the setting or field that decides
it; a file the API server would refuse or prune is reported. Nothing disagrees silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from policies.agent_settings import AKS, AgentSettings
from policies.verdict import Endpoint, Engine, addresses, entity
from policies.verdict import crd

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream-policies"
HOST_FIREWALL = AgentSettings(host_firewall=True, node_selector_labels=False)


def stored(*names: str) -> tuple[list[dict], list[str]]:
    objects = [yaml.safe_load((UPSTREAM / n).read_text()) for n in names]
    return crd.as_stored(objects, "upstream")


def pod(namespace: str, service_account: str = "default", namespace_labels: dict | None = None, **labels: str) -> Endpoint:
    return Endpoint(namespace, labels, service_account=service_account, namespace_labels=namespace_labels or {})


def verdict(name: str, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP", settings: AgentSettings = AKS, extra=()):
    policies, notes = stored(name)
    assert notes == []
    return Engine(policies + list(extra), endpoints=(src, dst), settings=settings).decide(src, dst, port, protocol)


SSH_NODE = entity("host", node_labels={"node-access": "ssh"})
KUBE_PROMETHEUS = {"app.kubernetes.io/part-of": "kube-prometheus"}
PROMETHEUS = pod("monitoring", **KUBE_PROMETHEUS, **{"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "prometheus"})
GRAFANA = pod("monitoring", **KUBE_PROMETHEUS, **{"app.kubernetes.io/name": "grafana", "app.kubernetes.io/component": "grafana"})
ALERTMANAGER = pod("monitoring", **KUBE_PROMETHEUS, **{"app.kubernetes.io/name": "alertmanager", "app.kubernetes.io/component": "alert-router",
                                                      "app.kubernetes.io/instance": "main"})
WORLD = addresses("world 203.0.113.9", ("203.0.113.9/32",))
DOCUMENTED = [
    # (file, src, dst, port, protocol, settings, allowed)
    ("host--demo-host-policy.yaml", WORLD, SSH_NODE, 22, "TCP", HOST_FIREWALL, True),
    ("host--demo-host-policy.yaml", WORLD, SSH_NODE, 8080, "TCP", HOST_FIREWALL, False),
    ("host--demo-host-policy.yaml", pod("default", app="x"), SSH_NODE, 8080, "TCP", HOST_FIREWALL, True),
    ("kubernetes--clusterwide--health.yaml", entity("remote-node"), entity("health"), 4240, "TCP", AKS, True),
    ("kubernetes--clusterwide--health.yaml", pod("default", app="x"), entity("health"), 4240, "TCP", AKS, False),
    ("l4--init.yaml", entity("host"), entity("init"), 8080, "TCP", AKS, True),
    ("l4--init.yaml", pod("default", app="x"), entity("init"), 8080, "TCP", AKS, False),
    ("l4--init.yaml", entity("init"), WORLD, 53, "UDP", AKS, True),
    ("l4--init.yaml", entity("init"), WORLD, 443, "TCP", AKS, False),
    ("kubernetes--namespace--namespace-labels-policy.yaml", pod("alliance", namespace_labels={"faction": "alliance"}, name="x-wing"),
     pod("default", name="rebel-base"), 80, "TCP", AKS, True),
    ("kubernetes--namespace--namespace-labels-policy.yaml", pod("empire", namespace_labels={"faction": "empire"}, name="tiefighter"),
     pod("default", name="rebel-base"), 80, "TCP", AKS, False),
    ("kubernetes--serviceaccount--serviceaccount-policy.yaml", pod("default", "luke", app="luke"), pod("default", "leia", app="leia"),
     80, "TCP", AKS, True),
    ("kubernetes--serviceaccount--serviceaccount-policy.yaml", pod("default", "vader", app="vader"), pod("default", "leia", app="leia"),
     80, "TCP", AKS, False),
    ("getting-started--kafka.yaml", pod("default", app="empire-hq"), pod("default", app="kafka"), 9092, "TCP", AKS, False),
    ("kube-prometheus--grafana-networkPolicy.yaml", PROMETHEUS, GRAFANA, 3000, "TCP", AKS, True),
    ("kube-prometheus--grafana-networkPolicy.yaml", pod("ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"}), GRAFANA,
     3000, "TCP", AKS, False),
    ("kube-prometheus--grafana-networkPolicy.yaml", pod("default", **{"app.kubernetes.io/name": "prometheus"}), GRAFANA,
     3000, "TCP", AKS, False),
    ("kube-prometheus--grafana-networkPolicy.yaml", GRAFANA, WORLD, 443, "TCP", AKS, True),
    ("kube-prometheus--alertmanager-networkPolicy.yaml", PROMETHEUS, ALERTMANAGER, 9093, "TCP", AKS, True),
    ("kube-prometheus--alertmanager-networkPolicy.yaml", PROMETHEUS, ALERTMANAGER, 9094, "TCP", AKS, False),
    ("kube-prometheus--alertmanager-networkPolicy.yaml", ALERTMANAGER, ALERTMANAGER, 9094, "UDP", AKS, True),
    ("kube-prometheus--alertmanager-networkPolicy.yaml", ALERTMANAGER, ALERTMANAGER, 9093, "TCP", AKS, False),
]


@pytest.mark.parametrize("name, src, dst, port, protocol, settings, allowed", DOCUMENTED,
                         ids=[f"{d[0].removesuffix('.yaml')}-{d[1].display}-{d[2].display}-{d[3]}" for d in DOCUMENTED])
def test_each_upstream_example_decides_its_documented_connection_exactly(name, src, dst, port, protocol, settings, allowed):
    v = verdict(name, src, dst, port, protocol, settings)
    assert (v.allowed, v.exact) == (allowed, True), v.reason


def test_the_host_policy_example_on_aks_is_undecided_naming_the_host_firewall_for_both_documented_connections():
    for port in (22, 8080):
        v = verdict("host--demo-host-policy.yaml", WORLD, SSH_NODE, port)
        assert not v.exact and "enable-host-firewall" in v.reason


def test_the_kafka_example_allows_the_outpost_at_l4_and_names_its_kafka_rules_as_not_decided():
    v = verdict("getting-started--kafka.yaml", pod("default", app="empire-outpost"), pod("default", app="kafka"), 9092)
    assert v.allowed and not v.exact and v.ingress.other_l7 == "rules.kafka"


def test_the_listener_example_allows_its_name_at_l4_and_names_the_listener_as_not_decided():
    example = addresses("world 93.184.215.14", ("93.184.215.14/32",), names=("example.com",))
    v = verdict("l4--envoy_listener_redirect.yaml", pod("default", app="myService"), example, 80)
    assert v.allowed and not v.exact and v.egress.other_l7 == "listener"


def test_the_requires_example_narrows_every_allow_of_its_pods_to_sources_that_are_prod_too():
    allow_namespace = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "allow-all", "namespace": "default"},
                       "spec": {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}}
    prod = pod("default", env="prod", app="db")
    assert verdict("l3--requires--requires.yaml", pod("default", env="prod", app="api"), prod, 5432, extra=[allow_namespace]).allowed
    v = verdict("l3--requires--requires.yaml", pod("default", env="dev", app="api"), prod, 5432, extra=[allow_namespace])
    assert not v.allowed and v.exact


def test_the_from_nodes_example_is_refused_by_the_api_server_for_its_misspelt_api_version():
    policies, notes = stored("l3--entities--from_nodes.yaml")
    assert policies == [] and notes == [
        "upstream object 0 (CiliumNetworkPolicy to-dev-from-worker-nodes): apiVersion None is not served for CiliumNetworkPolicy "
        "(only cilium.io/v2): the API server refuses it, not replayed"
    ]


def test_the_auth_example_loses_its_retired_auth_field_to_pruning_and_is_judged_without_it():
    policies, notes = stored("auth--auth.yaml")
    assert notes == ["upstream object 0 (CiliumNetworkPolicy l3-egress-rule): the API server prunes spec.egress[0].auth "
                     "(not in the CiliumNetworkPolicy schema): judged without them"]
    client, server = pod("default", run="ssh-client"), pod("default", run="sshd")
    v = Engine(policies, endpoints=(client, server)).decide(client, server, 22)
    assert v.allowed and v.exact
