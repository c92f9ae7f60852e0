"""Naming an observed end: which workload, peer or identity it is, and the endpoint the engine judges it as.

These call the namer directly, on the stacks' own configs, so each field of what it returns is checked,
not only the verdict a replay reaches with it.
"""

from __future__ import annotations

from policies.analysis import matrix as mx
from policies.config import load_config
from policies.observed.ends import namer
from policies.observed.records import End, Observations
from policies.render import render
from policies.verdict.identity import CLUSTER_KEY, ENTITIES, NS_LABELS_PREFIX, SA_KEY
from tests.capture import DEV, SHOP, stack_config

DEV_CONFIG, SHOP_CONFIG = stack_config(DEV), stack_config(SHOP)
SA = ("io.cilium.k8s.policy.serviceaccount", "debugger")
NS_LABEL = ("io.cilium.k8s.namespace.labels.team", "web")


def name_of(config: dict, end: End, source: End | None = None):
    cfg = load_config(config)
    return namer(cfg, mx.workload_pods(cfg, render(cfg).all()), Observations())(end, source)


def test_a_labelless_pod_of_a_managed_namespace_matching_no_workload_is_unknown_and_not_judged():
    n = name_of(DEV_CONFIG, End("frontend", labels_known=False, pod="debug-7c9f8d6b5c-q4z8w"))
    assert (n.name, n.endpoint, n.unknown) == ("frontend/debug-7c9f8d6b5c-q4z8w", None, True)
    assert n.why == "the record lists no labels and its name matches no workload of frontend: no telling which policies select it"


def test_a_labelled_pod_of_a_managed_namespace_matching_no_workload_is_unknown_and_judged_by_its_labels_and_identity():
    n = name_of(DEV_CONFIG, End("frontend", (("app", "debug"),), cilium_labels=(SA, NS_LABEL), workload="debug"))
    assert (n.name, n.unknown, n.why) == ("frontend/debug", True, "")
    e = n.endpoint
    assert (e.namespace, dict(e.labels), e.name, e.service_account, dict(e.namespace_labels)) == (
        "frontend", {"app": "debug"}, "debug", "debugger", {"team": "web"})
    assert e.unknown_labels == {CLUSTER_KEY}


def test_a_labelled_pod_without_a_workload_name_is_judged_under_no_name():
    n = name_of(DEV_CONFIG, End("frontend", (("app", "debug"),)))
    assert n.unknown and n.endpoint.name == "" and n.endpoint.unknown_labels == {CLUSTER_KEY, SA_KEY, NS_LABELS_PREFIX}


def test_a_pod_of_an_unmanaged_namespace_no_peer_selects_is_judged_by_its_labels_and_identity_and_not_unknown():
    n = name_of(SHOP_CONFIG, End("tools", (("app", "curl"),), cilium_labels=(SA,), workload="curl"))
    assert (n.name, n.unknown, n.why) == ("tools/curl", False, "")
    e = n.endpoint
    assert (e.namespace, dict(e.labels), e.name, e.service_account) == ("tools", {"app": "curl"}, "curl", "debugger")
    assert name_of(SHOP_CONFIG, End("tools", (("app", "curl"),))).endpoint.name == ""


def test_a_record_naming_a_workload_of_another_namespace_is_not_that_workload():
    n = name_of(DEV_CONFIG, End("frontend", (("app", "backend"),), workload="backend"))
    assert n.name == "frontend/backend" and n.unknown
    assert dict(n.endpoint.labels) == {"app": "backend"} and n.endpoint.namespace == "frontend"


def test_a_pod_the_record_names_a_workload_of_is_that_workloads_endpoint_even_where_its_labels_lack_the_selector():
    # The owner reference names it; Cilium's label filter can leave a selector's labels out of the identity.
    n = name_of(DEV_CONFIG, End("backend", (("tier", "api"),), workload="backend"))
    assert (n.name, n.unknown) == ("backend", False)
    assert n.endpoint.name == "backend" and n.endpoint.labels["app"] == "backend"


