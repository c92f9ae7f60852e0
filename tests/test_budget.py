"""The datapath budget: policy-map entries per endpoint as Cilium keys them, estimated and guarded.

Each test names one rule of the keying (policies/analysis/budget.py): what makes a key, what merges, what
expands. Numbers are counted from the keys the test's policy makes, in the test's own words."""

from __future__ import annotations

import json

from policies import guardrails as g
from policies.analysis.budget import ADDRESSES_PER_NAME, address_identities, default_other_identities, estimate
from policies.cilium_versions import POLICY_MAP_ENTRIES
from policies.verdict import ENTITIES, Engine
from policies.verdict.compile import ALL_PROTOCOLS
from zerotrust.__main__ import main

HOST_ENTRY = 1
"""Cilium's own ingress entry for the local host (allow-localhost) on an endpoint with ingress enforced."""
CLUSTER_RESERVED = len(set(ENTITIES) - {"world"})
"""The reserved identities the cluster entity selects besides pods: host, remote-node, kube-apiserver, health, init, ingress, unmanaged."""


def deployment(name: str, namespace: str = "shop") -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name, "image": "x"}]}}}}


def cnp(spec: dict, name: str = "p", namespace: str = "shop") -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ports(*numbers: int, protocol: str = "TCP") -> list[dict]:
    return [{"ports": [{"port": str(n), "protocol": protocol} for n in numbers]}]


def cluster_wide_ingress(target: str, count: int, namespace: str = "shop") -> dict:
    rule = {"fromEntities": ["cluster"], "toPorts": ports(*range(8000, 8000 + count))}
    return cnp({"endpointSelector": {"matchLabels": {"app": target}}, "ingress": [rule]}, "open", namespace)


def a_entries(*policies: dict, pods: int = 2, others: int = 0) -> int:
    """The entries of shop/a among pods a, b, c... of namespace shop (``others`` unknown identities)."""
    objects = [deployment(chr(ord("a") + i)) for i in range(pods)] + list(policies)
    return next(w.entries for w in estimate(objects, other_identities=others).workloads if w.workload == "shop/a")


A = {"matchLabels": {"app": "a"}}
FROM_B = {"fromEndpoints": [{"matchLabels": {"app": "b"}}]}


def resources(objects: list[dict]) -> list[g.Resource]:
    return [g.Resource(f"kubernetes:{o['apiVersion']}:{o['kind']}", o["metadata"]["name"], o) for o in objects]


def only(rule: str) -> dict[str, str]:
    return {r.name: "disabled" for r in g.RULES} | {rule: g.BY_NAME[rule].level}


# -- keys --------------------------------------------------------------------------------------------------------------


def test_one_identity_on_one_port_is_one_entry_beside_the_hosts_own():
    assert a_entries(cnp({"endpointSelector": A, "ingress": [{**FROM_B, "toPorts": ports(80)}]})) == 1 + HOST_ENTRY


def test_the_same_rule_twice_or_in_two_policies_is_the_same_entries():
    rule = {**FROM_B, "toPorts": ports(80, 81)}
    once = a_entries(cnp({"endpointSelector": A, "ingress": [rule]}))
    assert a_entries(cnp({"endpointSelector": A, "ingress": [rule, rule]}), cnp({"endpointSelector": A, "ingress": [rule]}, "q")) == once == 2 + HOST_ENTRY


def test_protocol_any_is_an_entry_for_tcp_udp_and_sctp():
    assert a_entries(cnp({"endpointSelector": A, "ingress": [{**FROM_B, "toPorts": ports(53, protocol="ANY")}]})) == len(ALL_PROTOCOLS) + HOST_ENTRY


def test_a_port_range_is_an_entry_per_aligned_block_and_protocol():
    rule = {**FROM_B, "toPorts": [{"ports": [{"port": "8000", "endPort": 8010, "protocol": "TCP"}]}]}
    assert a_entries(cnp({"endpointSelector": A, "ingress": [rule]})) == 3 + HOST_ENTRY  # 8000-8007, 8008-8009, 8010


