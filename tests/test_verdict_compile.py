"""A policy's rules as the engine reads them: each peer rule's fields, its ports, and where Cilium rejects it,
named by the path of the offending field."""

from __future__ import annotations

import pytest

from policies.cilium_versions import DEFAULT_CILIUM, features
from policies.verdict import PolicyRejected, compile_policy
from policies.verdict.compile import WILDCARD, PortEntry
from tests.test_verdict import cnp

CILIUM = features(DEFAULT_CILIUM)
TCP = frozenset({"TCP"})


def peer_rule(rule: dict, section: str = "ingress"):
    (r,) = compile_policy(cnp("shop", "p", endpointSelector={}, **{section: [rule]}), CILIUM)
    (pr,) = r.sections[section]
    return pr


def rejected(rule: dict, section: str = "ingress") -> str:
    with pytest.raises(PolicyRejected) as e:
        peer_rule(rule, section)
    return str(e.value)


def test_a_named_port_keeps_its_entrys_l7_rules_and_the_ports_after_it_are_kept_too():
    http = [{"method": "GET"}]
    pr = peer_rule({"toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}, {"port": "8080", "protocol": "TCP"}],
                                 "rules": {"http": http}}]})
    assert pr.ports == (PortEntry(0, 0, TCP, named="http", http=tuple(http)), PortEntry(8080, 8080, TCP, http=tuple(http)))


def test_a_named_port_keeps_dns_and_other_l7_rules_as_a_numbered_one_does():
    pr = peer_rule({"toPorts": [{"ports": [{"port": "dns", "protocol": "UDP"}], "rules": {"dns": [{"matchPattern": "*"}]}},
                                {"ports": [{"port": "kafka", "protocol": "TCP"}], "rules": {"kafka": [{"topic": "t"}]}}]}, "egress")
    assert pr.ports == (PortEntry(0, 0, frozenset({"UDP"}), named="dns", dns=({"matchPattern": "*"},)),
                        PortEntry(0, 0, TCP, named="kafka", other_l7="rules.kafka"))


def test_port_65535_is_a_port_and_65536_is_rejected_by_its_path():
    assert peer_rule({"toPorts": [{"ports": [{"port": "65535"}]}]}).ports[0].lo == 65535
    assert rejected({"toPorts": [{"ports": [{"port": "80"}, {"port": "65536"}]}]}) == (
        "shop/p ingress[0].toPorts[0].ports[1].port: 65536 is out of range")


def test_an_end_port_equal_to_the_port_is_that_one_port_and_a_higher_one_a_range():
    same, wider = peer_rule({"toPorts": [{"ports": [{"port": "80", "endPort": 80}, {"port": "80", "endPort": 81}]}]}).ports
    assert (same.lo, same.hi, wider.lo, wider.hi) == (80, 80, 80, 81)


def test_a_protocol_cilium_does_not_know_is_rejected_by_its_path():
    assert rejected({"toPorts": [{"ports": [{"port": "80", "protocol": "QUIC"}]}]}) == (
        "shop/p ingress[0].toPorts[0].ports[0].protocol: 'QUIC' is not TCP, UDP, SCTP or ANY")


def test_a_peer_rule_or_a_spec_that_is_not_a_mapping_is_rejected_by_its_path():
    assert rejected("fromEndpoints") == "shop/p ingress[0]: must be a mapping"
    with pytest.raises(PolicyRejected, match=r"^shop/p specs\[0\]: must be a mapping$"):
        compile_policy({**cnp("shop", "p"), "spec": None, "specs": ["ingress"]}, CILIUM)


def test_an_invalid_selector_or_cidr_of_a_peer_rule_is_rejected_by_its_path():
    bad = {"matchExpressions": [{"key": "a", "operator": "Equals"}]}
    assert rejected({"fromEndpoints": [{}, bad]}).startswith("ingress[0].fromEndpoints[1].matchExpressions[0].operator:")
    assert rejected({"fromRequires": [bad]}).startswith("ingress[0].fromRequires[0].matchExpressions[0].operator:")
    assert rejected({"toNodes": [bad]}, "egress").startswith("egress[0].toNodes[0].matchExpressions[0].operator:")
    assert rejected({"fromCIDR": ["10.0.0.0/33"]}) == "shop/p ingress[0]: '10.0.0.0/33' is not a CIDR"


def test_a_rule_of_a_second_spec_is_named_by_its_spec_too():
    policy = {**cnp("shop", "p"), "spec": None, "specs": [{"endpointSelector": {}, "ingress": [{}]},
                                                          {"endpointSelector": {}, "ingress": [{}, {"fromCIDR": ["x"]}]}]}
    with pytest.raises(PolicyRejected, match=r"^shop/p specs\[1\]\.ingress\[1\]: 'x' is not a CIDR$"):
        compile_policy(policy, CILIUM)


def test_a_tofqdns_selector_keeps_only_the_names_and_patterns_it_gives():
    pr = peer_rule({"toFQDNs": [{"matchName": "", "matchPattern": "*.example.com"}, {"matchName": "api.example.com", "note": "x"}]}, "egress")
    assert pr.fqdns == ({"matchPattern": "*.example.com"}, {"matchName": "api.example.com"})


