"""The verdict engine follows Cilium's semantics, one rule per test."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.cilium_versions import CILIUM, features
from policies.verdict import Endpoint, Engine, PolicyRejected, addresses, compile_policy, decide, entity, keep_label
from policies.verdict.selectors import parse_selector

FRONTEND = Endpoint("frontend", {"app": "frontend"}, name="frontend")
BACKEND = Endpoint("backend", {"app": "backend"}, name="backend")
STRANGER = Endpoint("frontend", {}, name="stranger")


def cnp(ns: str, name: str = "p", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def ccnp(name: str = "c", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def allow_in(ns: str, to: dict, peer: dict, port: str = "80", name: str = "allow", **extra) -> dict:
    rule = {"fromEndpoints": [peer], "toPorts": [{"ports": [{"port": port, "protocol": "TCP"}]}], **extra}
    return cnp(ns, name, endpointSelector={"matchLabels": to}, ingress=[rule])


DENY_ALL_BACKEND = cnp("backend", "deny", endpointSelector={}, ingress=[{}])
FRONTEND_PEER = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend", "app": "frontend"}}


def allowed(policies, src=FRONTEND, dst=BACKEND, port=80, protocol="TCP", **kw) -> bool:
    return decide(policies, src, dst, port, protocol, **kw).allowed


# -- enforcement ---------------------------------------------------------------------------


def test_no_policy_at_all_allows_everything():
    assert allowed([])


def versions(fact: str, has: bool = True) -> list[tuple[int, int]]:
    """The Cilium versions of the table that have (or lack) a fact: tests run at exactly those."""
    return [v for v, f in CILIUM.items() if getattr(f, fact) is has]


def test_every_aks_release_row_names_its_source_and_a_cilium_the_engine_knows():
    from policies.cilium_versions import AKS_RELEASES

    assert len({r.kubernetes for r in AKS_RELEASES}) == len(AKS_RELEASES)
    assert all(r.source and r.cilium in CILIUM for r in AKS_RELEASES)


def test_kubernetes_1_36_and_1_37_on_aks_ship_cilium_1_19_as_the_release_notes_say():
    from policies.cilium_versions import aks_cilium

    assert aks_cilium("1.36") == aks_cilium("1.37.1") == (1, 19)
    assert features(aks_cilium("1.36")).multi_label_dns_wildcard


def test_the_version_table_states_what_the_cilium_sources_say():
    first = {fact: min(versions(fact)) for fact in ("enable_default_deny", "end_port", "rejects_empty_rules", "multi_label_dns_wildcard")}
    assert first == {"enable_default_deny": (1, 16), "end_port": (1, 16), "rejects_empty_rules": (1, 17), "multi_label_dns_wildcard": (1, 19)}


@pytest.mark.parametrize("version", versions("rejects_empty_rules", False))
def test_an_empty_ingress_list_enforces_nothing_where_cilium_accepts_it(version):
    walkthrough = cnp("backend", "default-deny", endpointSelector={}, ingress=[])
    v = decide([walkthrough], FRONTEND, BACKEND, 80, version=version)
    assert v.allowed
    assert "`ingress: []`, which enforces nothing" in v.reason


@pytest.mark.parametrize("version", versions("rejects_empty_rules"))
def test_a_policy_with_only_empty_sections_is_rejected_where_cilium_rejects_it(version):
    walkthrough = cnp("backend", "default-deny", endpointSelector={}, ingress=[])
    engine = Engine([walkthrough], version)
    assert [ref for ref, _ in engine.rejected] == ["backend/default-deny"]
    assert engine.decide(FRONTEND, BACKEND, 80).allowed


def test_an_empty_rule_puts_the_selected_pods_into_ingress_default_deny():
    v = decide([DENY_ALL_BACKEND], FRONTEND, BACKEND, 80)
    assert not v.allowed
    assert "ingress of backend/backend is in default deny (by backend/deny)" in v.reason


def test_egress_default_deny_blocks_the_source_side():
    deny_egress = cnp("frontend", "deny", endpointSelector={}, egress=[{}])
    v = decide([deny_egress], FRONTEND, BACKEND, 80)
    assert not v.allowed and not v.egress.allowed and v.ingress.allowed


def test_a_connection_needs_the_ingress_side_too():
    egress_ok = cnp("frontend", "out", endpointSelector={}, egress=[{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "backend"}}]}])
    assert not allowed([egress_ok, DENY_ALL_BACKEND])


def test_a_connection_needs_the_egress_side_too():
    ingress_ok = allow_in("backend", {"app": "backend"}, FRONTEND_PEER)
    deny_egress = cnp("frontend", "deny", endpointSelector={}, egress=[{}])
    v = decide([ingress_ok, deny_egress], FRONTEND, BACKEND, 80)
    assert not v.allowed and v.ingress.allowed and not v.egress.allowed


def test_an_ingress_allow_names_the_deciding_rule():
    v = decide([DENY_ALL_BACKEND, allow_in("backend", {"app": "backend"}, FRONTEND_PEER)], FRONTEND, BACKEND, 80)
    assert v.allowed
    assert "ingress of backend/backend allowed by backend/allow ingress[0]" in v.reason


# -- enableDefaultDeny ---------------------------------------------------------------------


def test_enable_default_deny_false_keeps_the_direction_open():
    audit = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [{}]}], enableDefaultDeny={"ingress": False})
    assert allowed([audit])


def test_enable_default_deny_false_is_overruled_by_another_default_deny_rule():
    audit = cnp("backend", "audit", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER]}], enableDefaultDeny={"ingress": False})
    assert allowed([audit, DENY_ALL_BACKEND])  # the allow of the `false` policy still counts
    assert not allowed([audit, DENY_ALL_BACKEND], src=STRANGER)


def test_a_pods_enforcement_says_whether_it_is_in_default_deny_and_by_which_policies():
    from policies.verdict.view import Side

    audit = cnp("backend", "audit", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER]}], enableDefaultDeny={"ingress": False})
    engine = Engine([audit, DENY_ALL_BACKEND], endpoints=[BACKEND])
    assert engine.enforcement(BACKEND, "ingress") == Side(True, "ingress of backend/backend is in default deny (by backend/deny)",
                                                          ("backend/deny",))
    assert Engine([audit], endpoints=[BACKEND]).enforcement(BACKEND, "ingress") == Side(
        False, "ingress of backend/backend is enforced but default-allow: every enforcing rule sets enableDefaultDeny.ingress: false",
        ("backend/audit",))
    side = Engine([audit], endpoints=[BACKEND]).enforcement(BACKEND, "egress")
    assert (side.allowed, side.policies) == (False, ()) and side.reason.startswith("egress of backend/backend is not enforced: ")


@pytest.mark.parametrize("version", versions("enable_default_deny", False))
def test_enable_default_deny_is_pruned_where_the_crd_lacks_it(version):
    audit = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [{}]}], enableDefaultDeny={"ingress": False})
    assert not allowed([audit], version=version)


def test_enable_default_deny_for_a_direction_without_rules_does_nothing():
    p = cnp("backend", "p", endpointSelector={}, egress=[{}], enableDefaultDeny={"ingress": True})
    v = decide([p], FRONTEND, BACKEND, 80)
    assert v.ingress.allowed and "not enforced" in v.ingress.reason


# -- namespace scoping ---------------------------------------------------------------------


def test_a_cnp_peer_without_a_namespace_only_matches_its_own_namespace():
    same_ns_peer = allow_in("backend", {"app": "backend"}, {"matchLabels": {"app": "frontend"}})
    assert not allowed([DENY_ALL_BACKEND, same_ns_peer])
    assert allowed([DENY_ALL_BACKEND, same_ns_peer], src=Endpoint("backend", {"app": "frontend"}))


def test_a_wildcard_peer_in_a_cnp_means_the_policy_namespace_not_the_cluster():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [{}]}])
    assert not allowed([p])
    assert allowed([p], src=Endpoint("backend", {"app": "other"}))


def test_a_namespace_in_match_expressions_stops_the_namespace_injection():
    peer = {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["backend"]}]}
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [peer]}])
    assert allowed([p])
    assert not allowed([p], src=Endpoint("backend", {"app": "x"}))


def test_an_unprefixed_namespace_key_counts_as_any_source():
    p = allow_in("backend", {"app": "backend"}, {"matchLabels": {"io.kubernetes.pod.namespace": "frontend", "app": "frontend"}})
    assert allowed([p])


def test_a_namespace_label_selector_stops_the_namespace_injection():
    peer = {"matchLabels": {"k8s:io.cilium.k8s.namespace.labels.team": "web"}}
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [peer]}])
    assert allowed([p], src=Endpoint("frontend", {"app": "frontend"}, namespace_labels={"team": "web"}))
    assert not allowed([p])


def test_an_endpoint_selector_namespace_of_its_own_is_overwritten_by_the_policy_namespace():
    p = cnp("backend", "p", endpointSelector={"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend"}}, ingress=[{}])
    assert not allowed([p])  # it selects backend's pods
    assert allowed([p], src=BACKEND, dst=FRONTEND)


def test_a_ccnp_selects_pods_in_every_namespace():
    p = ccnp(endpointSelector={}, ingress=[{}])
    assert not allowed([p])
    assert not allowed([p], src=BACKEND, dst=FRONTEND)


def test_a_ccnp_wildcard_peer_means_every_pod_of_the_cluster():
    p = ccnp(endpointSelector={"matchLabels": {"app": "backend"}}, ingress=[{"fromEndpoints": [{}]}])
    assert allowed([p])


def test_a_ccnp_with_a_node_selector_selects_no_pod():
    p = ccnp(nodeSelector={}, ingress=[{}])
    assert allowed([p])


def test_a_cnp_with_a_node_selector_is_rejected():
    with pytest.raises(PolicyRejected, match="cannot use nodeSelector"):
        compile_policy(cnp("backend", "p", nodeSelector={}, ingress=[{}]), features((1, 17)))


# -- labels ---------------------------------------------------------------------------------


def test_a_k8s_prefixed_key_matches_kubernetes_labels():
    assert allowed([DENY_ALL_BACKEND, allow_in("backend", {"app": "backend"}, {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend", "k8s:app": "frontend"}})])


def test_a_key_with_another_source_never_matches_a_pod_label():
    peer = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend", "container:app": "frontend"}}
    assert not allowed([DENY_ALL_BACKEND, allow_in("backend", {"app": "backend"}, peer)])


def test_labels_cilium_drops_from_identities_never_match():
    assert not keep_label("pod-template-hash")
    assert not keep_label("statefulset.kubernetes.io/pod-name")
    assert keep_label("app.kubernetes.io/name")
    peer = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend", "pod-template-hash": "abc"}}
    src = Endpoint("frontend", {"app": "frontend", "pod-template-hash": "abc"})
    assert not allowed([DENY_ALL_BACKEND, allow_in("backend", {"app": "backend"}, peer)], src=src)


def test_the_service_account_label_cilium_adds_can_be_selected():
    peer = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend", "io.cilium.k8s.policy.serviceaccount": "web"}}
    p = allow_in("backend", {"app": "backend"}, peer)
    assert allowed([DENY_ALL_BACKEND, p], src=Endpoint("frontend", {}, service_account="web"))
    assert not allowed([DENY_ALL_BACKEND, p], src=Endpoint("frontend", {}))


@pytest.mark.parametrize(
    ("operator", "values", "src_labels", "expected"),
    [
        ("In", ["frontend", "web"], {"app": "web"}, True),
        ("NotIn", ["frontend"], {}, True),  # an absent key satisfies NotIn
        ("NotIn", ["frontend"], {"app": "frontend"}, False),
        ("Exists", [], {"app": "x"}, True),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"app": "x"}, False),
    ],
)
def test_match_expressions_follow_kubernetes_operators(operator, values, src_labels, expected):
    peer = {
        "matchLabels": {"k8s:io.kubernetes.pod.namespace": "frontend"},
        "matchExpressions": [{"key": "app", "operator": operator, "values": values}],
    }
    p = allow_in("backend", {"app": "backend"}, peer)
    assert allowed([DENY_ALL_BACKEND, p], src=Endpoint("frontend", src_labels)) is expected


def test_a_lowercase_operator_rejects_the_policy():
    peer = {"matchExpressions": [{"key": "app", "operator": "in", "values": ["x"]}]}
    engine = Engine([DENY_ALL_BACKEND, allow_in("backend", {"app": "backend"}, peer)])
    assert [ref for ref, _ in engine.rejected] == ["backend/allow"]


# -- ports ----------------------------------------------------------------------------------


def test_another_port_is_denied():
    assert not allowed([DENY_ALL_BACKEND, allow_in("backend", {"app": "backend"}, FRONTEND_PEER)], port=8080)


def test_another_protocol_is_denied():
    assert not allowed([DENY_ALL_BACKEND, allow_in("backend", {"app": "backend"}, FRONTEND_PEER)], protocol="UDP")


def test_an_omitted_protocol_means_tcp_udp_and_sctp():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "53"}]}]}])
    assert all(allowed([p], port=53, protocol=proto) for proto in ("TCP", "UDP", "SCTP"))


def test_protocol_any_means_tcp_udp_and_sctp():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}]}]}])
    assert allowed([p], port=53, protocol="SCTP")


@pytest.mark.parametrize("version", versions("end_port"))
def test_end_port_is_an_inclusive_range_where_the_crd_has_it(version):
    rng = {"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "8000", "endPort": 8010, "protocol": "TCP"}]}]}
    p = cnp("backend", "p", endpointSelector={}, ingress=[rng])
    at = {"version": version}
    assert allowed([p], port=8010, **at) and allowed([p], port=8000, **at) and not allowed([p], port=8011, **at)


@pytest.mark.parametrize("version", versions("end_port", False))
def test_end_port_is_pruned_where_the_crd_lacks_it(version):
    rng = {"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "8000", "endPort": 8010, "protocol": "TCP"}]}]}
    p = cnp("backend", "p", endpointSelector={}, ingress=[rng])
    assert allowed([p], port=8000, version=version) and not allowed([p], port=8005, version=version)


def test_port_zero_wildcards_the_port_but_keeps_the_protocol():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "0", "protocol": "TCP"}]}]}])
    assert allowed([p], port=12345) and not allowed([p], port=12345, protocol="UDP")


def test_an_integer_port_rejects_the_policy():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"toPorts": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}])
    assert Engine([p]).rejected[0][1].endswith("must be a string (the CRD rejects 80)")


def test_a_rule_with_ports_and_no_peer_opens_the_port_to_every_source():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
    assert allowed([p], src=Endpoint("elsewhere", {}))


def test_a_rule_with_a_peer_and_no_ports_allows_every_port():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER]}])
    assert allowed([p], port=9999, protocol="UDP")


def test_an_explicit_empty_peer_list_selects_nothing_even_with_ports():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [], "toPorts": [{"ports": [{"port": "80"}]}]}])
    assert not allowed([p])


def test_a_to_ports_entry_without_ports_allows_nothing():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [{}]}])
    assert not allowed([p])


NAMED_HTTP = {"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}]}


def test_a_named_port_is_not_decided_offline_when_the_destinations_port_names_are_unknown():
    v = decide([cnp("backend", "p", endpointSelector={}, ingress=[NAMED_HTTP])], FRONTEND, BACKEND, 80)
    assert not v.allowed and not v.exact


def test_a_named_port_is_decided_exactly_by_the_destinations_own_port_names():
    p = cnp("backend", "p", endpointSelector={}, ingress=[NAMED_HTTP])
    named = Endpoint("backend", {"app": "backend"}, name="backend", named_ports={"http": (8080, "TCP"), "metrics": (9090, "TCP")})
    assert decide([p], FRONTEND, named, 8080).allowed and decide([p], FRONTEND, named, 8080).exact
    v = decide([p], FRONTEND, named, 9090)
    assert not v.allowed and v.exact


def test_an_egress_named_port_is_not_decided_offline_even_where_the_source_names_the_same_port():
    rule = {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "backend"}}], "toPorts": [{"ports": [{"port": "http"}]}]}
    named = Endpoint("backend", {"app": "backend"}, name="backend", named_ports={"http": (8080, "TCP")})
    source = Endpoint("frontend", {"app": "frontend"}, name="frontend", named_ports={"http": (8080, "TCP")})
    for src in (FRONTEND, source):
        v = decide([cnp("frontend", "p", endpointSelector={}, egress=[rule])], src, named, 8080)
        assert not v.allowed and not v.exact


def test_l7_rules_allow_at_l4_but_are_not_decided_offline():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]}])
    v = decide([p], FRONTEND, BACKEND, 80)
    assert v.allowed and not v.exact
    assert "through the L7 proxy: each request is judged by its rules" in v.reason
    assert v.ingress.http == ({"method": "GET"},) and v.egress.http is None


# -- deny rules -----------------------------------------------------------------------------


def test_a_deny_rule_beats_an_allow():
    allow_all = cnp("backend", "all", endpointSelector={}, ingress=[{"fromEntities": ["all"]}])
    deny = cnp("backend", "no-frontend", endpointSelector={}, ingressDeny=[{"fromEndpoints": [FRONTEND_PEER]}])
    v = decide([allow_all, deny], FRONTEND, BACKEND, 80)
    assert not v.allowed and "denied by backend/no-frontend ingressDeny[0]" in v.reason


def test_a_deny_only_policy_still_enables_default_deny():
    deny80 = cnp("backend", "p", endpointSelector={}, ingressDeny=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
    assert not allowed([deny80], port=81)


def test_a_deny_beats_an_allow_from_a_ccnp():
    allow = ccnp(endpointSelector={}, ingress=[{"fromEntities": ["cluster"]}])
    deny = cnp("backend", "deny", endpointSelector={}, ingressDeny=[{"fromEndpoints": [FRONTEND_PEER]}])
    assert not allowed([allow, deny])


# -- entities and invalid rules ---------------------------------------------------------------


def test_the_entity_all_matches_pods():
    assert allowed([cnp("backend", "p", endpointSelector={}, ingress=[{"fromEntities": ["all"]}])])


def test_the_entity_cluster_matches_pods_of_other_namespaces():
    assert allowed([cnp("backend", "p", endpointSelector={}, ingress=[{"fromEntities": ["cluster"]}])])


@pytest.mark.parametrize("entity", ["world", "host", "remote-node", "kube-apiserver", "health", "init"])
def test_entities_outside_the_pod_network_never_match_pods(entity):
    assert not allowed([cnp("backend", "p", endpointSelector={}, ingress=[{"fromEntities": [entity]}])])


def test_a_rule_mixing_two_l3_kinds_is_rejected_as_a_whole():
    mixed = cnp("backend", "mixed", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "fromEntities": ["world"]}])
    engine = Engine([DENY_ALL_BACKEND, mixed])
    assert engine.rejected[0][1].endswith("combining fromEndpoints and fromEntities is not supported (Cilium rejects the policy)")
    assert not engine.decide(FRONTEND, BACKEND, 80).allowed


def test_a_cidr_rule_never_selects_a_pod_and_that_is_decided_exactly():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromCIDR": ["10.0.0.0/8"]}])
    v = decide([p], FRONTEND, BACKEND, 80)
    assert not v.allowed and v.exact


STRIPE = addresses("stripe", ("3.18.12.0/24",))
ONPREM = addresses("on-prem", ("10.50.0.0/16",), ("10.50.9.0/24",))


def test_a_cidr_rule_admits_addresses_inside_it_and_not_outside():
    rule = {"toCIDRSet": [{"cidr": "3.18.0.0/16"}], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
    p = cnp("frontend", "p", endpointSelector={}, egress=[rule])
    assert decide([p], FRONTEND, STRIPE, 443).allowed
    assert not decide([p], FRONTEND, ONPREM, 443).allowed and decide([p], FRONTEND, ONPREM, 443).exact


def test_a_cidr_rule_whose_except_cuts_into_a_peer_is_not_decided_offline():
    rule = {"toCIDRSet": [{"cidr": "10.50.0.0/16", "except": ["10.50.1.0/24"]}]}
    v = decide([cnp("frontend", "p", endpointSelector={}, egress=[rule])], FRONTEND, ONPREM, 443)
    assert not v.allowed and not v.exact and "covers on-prem only in part" in v.reason


def test_an_address_wholly_inside_a_rules_except_is_denied_exactly():
    rule = {"toCIDRSet": [{"cidr": "10.50.0.0/16", "except": ["10.50.1.0/24"]}]}
    v = decide([cnp("frontend", "p", endpointSelector={}, egress=[rule])], FRONTEND, addresses("host", ("10.50.1.7/32",)), 443)
    assert not v.allowed and v.exact


def test_a_rule_covering_one_address_peer_in_part_leaves_the_verdict_for_another_peer_exact():
    rule = {"toCIDRSet": [{"cidr": "10.50.0.0/16", "except": ["10.50.1.0/24"]}]}
    engine = Engine([cnp("frontend", "p", endpointSelector={}, egress=[rule])], endpoints=[ONPREM, STRIPE])
    assert not engine.decide(FRONTEND, ONPREM, 443).exact
    v = engine.decide(FRONTEND, STRIPE, 443)
    assert not v.allowed and v.exact and "on-prem" not in v.reason


def test_cidrs_with_host_bits_set_are_read_as_their_networks_as_cilium_parses_prefixes():
    # pkg/labels/cidr IPStringToLabel: netip.ParsePrefix, then the prefix Masked() (net.ParseCIDR in older releases)
    rule = {"toCIDRSet": [{"cidr": "10.50.7.7/16", "except": ["10.50.1.9/24"]}]}
    p = cnp("frontend", "p", endpointSelector={}, egress=[rule])
    assert decide([p], FRONTEND, addresses("in", ("10.50.2.7/32",)), 443).allowed
    v = decide([p], FRONTEND, addresses("cut", ("10.50.1.7/32",)), 443)
    assert not v.allowed and v.exact


def test_a_policy_with_a_cidr_that_is_not_one_is_rejected_naming_the_rule_and_the_value():
    engine = Engine([cnp("frontend", "p", endpointSelector={}, egress=[{"toCIDRSet": [{"cidr": "10.50.0.0/33"}]}])])
    assert [reason for _, reason in engine.rejected] == ["frontend/p egress[0]: '10.50.0.0/33' is not a CIDR"]


def test_a_cidr_rule_with_the_peers_own_except_covers_the_peer():
    rule = {"toCIDRSet": [{"cidr": "10.50.0.0/16", "except": ["10.50.9.0/24"]}]}
    assert decide([cnp("frontend", "p", endpointSelector={}, egress=[rule])], FRONTEND, ONPREM, 443).allowed


@pytest.mark.parametrize(
    "entities, reserved, admitted",
    [
        (["world"], "world", True),
        (["world-ipv4"], "world", True),
        (["cluster"], "world", False),
        (["cluster"], "kube-apiserver", True),
        (["cluster"], "remote-node", True),
        (["kube-apiserver"], "kube-apiserver", True),
        (["kube-apiserver"], "remote-node", False),
        (["all"], "remote-node", True),
    ],
)
def test_entities_select_the_reserved_identities_cilium_gives_them(entities, reserved, admitted):
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEntities": entities}])
    assert decide([p], entity(reserved), BACKEND, 80).allowed is admitted


def test_the_world_entity_covers_every_address_outside_the_cluster():
    p = cnp("frontend", "p", endpointSelector={}, egress=[{"toEntities": ["world"]}])
    assert decide([p], FRONTEND, STRIPE, 443).allowed and decide([p], FRONTEND, entity("world"), 443).allowed


API_SERVER_AKS = entity("kube-apiserver", outside=True, address="20.50.1.7")
API_SERVER_IN_CLUSTER = entity("kube-apiserver")


def egress_to(peer: dict) -> dict:
    return cnp("frontend", "p", endpointSelector={}, egress=[{**peer, "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}])


def test_a_cidr_rule_covering_the_address_of_an_api_server_outside_the_cluster_selects_it():
    v = decide([egress_to({"toCIDR": ["20.50.0.0/16"]})], FRONTEND, API_SERVER_AKS, 443)
    assert v.allowed and v.exact


def test_a_cidr_rule_beside_the_address_of_an_api_server_outside_the_cluster_does_not_select_it():
    v = decide([egress_to({"toCIDR": ["20.51.0.0/16"]})], FRONTEND, API_SERVER_AKS, 443)
    assert not v.allowed and v.exact


def test_the_world_entity_selects_an_api_server_outside_the_cluster():
    assert decide([egress_to({"toEntities": ["world"]})], FRONTEND, API_SERVER_AKS, 443).allowed


def test_the_kube_apiserver_entity_still_selects_an_api_server_outside_the_cluster():
    assert decide([egress_to({"toEntities": ["kube-apiserver"]})], FRONTEND, API_SERVER_AKS, 443).allowed


def test_neither_cidr_rules_nor_world_select_an_api_server_inside_the_cluster():
    for peer in ({"toCIDR": ["0.0.0.0/0"]}, {"toEntities": ["world"]}):
        v = decide([egress_to(peer)], FRONTEND, API_SERVER_IN_CLUSTER, 443)
        assert not v.allowed and v.exact


def test_a_cidr_rule_and_an_api_server_outside_at_an_unknown_address_are_not_decided_offline():
    outside_somewhere = entity("kube-apiserver", outside=True)
    v = decide([egress_to({"toCIDR": ["20.50.0.0/16"]})], FRONTEND, outside_somewhere, 443)
    assert not v.allowed and not v.exact
    assert decide([egress_to({"toCIDR": ["0.0.0.0/0", "::/0"]})], FRONTEND, outside_somewhere, 443).allowed


def test_a_cidr_rule_whose_ranges_together_cover_every_address_selects_the_whole_world():
    v = decide([egress_to({"toCIDR": ["0.0.0.0/0", "::/0"]})], FRONTEND, entity("world"), 443)
    assert v.allowed and v.exact


def test_only_the_api_server_can_live_outside_the_cluster():
    with pytest.raises(ValueError, match="only the kube-apiserver"):
        entity("remote-node", outside=True)


def test_endpoint_selectors_never_select_identities_outside_the_pods():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [{}]}])
    assert not decide([p], entity("world"), BACKEND, 80).allowed


def test_the_world_has_no_egress_policy_of_its_own():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEntities": ["world"], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
    v = decide([p], entity("world"), BACKEND, 80)
    assert v.allowed and v.egress.reason.startswith("of world not enforced")


def test_specs_lists_are_separate_rules():
    p = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "two", "namespace": "backend"},
        "specs": [
            {"endpointSelector": {}, "ingress": [{}]},
            {"endpointSelector": {"matchLabels": {"app": "backend"}}, "ingress": [{"fromEndpoints": [FRONTEND_PEER]}]},
        ],
    }
    assert allowed([p]) and not allowed([p], src=STRANGER)


def test_the_engine_ignores_objects_that_are_not_cilium_policies():
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "backend"}}
    assert allowed([namespace]) and not allowed([namespace, DENY_ALL_BACKEND])


def test_an_icmp_only_rule_enforces_the_direction_but_opens_no_port():
    p = cnp("backend", "p", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "icmps": [{"fields": [{"type": 8}]}]}])
    assert not allowed([p])


def test_a_rule_that_requires_mutual_authentication_is_not_decided_offline():
    rule = {"fromEndpoints": [FRONTEND_PEER], "authentication": {"mode": "required"}}
    v = decide([cnp("backend", "p", endpointSelector={}, ingress=[rule])], FRONTEND, BACKEND, 80)
    assert v.allowed and not v.exact
    assert decide([cnp("backend", "p", endpointSelector={}, ingress=[{**rule, "authentication": {"mode": "disabled"}}])], FRONTEND, BACKEND, 80).exact


# -- the local node (allow-localhost) ---------------------------------------------------------------------

HOST = entity("host")
LOCKED = cnp("backend", "deny-all", endpointSelector={}, ingress=[{}], egress=[{}])


def test_the_local_node_reaches_a_pod_in_ingress_default_deny_as_cilium_always_allows_it():
    v = decide([LOCKED], HOST, BACKEND, 80)
    assert v.allowed and v.exact and "allow-localhost" in v.reason


def test_a_deny_rule_that_selects_the_host_still_wins_over_allow_localhost():
    deny = cnp("backend", "no-node", endpointSelector={}, ingressDeny=[{"fromEntities": ["host"], "toPorts": [{"ports": [{"port": "80"}]}]}])
    assert not decide([LOCKED, deny], HOST, BACKEND, 80).allowed
    assert decide([LOCKED, deny], HOST, BACKEND, 81).allowed


def test_other_nodes_are_remote_node_and_get_no_such_allow():
    assert not decide([LOCKED], entity("remote-node"), BACKEND, 80).allowed


def test_a_pods_egress_to_its_node_is_not_implied():
    assert not decide([LOCKED], BACKEND, HOST, 10250).allowed


# -- toFQDNs: the names an address was looked up under ------------------------------------------------------

STRIPE_RULE = {"toFQDNs": [{"matchName": "api.stripe.com"}], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}


def outside(names=None, other=()):
    return addresses("out", ("54.1.1.1/32",), names=names, other_names=other)


@pytest.mark.parametrize(
    "names, other, allowed, exact",
    [
        (("api.stripe.com",), (), True, True),  # the source looked it up under the allowed name
        (("evil.example",), (), False, True),  # under another name only
        (None, (), False, False),  # no name recorded: not decided offline
        (None, ("api.stripe.com",), True, False),  # another pod's lookup, while its answer is cached
    ],
    ids=["own lookup", "other name", "no name", "another pod's lookup"],
)
def test_a_tofqdns_rule_selects_an_address_by_the_names_it_was_looked_up_under(names, other, allowed, exact):
    v = decide([cnp("frontend", "p", endpointSelector={}, egress=[STRIPE_RULE])], FRONTEND, outside(names, other), 443)
    assert (v.allowed, v.exact) == (allowed, exact)


def test_a_tofqdns_rule_never_selects_a_pod_or_a_reserved_identity():
    policies = [cnp("frontend", "p", endpointSelector={}, egress=[{"toFQDNs": [{"matchPattern": "*"}]}])]
    for peer in (BACKEND, entity("kube-apiserver"), entity("remote-node")):
        v = decide(policies, FRONTEND, peer, 443)
        assert not v.allowed and v.exact


@pytest.mark.parametrize(
    "pattern, name, before_1_19, from_1_19",
    [
        ("*.example.com", "api.example.com", True, True),
        ("*.example.com", "example.com", False, False),
        ("*.example.com", "a.b.example.com", False, False),
        ("**.example.com", "a.b.example.com", False, True),
        ("**.example.com", "example.com", False, False),
        ("api*.example.com", "api-eu.example.com", True, True),
        ("*", "anything.at.all", True, True),
        ("**", "anything.at.all", False, True),
        ("API.Example.COM", "api.example.com.", True, True),
        ("*.example.com", "x_y.example.com", True, True),
    ],
)
def test_match_patterns_select_names_as_each_cilium_version_matches_them(pattern, name, before_1_19, from_1_19):
    from policies.verdict import fqdn

    assert fqdn.selects({"matchPattern": pattern}, name, features((1, 18))) is before_1_19
    assert fqdn.selects({"matchPattern": pattern}, name, features((1, 19))) is from_1_19


def test_a_match_pattern_with_characters_cilium_refuses_rejects_the_policy():
    engine = Engine([cnp("frontend", "p", endpointSelector={}, egress=[{"toFQDNs": [{"matchPattern": "api.example.com/*"}]}])])
    assert [ref for ref, _ in engine.rejected] == ["frontend/p"]


# -- the L7 rules a request must pass ------------------------------------------------------------------------

PORT80 = {"ports": [{"port": "80", "protocol": "TCP"}]}


def test_an_allow_without_l7_rules_for_the_same_peer_lets_every_request_through():
    http = cnp("backend", "http", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [PORT80 | {"rules": {"http": [{"method": "GET"}]}}]}])
    l4 = cnp("backend", "l4", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [PORT80]}])
    assert decide([http, l4], FRONTEND, BACKEND, 80).ingress.http is None
    assert decide([http], FRONTEND, BACKEND, 80).ingress.http == ({"method": "GET"},)


def test_the_http_rules_of_every_allow_that_matches_the_peer_add_up():
    a = cnp("backend", "a", endpointSelector={}, ingress=[{"fromEndpoints": [FRONTEND_PEER], "toPorts": [PORT80 | {"rules": {"http": [{"method": "GET"}]}}]}])
    b = cnp("backend", "b", endpointSelector={}, ingress=[{"toPorts": [PORT80 | {"rules": {"http": [{"path": "/health"}]}}]}])
    assert sorted(map(str, decide([a, b], FRONTEND, BACKEND, 80).ingress.http)) == ["{'method': 'GET'}", "{'path': '/health'}"]


def test_kafka_rules_are_named_as_l7_a_record_does_not_decide():
    p = cnp("backend", "k", endpointSelector={}, ingress=[{"toPorts": [PORT80 | {"rules": {"kafka": [{"topic": "orders"}]}}]}])
    v = decide([p], FRONTEND, BACKEND, 80)
    assert v.allowed and not v.exact and v.ingress.other_l7 == "rules.kafka"


@pytest.mark.parametrize(
    "rule, method, url, admitted",
    [
        ({"method": "GET", "path": "/api/.*"}, "GET", "http://api:8080/api/items?page=2", True),
        ({"method": "GET", "path": "/api/items"}, "GET", "http://api:8080/api/items?page=2", False),  # the query is part of :path
        ({"method": "GET|HEAD"}, "HEAD", "http://api/x", True),
        ({"method": "GET"}, "GETX", "http://api/x", False),  # a whole-value match
        ({"path": "/"}, "GET", "http://api", True),
        ({"host": "api\\.shop\\.svc.*"}, "GET", "http://api.shop.svc:8080/", True),
        ({"headers": ["X-Team: blue"]}, "GET", "http://api/", None),  # the record lists no such header
        ({"headerMatches": [{"name": "X-Token", "secret": {"name": "s"}}]}, "GET", "http://api/", None),
        ({"host": "api"}, "GET", "/relative", None),  # a record without the authority cannot tell the host
    ],
)
def test_an_http_rule_admits_requests_as_envoy_matches_them(rule, method, url, admitted):
    from policies.verdict.http import Request, rule_admits

    assert rule_admits(rule, Request(method, url, headers=())) is admitted


def test_a_header_rule_is_decided_from_the_headers_a_record_carries():
    from policies.verdict.http import Request, rule_admits

    assert rule_admits({"headers": ["X-Team: blue"]}, Request("GET", "http://a/", (("x-team", "blue"),))) is True
    assert rule_admits({"headers": ["X-Team: blue"]}, Request("GET", "http://a/", (("X-Team", "red"),))) is False
    assert rule_admits({"headers": ["X-Team"]}, Request("GET", "http://a/", (("X-Team", "red"),))) is True


def test_dns_rules_of_the_allows_to_kube_dns_add_up_and_an_allow_without_them_admits_every_name():
    kube_dns = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}
    dns = Endpoint("kube-system", {"k8s-app": "kube-dns"})
    port53 = {"ports": [{"port": "53", "protocol": "UDP"}]}
    a = cnp("frontend", "a", endpointSelector={}, egress=[{"toEndpoints": [kube_dns], "toPorts": [port53 | {"rules": {"dns": [{"matchPattern": "*.cluster.local"}]}}]}])
    b = cnp("frontend", "b", endpointSelector={}, egress=[{"toEndpoints": [kube_dns], "toPorts": [port53 | {"rules": {"dns": [{"matchName": "api.stripe.com"}]}}]}])
    c = cnp("frontend", "c", endpointSelector={}, egress=[{"toEndpoints": [kube_dns], "toPorts": [port53]}])
    v = decide([a, b], FRONTEND, dns, 53, "UDP")
    assert v.allowed and v.exact and len(v.egress.dns) == 2
    assert decide([a, b, c], FRONTEND, dns, 53, "UDP").egress.dns is None


# -- the engine's selector index agrees with the one definition of a selector -------------------------

_KEYS = st.sampled_from(["app", "tier", "world", "host"])
_VALUES = st.sampled_from(["", "a", "b"])
_SOURCED = st.tuples(st.sampled_from(["", "k8s:", "any:", "reserved:", "container:"]), _KEYS).map("".join)
_ENDPOINTS = st.lists(
    st.one_of(
        st.builds(lambda ns, labels: Endpoint(ns, labels), st.sampled_from(["x", "y"]), st.dictionaries(_KEYS, _VALUES, max_size=3)),
        st.sampled_from(["world", "host", "kube-apiserver", "remote-node"]).map(entity),
    ),
    min_size=1, max_size=8,
)
_SELECTORS = st.fixed_dictionaries({}, optional={
    "matchLabels": st.dictionaries(_SOURCED, _VALUES, max_size=2),
    "matchExpressions": st.lists(st.one_of(
        st.fixed_dictionaries({"key": _SOURCED, "operator": st.sampled_from(["In", "NotIn"]), "values": st.lists(_VALUES, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"key": _SOURCED, "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
    ), max_size=2),
})


@settings(max_examples=300, deadline=None)
@given(_ENDPOINTS, _SELECTORS)
def test_the_engines_selector_index_selects_exactly_the_identities_the_selector_matches(endpoints, raw):
    engine = Engine([], endpoints=endpoints)
    selector = parse_selector(raw, "test")
    by_definition = {engine.intern(ep) for ep in endpoints if selector.matches(ep.identity())}
    assert engine._select(selector) == by_definition


def test_an_unsourced_key_matches_a_reserved_identitys_name_as_cilium_matches_any_source():
    engine = Engine([], endpoints=[entity("world"), Endpoint("x", {"app": "a"})])
    world = parse_selector({"matchLabels": {"world": ""}}, "test")
    k8s_world = parse_selector({"matchLabels": {"k8s:world": ""}}, "test")
    assert (engine._select(world), engine._select(k8s_world)) == ({0}, frozenset())
    assert world.matches(entity("world").identity()) and not k8s_world.matches(entity("world").identity())


def test_one_rule_admitting_a_request_admits_it_and_one_undecided_leaves_a_refusal_undecided():
    from policies.verdict.http import Request, admits, rejected

    get, post = Request("GET", "http://api/x", headers=()), Request("POST", "http://api/x", headers=())
    undecided = {"headers": ["X-Team: blue"]}
    assert admits([{"method": "POST"}, {"method": "GET"}], get) is True
    assert admits([{"method": "POST"}, undecided], get) is None
    assert admits([{"method": "POST"}], get) is False
    assert rejected([{"method": "POST"}], [get, post]) == ([get], [])
    assert rejected([undecided], [get, post]) == ([], [get, post])


@pytest.mark.parametrize("raw, why", [
    ({"matchName": "a.example"}, "frontend/p egress[0].toFQDNs: must be a list"),
    ([{"matchName": ""}], "frontend/p egress[0].toFQDNs[0]: needs matchName or matchPattern"),
    (["a.example"], "frontend/p egress[0].toFQDNs[0]: needs matchName or matchPattern"),
    ([{"matchPattern": "a b"}], "frontend/p egress[0].toFQDNs[0].matchPattern: 'a b' has characters a matchPattern does not allow"),
])
def test_a_to_fqdns_list_cilium_refuses_rejects_the_policy_saying_where_and_why(raw, why):
    engine = Engine([cnp("frontend", "p", endpointSelector={}, egress=[{"toFQDNs": raw}])])
    ((ref, message),) = engine.rejected
    assert ref == "frontend/p" and message.startswith(why)


def test_a_cidr_with_host_bits_set_selects_its_whole_network_as_cilium_parses_it():
    p = cnp("frontend", "p", endpointSelector={}, egress=[{"toCIDRSet": [{"cidr": "10.50.3.7/24", "except": ["10.50.3.128/25"]}]}])
    low, high = addresses("low", ("10.50.3.0/25",)), addresses("high", ("10.50.3.128/25",))
    assert decide([p], FRONTEND, low, 443).allowed and not decide([p], FRONTEND, high, 443).allowed


# -- fromRequires / toRequires: a conjunction over every allow of the subject ---------------------------------

# Cilium's documentation example (Documentation/security/policy/language.rst, "Requires"): endpoints with
# env=prod may only be reached from endpoints that also have env=prod, whatever other rules allow.
REQUIRES_PROD = cnp("shop", "requires-rule", endpointSelector={"matchLabels": {"env": "prod"}},
                    ingress=[{"fromRequires": [{"matchLabels": {"env": "prod"}}]}])
ALLOW_FRONTEND = cnp("shop", "allow-frontend", endpointSelector={"matchLabels": {"env": "prod"}},
                     ingress=[{"fromEndpoints": [{"matchLabels": {"role": "frontend"}}], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
SHOP_API = Endpoint("shop", {"env": "prod", "role": "api"}, name="api")


def test_from_requires_denies_what_another_rule_allows_to_a_source_without_the_required_labels():
    prod_frontend, dev_frontend = Endpoint("shop", {"env": "prod", "role": "frontend"}), Endpoint("shop", {"env": "dev", "role": "frontend"})
    assert decide([REQUIRES_PROD, ALLOW_FRONTEND], prod_frontend, SHOP_API, 80).allowed
    v = decide([REQUIRES_PROD, ALLOW_FRONTEND], dev_frontend, SHOP_API, 80)
    assert not v.allowed and v.exact and "no rule allows" in v.ingress.reason
    assert decide([ALLOW_FRONTEND], dev_frontend, SHOP_API, 80).allowed  # without the requires rule it passes


def test_requires_are_scoped_to_the_policys_namespace_like_the_endpoint_selectors_they_join():
    other_ns = Endpoint("batch", {"env": "prod", "role": "frontend"})
    cross = cnp("shop", "allow-batch", endpointSelector={"matchLabels": {"env": "prod"}}, ingress=[
        {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "batch", "role": "frontend"}}]}])
    assert decide([cross], other_ns, SHOP_API, 80).allowed
    assert not decide([cross, REQUIRES_PROD], other_ns, SHOP_API, 80).allowed  # the requirement carries namespace shop


def test_requires_leave_entity_cidr_and_port_only_rules_alone_as_cilium_appends_them_to_endpoint_selectors_only():
    world_and_port = cnp("shop", "open", endpointSelector={"matchLabels": {"env": "prod"}}, ingress=[
        {"fromEntities": ["world"]}, {"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}])
    dev = Endpoint("shop", {"env": "dev"})
    assert decide([REQUIRES_PROD, world_and_port], entity("world"), SHOP_API, 443).allowed
    assert decide([REQUIRES_PROD, world_and_port], dev, SHOP_API, 8080).allowed


def test_requires_leave_a_cluster_entity_rule_alone_though_it_selects_pods():
    cluster = cnp("shop", "cluster", endpointSelector={"matchLabels": {"env": "prod"}}, ingress=[{"fromEntities": ["cluster"]}])
    dev = Endpoint("shop", {"env": "dev"})
    assert decide([REQUIRES_PROD, cluster], dev, SHOP_API, 443).allowed


def test_requires_narrow_an_allow_never_widen_it_to_peers_the_rule_does_not_select():
    prod_worker = Endpoint("shop", {"env": "prod", "role": "worker"})  # meets the requirement, not the rule
    assert not decide([REQUIRES_PROD, ALLOW_FRONTEND], prod_worker, SHOP_API, 80).allowed


def test_a_rule_the_engine_cannot_decide_offline_leaves_the_rules_after_it_decided():
    p = cnp("frontend", "p", endpointSelector={}, egress=[
        {"toServices": [{"k8sService": {"serviceName": "db", "namespace": "data"}}]},
        {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "backend", "app": "backend"}}]}])
    v = decide([p], FRONTEND, BACKEND, 80)
    assert v.egress.allowed and "allowed by frontend/p egress[1]" in v.egress.reason


def test_to_requires_narrow_the_egress_allows_of_the_source():
    requires = cnp("shop", "egress-requires", endpointSelector={"matchLabels": {"role": "api"}}, egress=[
        {"toRequires": [{"matchLabels": {"env": "prod"}}]}, {"toEndpoints": [{"matchLabels": {"role": "db"}}]}])
    assert decide([requires], SHOP_API, Endpoint("shop", {"role": "db", "env": "prod"}), 5432).allowed
    assert not decide([requires], SHOP_API, Endpoint("shop", {"role": "db", "env": "dev"}), 5432).allowed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["prod", "dev", None]), st.sampled_from(["frontend", "backend", None])), min_size=1, max_size=6))
def test_a_connection_a_requires_rule_excludes_is_never_reported_allowed(sources):
    policies = [REQUIRES_PROD, ALLOW_FRONTEND, cnp("shop", "all-in-ns", endpointSelector={}, ingress=[{"fromEndpoints": [{}]}])]
    endpoints = [Endpoint("shop", {k: v for k, v in (("env", env), ("role", role)) if v}) for env, role in sources]
    engine = Engine(policies, endpoints=[SHOP_API, *endpoints])
    for ep in endpoints:
        v = engine.decide(ep, SHOP_API, 80)
        assert not (v.allowed and ep.labels.get("env") != "prod"), v.reason


def test_why_a_direction_is_not_enforced_reads_plainly_with_and_without_hints():
    from policies.verdict.explain import not_enforced

    assert not_enforced("ingress", (), ()) == "no selecting rule has a non-empty ingress section"
    rejected = (("shop/b", "shop/b egress[0]: '10.50.0.0/33' is not a CIDR"),)  # as the compiler words it
    assert not_enforced("egress", ("shop/a",), rejected) == (
        "no selecting rule has a non-empty egress section (shop/a has `egress: []`, which enforces nothing; "
        "shop/b was rejected by Cilium: egress[0]: '10.50.0.0/33' is not a CIDR)")


def test_a_namespaces_stranger_carries_the_namespaces_labels_so_namespace_selectors_select_it():
    from policies.verdict.identity import stranger

    allow = cnp("backend", "p", endpointSelector={}, ingress=[
        {"fromEndpoints": [{"matchLabels": {"k8s:io.cilium.k8s.namespace.labels.team": "shop"}}]}])
    shop, other = stranger("frontend", {"team": "shop"}), stranger("frontend", {"team": "ops"})
    assert (shop.name, shop.labels) == ("stranger", {})
    assert decide([allow], shop, BACKEND, 80).allowed and not decide([allow], other, BACKEND, 80).allowed


# -- each side's verdict, field by field ----------------------------------------------------------------------


def test_a_side_denied_by_a_deny_rule_names_that_policy_alone():
    deny = cnp("backend", "freeze", endpointSelector={}, ingressDeny=[{"fromEndpoints": [FRONTEND_PEER]}])
    side = decide([deny, DENY_ALL_BACKEND], FRONTEND, BACKEND, 80).ingress
    assert (side.allowed, side.policies, side.exact) == (False, ("backend/freeze",), True)
    assert side.reason == "of backend/backend denied by backend/freeze ingressDeny[0]"


def test_a_default_allow_side_names_its_enforcing_policies_and_is_exact():
    audit = cnp("backend", "audit", endpointSelector={}, ingress=[{"fromEndpoints": [{"matchLabels": {"app": "other"}}]}],
                enableDefaultDeny={"ingress": False})
    side = decide([audit], FRONTEND, BACKEND, 80).ingress
    assert (side.allowed, side.policies, side.exact) == (True, ("backend/audit",), True)
    assert side.reason == "of backend/backend default-allow: every enforcing rule sets enableDefaultDeny.ingress: false"


def test_a_side_in_default_deny_names_its_enforcing_policies():
    side = decide([DENY_ALL_BACKEND], FRONTEND, BACKEND, 80).ingress
    assert (side.allowed, side.policies, side.exact) == (False, ("backend/deny",), True)
    assert side.reason == "of backend/backend is in default deny (by backend/deny) and no rule allows frontend/frontend on 80/TCP"


def test_an_exact_verdict_says_nothing_of_being_undecided():
    v = decide([DENY_ALL_BACKEND], FRONTEND, BACKEND, 80)
    assert v.exact and not v.reason.endswith("(not fully decided offline)")


def test_a_to_services_rule_is_not_decided_offline_and_says_so():
    p = cnp("frontend", "p", endpointSelector={}, egress=[{"toServices": [{"k8sService": {"serviceName": "db", "namespace": "data"}}]}])
    v = decide([p], FRONTEND, BACKEND, 80)
    assert not v.allowed and not v.exact and "frontend/p egress[0] has service peers" in v.reason


def test_a_rule_with_icmp_fields_and_ports_allows_its_ports_too():
    p = cnp("frontend", "p", endpointSelector={}, egress=[
        {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "backend", "app": "backend"}}],
         "icmps": [{"fields": [{"type": 8}]}], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
    assert decide([p], FRONTEND, BACKEND, 80).allowed


def test_a_peer_rule_that_is_not_a_mapping_rejects_the_policy_naming_where():
    engine = Engine([cnp("frontend", "p", endpointSelector={}, egress=["x"])])
    assert [reason for _, reason in engine.rejected] == ["frontend/p egress[0]: must be a mapping"]