def test_a_node_identity_a_peer_names_is_that_peer_carrying_the_nodes_labels():
    config = {**DEV_CONFIG, "zero-trust-aks:peers": {"nodes": {"entity": "remote-node"}, "z-nodes": {"entity": "remote-node"}}}
    n = name_of(config, End(reserved="remote-node", labels_known=False, node_labels=(("agentpool", "system"),)))
    assert (n.name, n.aliases) == ("nodes", ("nodes", "z-nodes"))
    e = n.endpoint
    assert (e.reserved, e.name, dict(e.node_labels)) == ("remote-node", "nodes", {"agentpool": "system"})


def test_a_node_identity_no_peer_names_is_the_entity_itself_with_or_without_the_nodes_labels():
    n = name_of(DEV_CONFIG, End(reserved="host", labels_known=False, node_labels=(("agentpool", "system"),)))
    assert (n.name, n.aliases, n.endpoint.reserved, dict(n.endpoint.node_labels)) == ("host", (), "host", {"agentpool": "system"})
    assert name_of(DEV_CONFIG, End(reserved="host", labels_known=False)).endpoint.node_labels is None


def test_a_reserved_identity_newer_than_the_table_is_unattributed_not_guessed_to_be_the_world():
    n = name_of(DEV_CONFIG, End(reserved="mesh-gateway", labels_known=False))
    assert (n.name, n.endpoint) == ("reserved:mesh-gateway", None)
    assert n.why == f"reserved:mesh-gateway is none of Cilium's reserved identities this table knows ({', '.join(ENTITIES)})"


def test_an_outside_address_an_address_peer_covers_is_that_peer_keeping_its_names_and_the_world_aliases():
    n = name_of(SHOP_CONFIG, End(reserved="world", labels_known=False, ip="198.51.100.7", names=("pay.example.net",)))
    assert (n.name, n.aliases) == ("card-processor", ("internet",))
    e = n.endpoint
    assert (e.name, e.reserved, e.cidrs, e.names) == ("card-processor", "world", ("198.51.100.7/32",), ("pay.example.net",))


def test_an_outside_address_no_peer_covers_is_named_by_its_address_and_names():
    n = name_of(SHOP_CONFIG, End(reserved="world", labels_known=False, ip="198.51.100.200", names=("a.example", "b.example")))
    label = "world 198.51.100.200 (a.example, b.example)"
    assert (n.name, n.aliases, n.endpoint.name, n.endpoint.cidrs) == (label, ("internet",), label, ("198.51.100.200/32",))


def test_an_address_peer_keeps_the_names_only_other_pods_looked_the_address_up_under():
    cfg = load_config(SHOP_CONFIG)
    obs = Observations()
    web, other = End("shop", (("app", "web"),)), End("shop", (("app", "api"),))
    for src, looked_up in ((web, "pay.example.net"), (other, "cards.example.net")):
        obs.add(src, End(reserved="world", labels_known=False, ip="198.51.100.7", names=(looked_up,)), 443, "TCP", "", None)
    name = namer(cfg, mx.workload_pods(cfg, render(cfg).all()), obs)
    n = name(End(reserved="world", labels_known=False, ip="198.51.100.7", names=("pay.example.net",)), web)
    assert n.name == "card-processor"
    assert (n.endpoint.names, n.endpoint.other_names) == (("pay.example.net",), ("cards.example.net",))


def test_a_pod_whose_labels_are_exactly_a_peers_is_that_peer_carrying_its_identity_labels():
    prometheus = (("app.kubernetes.io/name", "prometheus"),)
    n = name_of(SHOP_CONFIG, End("monitoring", prometheus, cilium_labels=(SA, NS_LABEL), workload="prometheus-k8s"))
    assert (n.name, n.unknown) == ("prometheus", False)
    e = n.endpoint
    assert (dict(e.labels), e.name, e.service_account, dict(e.namespace_labels)) == (
        dict(prometheus), "prometheus", "debugger", {"team": "web"})
