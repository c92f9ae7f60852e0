"""The example boutique: an 11-service application as a team runs it, with its Redis deployed by Helm elsewhere."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from policies.config import load_config
from policies.analysis.probes import probes
from policies.render import render
from tests.capture import stack_config
from tests.conftest import schema_errors
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

BOUTIQUE = PROJECT_DIR / "examples" / "Pulumi.boutique.yaml"
CONFIG = stack_config(BOUTIQUE)
CFG = load_config(CONFIG)
OBJECTS = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in render(CFG).all()}


def service_ports(name: str, namespace: str = "boutique") -> list[tuple[str, int, int]]:
    return [(p["name"], p["port"], p["targetPort"]) for p in OBJECTS[("Service", namespace, name)]["spec"]["ports"]]


def allowed_ports(policy: str, namespace: str, section: str) -> set[int]:
    spec = OBJECTS[("CiliumNetworkPolicy", namespace, policy)]["spec"]
    return {int(p["port"]) for rule in spec[section] for tp in rule.get("toPorts", []) for p in tp["ports"]}


def test_the_boutique_is_larger_than_a_demo(capsys):
    namespaces = {w.namespace for w in CFG.workloads.values()}
    assert len(CFG.workloads) >= 10 and len(namespaces) >= 3
    assert [n for n, w in CFG.workloads.items() if not w.deployed] == ["redis-master", "redis-replicas"]


def test_the_boutique_plans_holds_and_passes_every_guardrail(capsys):
    assert main(["plan", "--stack", "boutique", "--stack-file", str(BOUTIQUE), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["findings"] == []
    # Only the example's placeholder admin group is named (advisory): replace it with yours.
    assert [(v["rule"], v["level"]) for v in doc["guardrails"]["violations"]] == [("aks-admin-group-placeholder", "advisory")]


def test_the_load_balancer_takes_port_80_to_the_frontends_container_on_8080():
    svc = OBJECTS[("Service", "boutique-web", "frontend")]["spec"]
    assert (svc["type"], svc["externalTrafficPolicy"]) == ("LoadBalancer", "Local")
    assert service_ports("frontend", "boutique-web") == [("http", 80, 8080)]
    assert allowed_ports("zt-allow.frontend", "boutique-web", "ingress") == {8080}


def test_the_email_service_port_differs_from_its_container_port_and_the_policies_allow_the_container_port():
    assert service_ports("emailservice") == [("grpc", 5000, 8080)]
    (container,) = OBJECTS[("Deployment", "boutique", "emailservice")]["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "grpc", "containerPort": 8080, "protocol": "TCP"}]
    assert allowed_ports("zt-allow.emailservice", "boutique", "ingress") == {8080}
    assert 8080 in allowed_ports("zt-allow.checkoutservice", "boutique", "egress")
    assert 5000 not in allowed_ports("zt-allow.checkoutservice", "boutique", "egress")


@pytest.mark.parametrize("name, port", [("adservice", 9555), ("cartservice", 7070), ("checkoutservice", 5050), ("currencyservice", 7000),
                                        ("paymentservice", 50051), ("productcatalogservice", 3550), ("recommendationservice", 8080),
                                        ("shippingservice", 50051)])
def test_each_grpc_service_is_exposed_on_its_port(name, port):
    assert service_ports(name) == [("grpc", port, port)]


def test_redis_deployed_by_helm_gets_policies_selecting_its_pods_and_nothing_else():
    assert not [k for k in OBJECTS if k[0] in ("Deployment", "Service") and k[2].startswith("redis")]
    master = OBJECTS[("CiliumNetworkPolicy", "boutique-data", "zt-allow.redis-master")]["spec"]
    assert master["endpointSelector"] == {"matchLabels": {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "redis-cart",
                                                          "app.kubernetes.io/component": "master"}}
    sources = [peer["matchLabels"].get("app", peer["matchLabels"].get("app.kubernetes.io/component")) for rule in master["ingress"]
               for peer in rule["fromEndpoints"]]
    assert sources == ["cartservice", "replica"]
    assert OBJECTS[("Namespace", "", "boutique-data")]["metadata"]["labels"] == {"zero-trust-aks/default-deny": "ingress-and-egress", "zero-trust-aks/enforcement": "enforced"}


def test_the_probes_dial_each_services_port_and_a_helm_workloads_named_service():
    by_flow = {p.flow: p for p in probes(CFG, render(CFG)).probes if p.declared}
    email = by_flow["checkoutservice -> emailservice:8080/TCP"]
    assert (email.host, email.port, email.expect) == ("emailservice.boutique.svc", 5000, "allow")
    redis = by_flow["cartservice -> redis-master:6379/TCP"]
    assert (redis.host, redis.port) == ("redis-cart-master.boutique-data.svc", 6379)
    replica = by_flow["redis-replicas -> redis-master:6379/TCP"]
    assert replica.labels == {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "redis-cart", "app.kubernetes.io/component": "replica"}


def test_every_rendered_object_is_valid_for_kubernetes_and_the_cilium_crd(cnp_schema):
    for (kind, _, name), o in OBJECTS.items():
        if kind == "CiliumNetworkPolicy":
            assert schema_errors(cnp_schema, o) == [], name
        else:
            kubernetes_validate.validate(o, "1.33", strict=True)
