"""Kubernetes NetworkPolicy in the verdict engine, as Cilium enforces it: one rule per test."""

from __future__ import annotations

from typing import Any

import pytest

from policies.verdict import Endpoint, Engine, addresses, entity
from tests.test_verdict import BACKEND, FRONTEND, allow_in, cnp

OTHER_NS_BACKEND = Endpoint("other", {"app": "backend"}, name="other-backend")
BACKEND_PEER_IN_NS = Endpoint("backend", {"app": "client"}, name="client")
PROMETHEUS = Endpoint("monitoring", {"app": "prometheus"}, namespace_labels={"team": "obs"}, name="prometheus")
ONPREM = addresses("on-prem", ("10.50.3.0/24",))
HOLE = addresses("hole", ("10.50.9.0/24",))


def netpol(ns: str, name: str = "np", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def allows(policies, src, dst, port=80, protocol="TCP") -> bool:
    return Engine(policies, endpoints=[src, dst]).decide(src, dst, port, protocol).allowed


BACKEND_SUBJECT = {"matchLabels": {"app": "backend"}}


def test_a_pod_selector_peer_admits_pods_of_the_policys_own_namespace_only():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}])
    assert allows([p], BACKEND_PEER_IN_NS, BACKEND)
    assert not allows([p], Endpoint("frontend", {"app": "client"}), BACKEND)


def test_a_namespace_selector_peer_admits_pods_of_namespaces_whose_labels_match():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "obs"}}}]}])
    assert allows([p], PROMETHEUS, BACKEND)
    assert not allows([p], FRONTEND, BACKEND)


def test_an_empty_namespace_selector_admits_pods_of_every_namespace_but_nothing_outside_the_cluster():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"from": [{"namespaceSelector": {}}]}])
    assert allows([p], FRONTEND, BACKEND) and allows([p], PROMETHEUS, BACKEND)
    assert not allows([p], entity("world"), BACKEND)


def test_a_namespace_and_pod_selector_in_one_peer_must_both_match():
    peer = {"namespaceSelector": {"matchLabels": {"team": "obs"}}, "podSelector": {"matchLabels": {"app": "grafana"}}}
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"from": [peer]}])
    assert not allows([p], PROMETHEUS, BACKEND)
    assert allows([p], Endpoint("monitoring", {"app": "grafana"}, namespace_labels={"team": "obs"}), BACKEND)


def test_an_ip_block_admits_addresses_inside_it_but_not_its_except_ranges_nor_pods():
    block = {"ipBlock": {"cidr": "10.50.0.0/16", "except": ["10.50.9.0/24"]}}
    p = netpol("frontend", podSelector={"matchLabels": {"app": "frontend"}}, policyTypes=["Egress"], egress=[{"to": [block]}])
    assert allows([p], FRONTEND, ONPREM, 443)
    assert not allows([p], FRONTEND, HOLE, 443)
    assert not allows([p], FRONTEND, BACKEND, 443)


def test_ports_restrict_every_peer_of_their_rule_and_a_missing_protocol_is_tcp():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"from": [{"namespaceSelector": {}}], "ports": [{"port": 80}]}])
    assert allows([p], FRONTEND, BACKEND, 80)
    assert not allows([p], FRONTEND, BACKEND, 81)
    assert not allows([p], FRONTEND, BACKEND, 80, "UDP")


def test_end_port_admits_the_whole_range():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"ports": [{"port": 8000, "endPort": 8100, "protocol": "TCP"}]}])
    assert allows([p], FRONTEND, BACKEND, 8050)
    assert not allows([p], FRONTEND, BACKEND, 8101)


def test_a_named_port_is_not_decided_offline_without_the_destinations_port_names():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"ports": [{"port": "http"}]}])
    v = Engine([p], endpoints=[FRONTEND, BACKEND]).decide(FRONTEND, BACKEND, 80)
    assert not v.exact


def test_a_rule_without_from_admits_every_source_including_outside_the_cluster():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"ports": [{"port": 80}]}])
    assert allows([p], FRONTEND, BACKEND) and allows([p], entity("world"), BACKEND)


def test_without_policy_types_a_policy_with_no_rules_denies_ingress_only():
    p = netpol("backend", podSelector={})
    assert not allows([p], FRONTEND, BACKEND)
    assert allows([p], BACKEND, FRONTEND)  # backend's egress stays open


def test_policy_types_egress_alone_leaves_ingress_open_and_denies_egress():
    p = netpol("backend", podSelector={}, policyTypes=["Egress"])
    assert allows([p], FRONTEND, BACKEND)
    assert not allows([p], BACKEND, FRONTEND)


@pytest.mark.parametrize("ingress", [[], None])
def test_an_empty_or_missing_ingress_list_with_policy_type_ingress_denies_all_ingress(ingress):
    spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
    if ingress is not None:
        spec["ingress"] = ingress
    assert not allows([netpol("backend", **spec)], FRONTEND, BACKEND)


def test_an_empty_ingress_rule_admits_everything():
    assert allows([netpol("backend", podSelector={}, ingress=[{}])], FRONTEND, BACKEND)