def test_each_icmp_type_is_an_entry():
    rule = {**FROM_B, "icmps": [{"fields": [{"type": "8"}, {"type": "EchoRequest", "family": "IPv6"}]}]}
    assert a_entries(cnp({"endpointSelector": A, "ingress": [rule]})) == 2 + HOST_ENTRY


def test_deny_sections_make_entries_too():
    spec = {"endpointSelector": A, "ingress": [{**FROM_B, "toPorts": ports(80)}], "ingressDeny": [{**FROM_B, "toPorts": ports(22)}]}
    assert a_entries(cnp(spec)) == 2 + HOST_ENTRY


def test_egress_and_ingress_entries_are_apart():
    spec = {"endpointSelector": A, "ingress": [{**FROM_B, "toPorts": ports(80)}],
            "egress": [{"toEndpoints": [{"matchLabels": {"app": "b"}}], "toPorts": ports(80)}]}
    assert a_entries(cnp(spec)) == 2 + HOST_ENTRY


def test_a_rule_without_a_peer_is_one_wildcard_identity_per_port():
    assert a_entries(cnp({"endpointSelector": A, "ingress": [{"toPorts": ports(80, 443)}]}), pods=50) == 2 + HOST_ENTRY


def test_the_cluster_entity_counts_every_pod_every_reserved_identity_inside_and_the_others():
    # 3 pods, the stranger of shop, kube-dns, the reserved identities inside the cluster, 5 others; on one port
    assert a_entries(cnp({"endpointSelector": A, "ingress": [{"fromEntities": ["cluster"], "toPorts": ports(80)}]}), pods=3, others=5) \
        == (3 + 1 + 1 + CLUSTER_RESERVED + 5) + HOST_ENTRY


def test_a_network_policy_admitting_every_namespace_counts_the_others_on_each_port():
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "shop"},
          "spec": {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8000 + i, "protocol": "TCP"} for i in range(40)]}]}}
    # pods a and b, the stranger, kube-dns and 10 others, on 40 ports
    assert a_entries(np, others=10) == (2 + 1 + 1 + 10) * 40 + HOST_ENTRY


def test_a_peer_in_a_namespace_the_stack_does_not_manage_counts_one_identity_more_than_known():
    rule = {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring", "app": "prometheus"}}], "toPorts": ports(9090)}
    again = {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring", "app": "grafana"}}], "toPorts": ports(9090)}
    assert a_entries(cnp({"endpointSelector": A, "ingress": [rule]}), others=10) == 1 + HOST_ENTRY
    assert a_entries(cnp({"endpointSelector": A, "ingress": [rule, again]}), others=10) == 1 + HOST_ENTRY  # the same unknown one


def test_a_cidr_rule_counts_its_own_identity_and_the_world_entity_every_address_identity():
    spec = {"endpointSelector": A, "egress": [{"toCIDR": ["20.0.0.0/16", "30.0.0.0/8"], "toPorts": ports(443)},
                                              {"toFQDNs": [{"matchName": "api.example.com"}], "toPorts": ports(443)}]}
    cidr_and_names = 2 + ADDRESSES_PER_NAME
    assert a_entries(cnp(spec)) == cidr_and_names  # egress only: no host entry
    spec["egress"].append({"toEntities": ["world"], "toPorts": ports(80)})
    assert a_entries(cnp(spec)) == cidr_and_names + (1 + cidr_and_names)  # on 80: world itself and every address identity


def test_the_default_estimate_of_other_identities_grows_with_the_managed_namespaces():
    assert default_other_identities(3) - default_other_identities(2) == 1
    objects = [deployment("a"), deployment("b", "other"), cluster_wide_ingress("a", 1)]
    assert estimate(objects).other_identities == default_other_identities(2)


def test_the_stacks_estimate_reaches_the_guardrail_through_its_namespaces():
    objects = [deployment(f"w{i}") for i in range(10)] + [cluster_wide_ingress("w0", 100)]
    assert g.evaluate(resources(objects), only("policy-map-budget")).violations == ()
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "annotations": {"zero-trust-aks/other-identities": "150"}}}
    (v,) = g.evaluate(resources(objects + [ns]), only("policy-map-budget")).violations
    assert v.resource == "Deployment shop/w0"


