"""Peers: what the stack's flows reach but it does not deploy, modelled exactly, rendered on the workload's side."""

from __future__ import annotations

import copy
import json

import pytest

from policies import guardrails as g
from policies.config import load_config
from policies.analysis.probes import probes
from policies.render import render
from policies.config.stackfile import read_stack
from tests.conftest import errors_of, schema_errors
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

SHOP_FILE = PROJECT_DIR / "examples" / "Pulumi.shop.yaml"


@pytest.fixture
def shop_config():
    return copy.deepcopy(read_stack(PROJECT_DIR, "shop", SHOP_FILE).config)



def policies_named(config) -> dict[tuple[str, str], dict]:
    return {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in render(load_config(config)).policies()}


# -- the example -------------------------------------------------------------------------------------------


def test_the_example_shop_plans_and_its_matrix_allows_exactly_the_declared_flows_peers_included(capsys):
    assert main(["plan", "--stack", "shop", "--stack-file", str(SHOP_FILE), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["findings"] == []
    assert set(doc["allowed"]) == set(doc["declared"])
    for cell in ("internet -> edge:8080/TCP", "ingress-controller -> web:8080/TCP", "prometheus -> api:9090/TCP",
                 "payments -> card-processor:443/TCP", "orders -> api-server:443/TCP", "card-processor -> edge:8080/TCP"):
        assert cell in doc["allowed"], cell
    assert "internet -> web:8080/TCP" not in doc["allowed"] and "prometheus -> api:8080/TCP" not in doc["allowed"]


def test_every_policy_of_the_shop_validates_against_the_cilium_crd(shop_config, cnp_schema):
    for p in render(load_config(shop_config)).policies():
        assert schema_errors(cnp_schema, p) == [], p["metadata"]["name"]


# -- rendering on the workload's side ----------------------------------------------------------------------


def test_each_peer_kind_is_rendered_on_the_workload_side_only(shop_config):
    ps = policies_named(shop_config)
    assert {ns for ns, _ in ps} == {"shop-edge", "shop-web", "shop-core", "shop-data"}  # nothing in ingress-nginx or monitoring
    web_in = ps[("shop-web", "zt-allow.web")]["spec"]["ingress"]
    assert web_in[0]["fromEndpoints"] == [
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ingress-nginx", "app.kubernetes.io/name": "ingress-nginx"}}
    ]
    assert ps[("shop-edge", "zt-allow.edge")]["spec"]["ingress"][0]["fromEntities"] == ["world"]
    payments_out = ps[("shop-core", "zt-allow.payments")]["spec"]["egress"]
    assert [r["toCIDRSet"] for r in payments_out if "toCIDRSet" in r] == [[{"cidr": "198.51.100.0/24", "except": ["198.51.100.128/25"]}]]
    orders_out = ps[("shop-core", "zt-allow.orders")]["spec"]["egress"]
    assert {"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]} in orders_out


def test_an_exposed_workload_gets_a_load_balancer_that_keeps_the_client_as_world(shop_config):
    services = {o["metadata"]["name"]: o["spec"] for o in render(load_config(shop_config)).all() if o["kind"] == "Service"}
    assert services["edge"]["type"] == "LoadBalancer" and services["edge"]["externalTrafficPolicy"] == "Local"
    assert services["web"]["type"] == "ClusterIP" and "externalTrafficPolicy" not in services["web"]


def test_flows_with_a_peer_are_listed_as_not_probed(shop_config):
    cfg = load_config(shop_config)
    ps = probes(cfg, render(cfg))
    assert any(s.startswith("internet -> edge:8080/TCP: flows with a peer are not probed") for s in ps.skipped)
    assert not [p for p in ps.probes if "internet" in p.flow or "prometheus" in p.flow]


# -- config ---------------------------------------------------------------------------------------------------


def test_a_peer_needs_exactly_one_kind(shop_config):
    shop_config["zero-trust-aks:peers"]["prometheus"]["entity"] = "world"
    assert errors_of(shop_config) == [
        "zero-trust-aks:peers.prometheus: give exactly one of namespace (pods the stack does not manage), "
        "cidrs (addresses outside the cluster) or entity"
    ]


def test_a_peer_in_a_managed_namespace_is_refused(shop_config):
    shop_config["zero-trust-aks:peers"]["prometheus"]["namespace"] = "shop-core"
    (line,) = errors_of(shop_config)
    assert line.startswith("zero-trust-aks:peers.prometheus.namespace: 'shop-core' is managed by this stack")


def test_a_name_used_by_a_workload_and_a_peer_is_refused(shop_config):
    shop_config["zero-trust-aks:peers"]["redis"] = {"entity": "host"}
    (line,) = errors_of(shop_config)
    assert line.startswith("zero-trust-aks:peers.redis: 'redis' names a workload too")


def test_a_flow_between_two_peers_is_refused(shop_config):
    shop_config["zero-trust-aks:flows"].append({"from": "prometheus", "to": "card-processor", "port": 443})
    (line,) = errors_of(shop_config)
    assert line.startswith("zero-trust-aks:flows[14]: a flow between two peers")


def test_internet_traffic_may_only_reach_an_exposed_workload(shop_config):
    shop_config["zero-trust-aks:flows"].append({"from": "internet", "to": "api", "port": "http"})
    assert errors_of(shop_config) == [
        "zero-trust-aks:flows[14].from: traffic from the internet reaches a workload only through a LoadBalancer Service; "
        "set zero-trust-aks:workloads.api.expose: loadBalancer"
    ]


def test_a_flow_from_the_api_server_to_a_workload_on_aks_is_refused_with_what_aks_delivers_instead(shop_config):
    shop_config["zero-trust-aks:flows"].append({"from": "api-server", "to": "api", "port": "http"})
    (line,) = errors_of(shop_config)
    assert line.startswith("zero-trust-aks:flows[14].from: on AKS the API server reaches pods")
    assert "{entity: remote-node}" in line


def test_a_flow_from_the_api_server_on_an_existing_cluster_is_accepted(shop_config):
    for key in ("zero-trust-aks:cluster", "azure-native:location", "zero-trust-aks:resourceGroupName"):
        shop_config.pop(key, None)
    shop_config["zero-trust-aks:kubernetes"] = {"context": "kind-shop"}
    shop_config["zero-trust-aks:flows"].append({"from": "api-server", "to": "api", "port": "http"})
    assert ("api-server", "api") in {(f.source, f.to) for f in load_config(shop_config).flows}


def test_a_flow_to_a_peer_names_its_port(shop_config):
    shop_config["zero-trust-aks:flows"].append({"from": "api", "to": "api-server"})
    assert errors_of(shop_config) == ["zero-trust-aks:flows[14].port: required for a flow to a peer (a peer has no ports of its own)"]


def test_an_except_outside_the_peers_ranges_is_refused(shop_config):
    shop_config["zero-trust-aks:peers"]["card-processor"]["except"] = ["192.0.2.0/25"]
    assert errors_of(shop_config) == ["zero-trust-aks:peers.card-processor.except[0]: 192.0.2.0/25 lies in none of the peer's cidrs"]


def test_a_peer_range_inside_the_cluster_is_refused_because_cilium_never_selects_pods_by_address(shop_config):
    shop_config["zero-trust-aks:peers"]["card-processor"] = {"cidrs": ["10.244.0.0/24"]}
    (line,) = errors_of(shop_config)
    assert line.startswith("zero-trust-aks:peers.card-processor.cidrs[0]: 10.244.0.0/24 overlaps podCidr 10.244.0.0/16")


def test_a_broken_peer_is_not_reported_again_as_unknown_by_its_flows(shop_config):
    shop_config["zero-trust-aks:peers"]["prometheus"]["namespace"] = "Monitoring"
    (line,) = errors_of(shop_config)
    assert line.startswith("zero-trust-aks:peers.prometheus.namespace: 'Monitoring' is not a DNS label (1-63 lower-case letters")


# -- guardrails ---------------------------------------------------------------------------------------------


def shop_resources(config) -> list[g.Resource]:
    objects = render(load_config(config)).all()
    return [g.Resource(f"kubernetes:{o['apiVersion']}:{o['kind']}", o["metadata"]["name"], o) for o in objects]


def test_a_declared_world_ingress_to_an_exposed_workload_is_not_a_broad_peer(shop_config):
    only = {r.name: "disabled" for r in g.RULES} | {"no-broad-peers": "mandatory"}
    assert g.evaluate(shop_resources(shop_config), only).violations == ()


def test_the_same_world_ingress_without_the_load_balancer_is_flagged(shop_config):
    rs = shop_resources(shop_config)
    (svc,) = [r for r in rs if r.kind == "Service" and r.object_name == "edge"]
    svc.props["spec"]["externalTrafficPolicy"] = "Cluster"
    found = [v.message for v in g.evaluate(rs, {r.name: "disabled" for r in g.RULES} | {"no-broad-peers": "mandatory"}).violations]
    assert found == [
        "CiliumNetworkPolicy shop-edge/zt-allow.edge spec.ingress[0]: fromEntities: [world] allows the "
        "whole internet; name the peers (a namespace and labels), or add a reviewed exception to guardrails/exceptions.yaml"
    ]


def test_json_gives_each_flow_as_an_object_with_the_kind_of_each_end(capsys):
    assert main(["plan", "--stack", "shop", "--stack-file", str(SHOP_FILE), "--format", "json"]) == 0
    flows = json.loads(capsys.readouterr().out)["flows"]
    assert {"from": "internet", "fromKind": "peer-entity:world", "to": "edge", "toKind": "workload", "port": 8080, "protocol": "TCP"} in flows
    (stripe,) = [f for f in flows if f.get("toFqdns")]
    assert stripe == {"from": "payments", "fromKind": "workload", "to": None, "toKind": "outside-names", "port": 443, "protocol": "TCP", "toFqdns": ["api.stripe.com"]}
    (l7,) = [f for f in flows if f.get("http")]
    assert (l7["from"], l7["to"], l7["port"]) == ("web", "api", 8080) and l7["http"][1] == {"method": "POST", "path": "/api/orders"}


def test_the_mermaid_graph_groups_by_namespace_and_draws_peers_outside_names_and_l7(capsys):
    assert main(["plan", "--stack", "shop", "--stack-file", str(SHOP_FILE), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    graph = out.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert '["shop-core"]' in graph and '["ingress-nginx (not managed)"]' in graph
    assert '"internet: world"' in graph and '"card-processor: 198.51.100.0/24"' in graph
    assert '[/"api.stripe.com"/]' in graph and "|8080/TCP HTTP|" in graph
    assert "stranger" not in graph


def test_a_matrix_wider_than_the_terminal_is_printed_as_one_line_per_source(capsys):
    assert main(["plan", "--stack", "shop", "--stack-file", str(SHOP_FILE)]) == 0
    out = capsys.readouterr().out
    assert "Connectivity (" in out and "┃" not in out
    assert "internet -> shop-edge/edge:8080/TCP" in out.splitlines()