def test_a_networkpolicy_and_a_cilium_policy_add_up_as_one_set_of_allow_rules():
    deny_all = netpol("backend", podSelector={}, policyTypes=["Ingress"])
    allow_frontend = allow_in("backend", {"app": "backend"}, {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend"}})
    assert not allows([deny_all], FRONTEND, BACKEND)
    assert allows([deny_all, allow_frontend], FRONTEND, BACKEND)


def test_a_cilium_deny_rule_wins_over_a_networkpolicy_allow():
    allow_all = netpol("backend", podSelector={}, ingress=[{}])
    deny = cnp("backend", "deny", endpointSelector={}, ingressDeny=[{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend"}}]}])
    assert not allows([allow_all, deny], FRONTEND, BACKEND)


def test_a_networkpolicy_selects_pods_of_its_own_namespace_only():
    p = netpol("backend", podSelector={}, policyTypes=["Ingress"])
    assert allows([p], FRONTEND, OTHER_NS_BACKEND)


def test_match_expressions_of_the_namespace_and_the_pod_selector_of_one_peer_both_apply():
    peer = {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["obs"]}]},
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["grafana"]}]}}
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"from": [peer]}])
    assert allows([p], PROMETHEUS, BACKEND)
    assert not allows([p], Endpoint("monitoring", {"app": "grafana"}, namespace_labels={"team": "obs"}), BACKEND)
    assert not allows([p], FRONTEND, BACKEND)


def test_an_egress_pod_selector_peer_admits_pods_of_the_policys_own_namespace_only():
    p = netpol("frontend", podSelector={"matchLabels": {"app": "frontend"}}, policyTypes=["Egress"],
               egress=[{"to": [{"podSelector": {"matchLabels": {"app": "backend"}}}]}])
    assert allows([p], FRONTEND, Endpoint("frontend", {"app": "backend"}))
    assert not allows([p], FRONTEND, BACKEND)


def test_a_policy_without_a_pod_selector_selects_every_pod_of_its_namespace():
    p = netpol("backend", policyTypes=["Ingress"])
    assert not allows([p], FRONTEND, BACKEND) and not allows([p], FRONTEND, BACKEND_PEER_IN_NS)


def test_a_port_with_its_protocol_admits_that_protocol_only():
    p = netpol("backend", podSelector=BACKEND_SUBJECT, ingress=[{"ports": [{"port": 53, "protocol": "UDP"}]}])
    assert allows([p], FRONTEND, BACKEND, 53, "UDP") and not allows([p], FRONTEND, BACKEND, 53, "TCP")


def test_a_verdict_names_the_networkpolicy_that_decided_it_by_namespace_and_name():
    p = netpol("backend", "only-web", podSelector=BACKEND_SUBJECT, ingress=[{"ports": [{"port": 80}]}])
    side = Engine([p], endpoints=[FRONTEND, BACKEND]).decide(FRONTEND, BACKEND, 80).ingress
    assert side.policies == ("backend/networkpolicy/only-web",) and side.reason.endswith("allowed by backend/networkpolicy/only-web ingress[0]")


def test_a_network_policy_becomes_exactly_the_cilium_rule_cilium_parses_it_into():
    # pkg/k8s/network_policy.go ParseNetworkPolicy: namespace labels under their prefix, an empty namespace
    # selector as "the namespace label exists", a port without a number as every port of its protocol.
    from policies.verdict.networkpolicy import to_cilium

    p = netpol(
        "backend", name="mixed", podSelector=BACKEND_SUBJECT,
        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "obs"}}},
                           {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}},
                           {"namespaceSelector": {}}],
                  "ports": [{"protocol": "UDP"}, {"port": 8080, "endPort": 8090}]}],
        egress=[{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}],
        policyTypes=["Ingress", "Egress"],
    )
    prefix, ns = "io.cilium.k8s.namespace.labels", "io.kubernetes.pod.namespace"
    ports = [{"ports": [{"port": "0", "protocol": "UDP"}]}, {"ports": [{"port": "8080", "protocol": "TCP", "endPort": 8090}]}]
    assert to_cilium(p) == {
        "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"namespace": "backend", "name": "networkpolicy/mixed"},
        "spec": {
            "endpointSelector": BACKEND_SUBJECT,
            "ingress": [
                {"fromEndpoints": [{"matchLabels": {f"{prefix}.team": "obs"}}], "toPorts": ports},
                {"fromEndpoints": [{"matchLabels": {}, "matchExpressions": [{"key": f"{prefix}.team", "operator": "DoesNotExist"}]}],
                 "toPorts": ports},
                {"fromEndpoints": [{"matchLabels": {}, "matchExpressions": [{"key": ns, "operator": "Exists"}]}], "toPorts": ports},
            ],
            "egress": [{"toEndpoints": [{"matchLabels": {"app": "db", ns: "backend"}}]}],
        },
    }
    assert to_cilium({"kind": "NetworkPolicy", "spec": {}})["metadata"] == {"namespace": "default", "name": "networkpolicy/?"}
