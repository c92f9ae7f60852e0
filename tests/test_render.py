"""Manifests: valid against the real schemas, and enforcing what the flows say."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from policies.config import load_config
from policies.analysis.matrix import build, declared_flows, workloads_from_manifests
from policies.render import render
from policies.verdict import Endpoint, decide

K8S_VERSION = "1.33"


@pytest.fixture
def dev(dev_config):
    return load_config(dev_config)


def test_every_generated_cilium_policy_validates_against_the_cilium_crd(dev, cnp_schema):
    from tests.conftest import schema_errors

    policies = render(dev).policies()
    assert policies
    for p in policies:
        assert schema_errors(cnp_schema, p) == [], p["metadata"]["name"]


def test_the_strict_crd_schema_catches_a_misspelt_field(dev, cnp_schema):
    from tests.conftest import schema_errors

    p = render(dev).policies()[0]
    broken = {**p, "spec": {**p["spec"], "ingres": [{}]}}
    assert any("ingres" in e for e in schema_errors(cnp_schema, broken))


def test_the_strict_crd_schema_rejects_an_integer_port(dev, cnp_schema):
    from tests.conftest import schema_errors

    ingress = next(p for p in render(dev).policies() if p["metadata"]["name"] == "zt-allow.backend")
    ingress["spec"]["ingress"][0]["toPorts"][0]["ports"][0]["port"] = 80
    assert schema_errors(cnp_schema, ingress)


def test_fqdn_and_l7_policies_validate_against_the_cilium_crd(dev_config, cnp_schema):
    from tests.conftest import schema_errors

    dev_config["zero-trust-aks:cluster"]["advancedNetworking"] = {"security": "l7"}
    dev_config["zero-trust-aks:flows"][0]["http"] = [{"method": "GET", "path": "/api/.*"}]
    dev_config["zero-trust-aks:flows"].append({"from": "backend", "toFqdns": ["api.example.com", "*.mystorage.blob.core.windows.net"], "port": 443})
    for p in render(load_config(dev_config)).policies():
        assert schema_errors(cnp_schema, p) == [], p["metadata"]["name"]


def test_namespaces_deployments_and_services_validate_against_the_kubernetes_schema(dev):
    objects = [o for o in render(dev).all() if not o["apiVersion"].startswith("cilium.io")]
    assert {o["kind"] for o in objects} == {"Namespace", "Deployment", "Service"}
    for o in objects:
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)


def test_policy_names_are_deterministic_dns_1123_names(dev):
    import re

    first = [p["metadata"]["name"] for p in render(dev).policies()]
    assert first == [p["metadata"]["name"] for p in render(dev).policies()]
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", n) and len(n) <= 253 for n in first)


KUBE_DNS_RULE = {
    "toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
    "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}],
}


def test_every_namespace_gets_one_default_deny_that_cilium_enforces_with_dns_as_its_egress_rule(dev):
    for ns in render(dev).namespaces:
        (deny,) = [p for p in ns.policies if p["metadata"]["name"] == "zt-default-deny"]
        assert deny["spec"] == {"endpointSelector": {}, "ingress": [{}], "egress": [KUBE_DNS_RULE]}


def test_without_dns_the_default_deny_keeps_an_empty_egress_rule(dev_config):
    dev_config["zero-trust-aks:zeroTrust"] = {"allowDns": False, "verify": False}
    (deny, *_) = render(load_config(dev_config)).policies()
    assert deny["spec"]["egress"] == [{}]


def test_ingress_only_mode_renders_no_egress_sections(dev_config):
    dev_config["zero-trust-aks:zeroTrust"] = {"defaultDeny": "ingress"}
    policies = render(load_config(dev_config)).policies()
    assert not any("egress" in p["spec"] for p in policies)


def test_dns_egress_names_kube_dns_in_kube_system_without_l7_rules(dev):
    dns = [p for p in render(dev).policies() if p["metadata"]["name"] == "zt-default-deny"]
    assert len(dns) == 2
    (rule,) = dns[0]["spec"]["egress"]
    assert rule["toEndpoints"] == [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}]
    assert "rules" not in rule["toPorts"][0]


def test_fqdn_flows_add_dns_rules_for_their_names(dev_config):
    dev_config["zero-trust-aks:cluster"]["advancedNetworking"] = {"security": "fqdn"}
    dev_config["zero-trust-aks:flows"].append({"from": "backend", "toFqdns": ["api.example.com"], "port": 443})
    (fqdn,) = [p for p in render(load_config(dev_config)).policies() if p["metadata"]["name"] == "zt-allow.backend"]
    dns_rule, fqdn_rule = fqdn["spec"]["egress"]
    assert dns_rule["toPorts"][0]["rules"] == {"dns": [{"matchName": "api.example.com"}]}
    assert fqdn_rule["toFQDNs"] == [{"matchName": "api.example.com"}]


def test_each_flow_is_rendered_on_both_sides_in_one_policy_per_workload_naming_the_flow(dev):
    policies = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in render(dev).policies()}
    frontend, backend = policies[("frontend", "zt-allow.frontend")], policies[("backend", "zt-allow.backend")]
    assert list(frontend["spec"]) == ["endpointSelector", "egress"] and list(backend["spec"]) == ["endpointSelector", "ingress"]
    assert json.loads(frontend["metadata"]["annotations"]["zero-trust-aks/flows"]) == {"egress[0]": "frontend -> backend:80/TCP"}
    assert json.loads(backend["metadata"]["annotations"]["zero-trust-aks/flows"]) == {"ingress[0]": "frontend -> backend:80/TCP"}


def test_a_workload_with_several_flows_keeps_one_policy(three_flows):
    names = [p["metadata"]["name"] for p in render(three_flows).policies() if p["metadata"]["namespace"] == "backend"]
    assert names == ["zt-default-deny", "zt-allow.backend"]


def test_the_dev_policies_allow_exactly_the_walkthrough_flow_and_deny_its_neighbours(dev):
    policies = render(dev).policies()
    frontend = Endpoint("frontend", {"app": "frontend"})
    backend = Endpoint("backend", {"app": "backend"})
    dns = Endpoint("kube-system", {"k8s-app": "kube-dns"})
    assert decide(policies, frontend, backend, 80, "TCP").allowed
    assert decide(policies, frontend, dns, 53, "UDP").allowed
    assert decide(policies, backend, dns, 53, "TCP").allowed
    denied = [
        (Endpoint("frontend", {}), backend, 80),  # an unlabelled pod in frontend
        (backend, frontend, 80),  # the reverse direction
        (frontend, backend, 8080),  # another port
        (frontend, Endpoint("backend", {"app": "other"}), 80),  # another pod in backend
        (Endpoint("backend", {}), backend, 80),  # a stranger in backend itself
    ]
    for src, dst, port in denied:
        assert not decide(policies, src, dst, port, "TCP").allowed, (src, dst, port)


def test_the_walkthroughs_own_default_deny_would_leave_backend_open():
    walkthrough = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "backend"},
        "spec": {"endpointSelector": {}, "ingress": []},
    }
    assert decide([walkthrough], Endpoint("frontend", {}), Endpoint("backend", {"app": "backend"}), 80, version=(1, 16)).allowed


def test_workload_pods_run_with_a_strict_security_context(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["securityProfile"] = "restricted"
    cfg = load_config(dev_config)
    ns = next(n for n in render(cfg).namespaces if n.name == "backend")
    pod = ns.workloads[0].deployment["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}
    assert ns.namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_baseline_workload_drops_every_capability_it_does_not_need(dev):
    ns = next(n for n in render(dev).namespaces if n.name == "backend")
    (c,) = ns.workloads[0].deployment["spec"]["template"]["spec"]["containers"]
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "SYS_ADMIN" not in c["securityContext"]["capabilities"]["add"]
    assert ns.namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_only_workloads_that_receive_traffic_get_a_service(dev):
    services = {w.name: w.service is not None for ns in render(dev).namespaces for w in ns.workloads}
    assert services == {"backend": True, "frontend": False}


def test_the_matrix_of_rendered_manifests_matches_the_declared_flows(dev):
    objects = render(dev).all()
    workloads = workloads_from_manifests(objects)
    m = build([o for o in objects if o["kind"] == "CiliumNetworkPolicy"], workloads, declared_flows(dev, workloads))
    assert m.ok, [f.message for f in m.findings]


def test_the_matrix_notes_allowed_flows_whose_l7_rules_are_not_decided_offline(dev_config):
    dev_config["zero-trust-aks:cluster"]["advancedNetworking"] = {"security": "l7"}
    dev_config["zero-trust-aks:flows"][0]["http"] = [{"method": "GET", "path": "/"}]
    cfg = load_config(dev_config)
    objects = render(cfg).all()
    workloads = workloads_from_manifests(objects)
    m = build([o for o in objects if o["kind"] == "CiliumNetworkPolicy"], workloads, declared_flows(cfg, workloads))
    assert m.ok
    assert [n.split(":")[0] for n in m.notes] == ["frontend -> backend"]
    assert "through the L7 proxy: each request is judged by its rules" in m.notes[0]


def dns_names_allowed(policies, namespace: str, pod_selector: dict) -> set[str]:
    """Every DNS name pattern a pod's egress to kube-dns carries; {"*any*"} when a port-53 allow has no DNS rule."""
    names: set[str] = set()
    for p in policies:
        spec = p["spec"]
        if p["metadata"]["namespace"] != namespace or spec["endpointSelector"] not in ({}, pod_selector):
            continue
        for rule in spec.get("egress") or []:
            if rule.get("toEndpoints") != [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}]:
                continue
            for port in rule["toPorts"]:
                dns = (port.get("rules") or {}).get("dns")
                names |= {d.get("matchName") or d.get("matchPattern") for d in dns} if dns else {"*any*"}
    return names