# -- the guardrail ------------------------------------------------------------------------------------------------------


def test_a_workload_admitting_the_cluster_on_50_ports_in_a_400_workload_stack_fails_the_budget():
    objects = [deployment(f"w{i}") for i in range(400)] + [cluster_wide_ingress("w0", 50)]
    b = estimate(objects)
    assert b.workloads[0].workload == "shop/w0" and b.workloads[0].share >= 0.8 and b.identities == 400
    (v,) = g.evaluate(resources(objects), only("policy-map-budget")).violations
    assert v.level == "mandatory" and v.resource == "Deployment shop/w0"
    assert f"of the {POLICY_MAP_ENTRIES} each endpoint has on AKS" in v.message


def test_half_the_budget_is_a_warning_not_a_failure():
    objects = [deployment(f"w{i}") for i in range(200)] + [cluster_wide_ingress("w0", 50)]
    assert 0.5 <= estimate(objects).workloads[0].share < 0.8
    assert g.evaluate(resources(objects), only("policy-map-budget")).violations == ()
    (v,) = g.evaluate(resources(objects), only("policy-map-budget-warning")).violations
    assert v.level == "advisory" and v.resource == "Deployment shop/w0"


def test_the_plan_reports_the_largest_policy_maps_and_the_estimate_it_counted_with(capsys):
    assert main(["plan", "--stack", "dev", "--format", "json"]) == 0
    b = json.loads(capsys.readouterr().out)["budget"]
    assert b["limit"] == POLICY_MAP_ENTRIES and b["identities"] == 2 and b["otherIdentities"] == default_other_identities(2)
    # frontend: egress to backend on 80, to kube-dns and to one identity of kube-system the stack does not know
    # on 53/UDP and 53/TCP; ingress enforced: the host's entry
    assert {"workload": "frontend/frontend", "entries": 1 + 2 * 2 + HOST_ENTRY, "share": round(6 / POLICY_MAP_ENTRIES, 4)} in b["top"]