def test_an_egress_rule_to_nodes_selects_nodes_by_their_labels():
    pr = peer_rule({"toNodes": [{"matchLabels": {"agentpool": "system"}}]}, "egress")
    assert pr.nodes and len(pr.selectors) == 1 and pr.offline is None


@pytest.mark.parametrize("section, rule, offline", [
    ("egress", {"toServices": [{"k8sService": {"serviceName": "api", "namespace": "shop"}}]}, "service"),
    ("egress", {"toGroups": [{"aws": {"securityGroupsIds": ["sg-1"]}}]}, "group"),
    ("ingress", {"fromGroups": [{"aws": {"securityGroupsIds": ["sg-1"]}}]}, "group"),
])
def test_peers_only_a_cloud_or_the_service_list_can_resolve_are_left_undecided_by_kind(section, rule, offline):
    pr = peer_rule(rule, section)
    assert (pr.offline, pr.selectors, pr.fqdns) == (offline, (), ())


def test_an_icmp_only_rule_admits_any_peer_and_a_field_without_a_family_is_ipv4():
    pr = peer_rule({"icmps": [{"fields": [{"type": 8}, {"family": "IPv6", "type": "EchoRequest"}]}]})
    assert pr.icmps == (("IPv4", "8"), ("IPv6", "EchoRequest")) and pr.selectors == WILDCARD and pr.ports == ()


def test_an_authentication_that_is_not_a_mapping_asks_for_no_mutual_authentication():
    assert not peer_rule({"fromEndpoints": [{}], "authentication": "required"}).authenticated
    assert peer_rule({"fromEndpoints": [{}], "authentication": {"mode": "required"}}).authenticated


# -- rules ---------------------------------------------------------------------------------------------------


def rule_rejected(policy: dict, cilium=CILIUM) -> str:
    with pytest.raises(PolicyRejected) as e:
        compile_policy(policy, cilium)
    return str(e.value)


def test_an_empty_section_is_noted_only_where_no_deny_section_of_the_direction_enforces_it():
    (r,) = compile_policy(cnp("shop", "p", endpointSelector={}, ingress=[], egress=[], egressDeny=[{"toEntities": ["world"]}]), CILIUM)
    assert (r.empty_sections, r.enforces) == (("ingress",), {"ingress": False, "egress": True})


def test_a_rule_keeps_its_policys_namespace_and_each_spec_of_several_its_own_name():
    policy = {**cnp("shop", "p"), "spec": None, "specs": [{"endpointSelector": {}, "ingress": [{}]}, {"endpointSelector": {}, "egress": [{}]}]}
    assert [(r.policy, r.namespace) for r in compile_policy(policy, CILIUM)] == [("shop/p specs[0]", "shop"), ("shop/p specs[1]", "shop")]
    (r,) = compile_policy({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "c"},
                           "spec": {"endpointSelector": {}, "ingress": [{}]}}, CILIUM)
    assert (r.policy, r.namespace) == ("ccnp/c", None)


def test_a_namespaced_policy_without_a_namespace_is_the_default_namespaces_and_one_without_a_name_is_named_by_a_question_mark():
    (r,) = compile_policy({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {},
                           "spec": {"endpointSelector": {}, "ingress": [{}]}}, CILIUM)
    assert (r.policy, r.namespace) == ("default/?", "default")
    (r,) = compile_policy({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                           "spec": {"endpointSelector": {}, "ingress": [{}]}}, CILIUM)
    assert (r.policy, r.namespace) == ("ccnp/?", None)


def test_a_policy_with_neither_spec_nor_specs_is_rejected_naming_it():
    with pytest.raises(PolicyRejected) as e:
        compile_policy({**cnp("shop", "empty"), "spec": None}, CILIUM)
    assert str(e.value) == "shop/empty: has neither spec nor specs"


def test_a_rule_cilium_rejects_is_named_by_its_path_and_why():
    assert rule_rejected(cnp("shop", "p", ingress=[{}])) == "shop/p spec: needs exactly one of endpointSelector or nodeSelector"
    assert rule_rejected(cnp("shop", "p", endpointSelector={}, ingress={})) == "shop/p spec.ingress: must be a list"
    assert rule_rejected(cnp("shop", "p", endpointSelector={})) == (
        f"shop/p spec: has no ingress, ingressDeny, egress or egressDeny rule (Cilium {CILIUM.text} rejects it)")
    host = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "h"},
            "spec": {"nodeSelector": {"matchExpressions": [{"key": "a", "operator": "Equals"}]}, "ingress": [{}]}}
    assert rule_rejected(host).startswith("spec.nodeSelector.matchExpressions[0].operator:")


def test_a_policy_that_is_not_json_data_is_still_compiled():
    policy = cnp("shop", "p", endpointSelector={}, ingress=[{}])
    policy["metadata"]["annotations"] = {"note": {"not", "json"}}  # a set: no cache key
    (r,) = compile_policy(policy, CILIUM)
    assert r.policy == "shop/p" and r.enforces["ingress"]