def test_with_acns_fqdn_security_a_pod_resolves_only_cluster_names_and_its_own_declared_names(dev_config, cnp_schema):
    from tests.conftest import schema_errors

    dev_config["zero-trust-aks:cluster"]["advancedNetworking"] = {"security": "fqdn"}
    dev_config["zero-trust-aks:flows"].append({"from": "backend", "toFqdns": ["api.stripe.com"], "port": 443})
    policies = render(load_config(dev_config)).policies()
    backend = dns_names_allowed(policies, "backend", {"matchLabels": {"app": "backend"}})
    frontend = dns_names_allowed(policies, "frontend", {"matchLabels": {"app": "frontend"}})
    outside = lambda names: {n for n in names if not n.endswith((".cluster.local", ".internal.cloudapp.net"))}
    assert outside(backend) == {"api.stripe.com"}
    assert outside(frontend) == set()
    assert {"*.*.*.cluster.local", "*.*.*.*.*.cluster.local"} <= frontend  # svc.ns.svc.cluster.local and a search expansion
    for p in policies:
        assert schema_errors(cnp_schema, p) == [], p["metadata"]["name"]


def test_without_an_acns_dns_proxy_the_dns_allow_carries_no_dns_rule_aks_would_reject(dev):
    assert dns_names_allowed(render(dev).policies(), "frontend", {"matchLabels": {"app": "frontend"}}) == {"*any*"}