def test_every_name_of_a_to_fqdns_rule_allocates_its_own_address_identities():
    engine = Engine([cnp({"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "a.example"}, {"matchPattern": "*.b.example"}]}]})])
    ids = address_identities(engine)
    assert sorted({i[1] for i in ids}) == ["*.b.example", "a.example"] and len(ids) == 2 * ADDRESSES_PER_NAME


def test_the_budget_lists_its_five_largest_workloads_first():
    objects = [deployment(f"w{i}") for i in range(7)]
    objects += [cnp({"endpointSelector": {"matchLabels": {"app": f"w{i}"}}, "ingress": [{"fromEntities": ["cluster"], "toPorts": ports(*range(8000, 8000 + i + 1))}]}, f"p{i}")
                for i in range(7)]
    top = estimate(objects).top()
    assert [w.workload for w in top] == ["shop/w6", "shop/w5", "shop/w4", "shop/w3", "shop/w2"]


def test_a_workload_that_names_no_namespace_is_budgeted_in_default_where_kubectl_puts_it():
    nameless = deployment("a", "x")
    del nameless["metadata"]["namespace"]
    policy = cnp({"endpointSelector": A, "ingress": [{**FROM_B, "toPorts": ports(80)}]}, namespace="default")
    (w,) = [w for w in estimate([nameless, deployment("b", "default"), policy]).workloads if w.workload.endswith("/a")]
    assert (w.workload, w.entries) == ("default/a", 1 + HOST_ENTRY)


# -- keys, exactly ---------------------------------------------------------------------------------------------------


def test_a_ports_keys_are_one_per_protocol_and_aligned_block_a_single_or_named_port_one_each():
    from policies.analysis.budget import port_keys
    from policies.verdict.compile import PortEntry

    tcp = frozenset({"TCP"})
    assert port_keys(PortEntry(8001, 8010, tcp)) == {
        ("TCP", "8001/1"), ("TCP", "8002/2"), ("TCP", "8004/4"), ("TCP", "8008/2"), ("TCP", "8010/1")}
    assert port_keys(PortEntry(1, 4, tcp)) == {("TCP", "1/1"), ("TCP", "2/2"), ("TCP", "4/1")}
    assert port_keys(PortEntry(65534, 65535, tcp)) == {("TCP", "65534/2")}
    assert port_keys(PortEntry(80, 80, tcp)) == {("TCP", "80")}
    assert port_keys(PortEntry(0, 0, frozenset({"UDP"}))) == {("UDP", "0")}
    assert port_keys(PortEntry(0, 100, tcp)) == {("TCP", "0")}  # port 0 is every port, whatever endPort says
    assert port_keys(PortEntry(0, 0, tcp, named="http")) == {("TCP", "http")}
    assert port_keys(PortEntry(53, 53, frozenset(ALL_PROTOCOLS))) == {(p, "53") for p in ALL_PROTOCOLS}


def test_icmp_rules_make_icmp_keys_per_family_and_no_wildcard_port():
    from policies.analysis.budget import rule_port_keys
    from policies.verdict.compile import PeerRule

    rule = PeerRule("shop/p", "ingress[0]", False, (), None, None, icmps=(("IPv4", "8"), ("IPv6", "EchoRequest")))
    assert rule_port_keys(rule) == {("ICMP", "8"), ("ICMPv6", "EchoRequest")}
    assert rule_port_keys(PeerRule("shop/p", "ingress[0]", False, (), None, None)) == {("ANY", "0")}


def test_each_unmanaged_namespace_a_rule_names_is_one_identity_there():
    ext = [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": ns}} for ns in ("ext1", "ext2")]
    assert a_entries(cnp({"endpointSelector": A, "ingress": [{"fromEndpoints": ext, "toPorts": ports(80)}]})) == 2 + HOST_ENTRY


def test_a_rule_reaching_beyond_the_named_namespaces_counts_the_others_and_still_each_named_one():
    anywhere = {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}]}
    ext1 = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ext1"}}
    rule = {"fromEndpoints": [anywhere, ext1], "toPorts": ports(80)}
    # the identities the engine knows (pods a and b, shop's unlabelled stranger, kube-dns), the 3 the stack
    # does not know, and one in ext1
    assert a_entries(cnp({"endpointSelector": A, "ingress": [rule]}), others=3) == 4 + 3 + 1 + HOST_ENTRY


def test_a_rule_without_the_world_entity_counts_no_address_identity():
    spec = {"endpointSelector": A, "ingress": [{**FROM_B, "toPorts": ports(80)}],
            "egress": [{"toCIDR": ["10.0.0.0/8"], "toPorts": ports(443)}]}
    assert a_entries(cnp(spec)) == 2 + HOST_ENTRY


def test_a_world_rule_counts_the_world_and_every_address_identity_any_rule_allocates():
    spec = {"endpointSelector": A, "egress": [{"toCIDR": ["10.0.0.0/8"], "toPorts": ports(80)},
                                              {"toEntities": ["world"], "toPorts": ports(443)}]}
    # 80: the CIDR identity; 443: world itself and the CIDR identity, which carries reserved:world too
    assert a_entries(cnp(spec)) == 1 + 2  # egress only: no host entry


def test_an_icmp_only_rule_without_a_peer_is_each_type_for_any_peer():
    rule = {"icmps": [{"fields": [{"type": "8"}, {"type": "0"}]}]}
    assert a_entries(cnp({"endpointSelector": A, "ingress": [rule]})) == 2 + HOST_ENTRY