def test_dns_rules_leave_the_reachability_of_kube_dns_decided_exactly(dev_config):
    dev_config["zero-trust-aks:cluster"]["advancedNetworking"] = {"security": "fqdn"}
    cfg = load_config(dev_config)
    dns = Endpoint("kube-system", {"k8s-app": "kube-dns"})
    v = decide(render(cfg).policies(), Endpoint("frontend", {"app": "frontend"}), dns, 53, "UDP", version=cfg.cilium_version)
    assert v.allowed and v.exact


@pytest.fixture
def three_flows(dev_config):
    w = dev_config["zero-trust-aks:workloads"]
    w["api"] = {**w["frontend"], "namespace": "frontend"}
    dev_config["zero-trust-aks:flows"] += [{"from": "api", "to": "backend"}, {"from": "backend", "to": "api"}]
    return load_config(dev_config)


# -- AKS LocalDNS ------------------------------------------------------------------------------------------


def local_dns_shop(mode: str):
    from tests.capture import SHOP, stack_config

    config = stack_config(SHOP)
    config["zero-trust-aks:cluster"]["localDns"] = mode
    return load_config(config)


def egress_of(cfg, namespace: str, name: str) -> list[dict]:
    return next(p for p in render(cfg).policies() if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == name)["spec"]["egress"]


def test_with_localdns_on_every_pod_may_also_ask_the_nodes_resolver_with_the_same_dns_rules(cnp_schema):
    from tests.conftest import schema_errors

    cfg = local_dns_shop("preferred")
    kube_dns, local_range, host = egress_of(cfg, "shop-core", "zt-default-deny")
    assert local_range["toCIDR"] == ["169.254.10.0/24"] and host["toEntities"] == ["host"]
    assert local_range["toPorts"] == host["toPorts"] == kube_dns["toPorts"] and "dns" in kube_dns["toPorts"][0]["rules"]
    assert all(schema_errors(cnp_schema, p) == [] for p in render(cfg).policies())


def test_with_localdns_on_an_outside_names_flow_lets_the_nodes_resolver_answer_its_lookups():
    egress = egress_of(local_dns_shop("required"), "shop-core", "zt-allow.payments")
    dns_rules = [r for r in egress if r["toPorts"][0].get("rules", {}).get("dns") == [{"matchName": "api.stripe.com"}]]
    assert [next(k for k in r if k != "toPorts") for r in dns_rules] == ["toEndpoints", "toCIDR", "toEntities"]


def test_the_nodes_resolver_answers_on_port_53_only_and_only_with_localdns_on():
    from policies.verdict import addresses, entity, stranger

    on = render(local_dns_shop("preferred")).policies()
    resolver = addresses("localdns", ("169.254.10.11/32",))
    assert decide(on, stranger("shop-core"), entity("host"), 53, "UDP").allowed
    assert decide(on, stranger("shop-core"), resolver, 53, "TCP").allowed
    assert not decide(on, stranger("shop-core"), entity("host"), 80).allowed
    off = render(local_dns_shop("disabled")).policies()
    assert not decide(off, stranger("shop-core"), entity("host"), 53, "UDP").allowed
