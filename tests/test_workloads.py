"""Workloads as Kubernetes has them: deployed elsewhere (selector), Service ports that differ from container ports,
environment, arguments, service accounts, users, HTTP checks, and namespaces that exist already."""

from __future__ import annotations

import kubernetes_validate
import pytest

from policies.analysis import matrix as mx
from policies.config import load_config
from policies.analysis.probes import probes
from policies.render import render
from policies.verdict import Endpoint, Engine
from tests.conftest import errors_of, stack_run
from zerotrust.mockrun import run_program
from policies.config.stackfile import StackFiles

K8S_VERSION = "1.33"


def objects(config) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(load_config(config)).all()}


def container(o: dict) -> dict:
    (c,) = o["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture
def elsewhere(dev_config):
    """backend is deployed by Helm into a namespace that exists already; the stack polices it."""
    w = dev_config["zero-trust-aks:workloads"]
    w["backend"] = {"namespace": "backend", "selector": {"app.kubernetes.io/name": "backend", "app.kubernetes.io/instance": "prod"},
                    "service": "backend-http", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    dev_config["zero-trust-aks:namespaces"] = {"backend": {"create": False}}
    return dev_config


# -- deployed elsewhere ---------------------------------------------------------------------------------------


def test_a_workload_deployed_elsewhere_gets_its_policies_but_no_deployment_or_service(elsewhere):
    o = objects(elsewhere)
    assert ("Deployment", "backend") not in o and ("Service", "backend") not in o
    policy = o[("CiliumNetworkPolicy", "zt-allow.backend")]
    assert policy["spec"]["endpointSelector"] == {"matchLabels": {"app.kubernetes.io/name": "backend", "app.kubernetes.io/instance": "prod"}}
    assert policy["spec"]["ingress"][0]["toPorts"] == [{"ports": [{"port": "8080", "protocol": "TCP"}]}]
    egress = o[("CiliumNetworkPolicy", "zt-allow.frontend")]["spec"]["egress"][0]
    assert egress["toEndpoints"] == [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "backend",
                                                      "app.kubernetes.io/name": "backend", "app.kubernetes.io/instance": "prod"}}]


def test_the_matrix_judges_a_workload_deployed_elsewhere_by_its_selector_and_container_port(elsewhere):
    cfg = load_config(elsewhere)
    rendered = render(cfg)
    workloads = mx.workload_pods(cfg, rendered.all())
    assert [(w.name, w.ports) for w in workloads] == [("backend", ((8080, "TCP"),)), ("frontend", ((80, "TCP"),))]
    m = mx.build(rendered.policies(), workloads, mx.declared_flows(cfg, workloads), cfg.cilium_version)
    assert m.ok and ("frontend", "backend", 8080, "TCP") in m.allowed
    # a pod of the Helm release that the selector does not pick (another instance) is denied
    other = Endpoint("backend", {"app.kubernetes.io/name": "backend", "app.kubernetes.io/instance": "staging"})
    frontend = Endpoint("frontend", {"app": "frontend"})
    assert not Engine(rendered.policies(), cfg.cilium_version, [other, frontend]).decide(frontend, other, 8080).allowed


def test_probes_of_a_workload_deployed_elsewhere_dial_its_named_service_and_carry_its_labels(elsewhere):
    cfg = load_config(elsewhere)
    ps = probes(cfg, render(cfg))
    declared = [p for p in ps.probes if p.declared]
    assert [(p.flow, p.host, p.port, p.expect) for p in declared] == [("frontend -> backend:8080/TCP", "backend-http.backend.svc", 80, "allow")]
    elsewhere["zero-trust-aks:workloads"]["backend"]["selector"]["app.kubernetes.io/component"] = "api"
    elsewhere["zero-trust-aks:flows"] = [{"from": "backend", "to": "frontend"}]
    cfg = load_config(elsewhere)
    (source,) = [p for p in probes(cfg, render(cfg)).probes if p.declared]
    assert source.labels == {"app.kubernetes.io/name": "backend", "app.kubernetes.io/instance": "prod", "app.kubernetes.io/component": "api"}


def test_a_flow_to_a_workload_deployed_elsewhere_without_a_service_is_not_probed_and_says_so(elsewhere):
    del elsewhere["zero-trust-aks:workloads"]["backend"]["service"]
    cfg = load_config(elsewhere)
    ps = probes(cfg, render(cfg))
    assert not [p for p in ps.probes if p.target == "backend"]
    assert any("backend is deployed elsewhere and names no Service to dial" in s for s in ps.skipped)


@pytest.mark.parametrize("key, value", [("image", "nginx:1.27"), ("env", {"A": "b"}), ("replicas", 2), ("labels", {"tier": "x"}),
                                        ("expose", "loadBalancer"), ("runAsUser", 1000)])
def test_keys_that_shape_what_the_stack_deploys_are_refused_for_a_workload_deployed_elsewhere(elsewhere, key, value):
    elsewhere["zero-trust-aks:workloads"]["backend"][key] = value
    lines = errors_of(elsewhere)
    if key == "image":
        assert lines == ["zero-trust-aks:workloads.backend: give image (a workload this stack deploys) or selector (the labels of pods "
                         "deployed elsewhere, by Helm, Argo CD or another stack), not both"]
    else:
        assert lines == [f"zero-trust-aks:workloads.backend.{key}: only for a workload this stack deploys (image); 'backend' is deployed elsewhere (selector)"]


def test_a_selector_that_also_selects_another_workloads_pods_is_refused(elsewhere):
    w = elsewhere["zero-trust-aks:workloads"]
    w["backend-admin"] = {"namespace": "backend", "selector": {"app.kubernetes.io/name": "backend"}, "port": 9000}
    w["web"] = {"namespace": "frontend", "selector": {"app": "frontend"}, "port": 80}
    assert errors_of(elsewhere) == [
        "zero-trust-aks:workloads.backend-admin.selector: {app.kubernetes.io/name: backend} also selects the pods of 'backend' "
        "({app.kubernetes.io/instance: prod, app.kubernetes.io/name: backend}); add a label that tells them apart",
        "zero-trust-aks:workloads.web.selector: {app: frontend} also selects the pods of 'frontend' ({app: frontend}); "
        "add a label that tells them apart",
    ]


def test_two_selectors_that_tell_the_pods_apart_by_a_value_are_accepted(elsewhere):
    w = elsewhere["zero-trust-aks:workloads"]
    w["backend-staging"] = {"namespace": "backend", "selector": {"app.kubernetes.io/name": "backend", "app.kubernetes.io/instance": "staging"},
                            "port": 8080}
    load_config(elsewhere)


# -- namespaces that exist already ----------------------------------------------------------------------------


def test_a_namespace_that_exists_already_is_labelled_not_created(elsewhere):
    o = objects(elsewhere)
    assert o[("Namespace", "backend")] == {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": "backend", "labels": {"zero-trust-aks/default-deny": "ingress-and-egress", "zero-trust-aks/enforcement": "enforced"},
                                                        "annotations": {"zero-trust-aks/other-identities": "18"}}}
    assert o[("Namespace", "frontend")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_the_program_patches_a_namespace_that_exists_already_and_creates_the_others(elsewhere, dev_stack):
    run = run_program(StackFiles(dev_stack.project, dev_stack.stack, elsewhere, dev_stack.secret_keys))
    by_type = {(r.type, r.name) for r in run.resources}
    assert ("kubernetes:core/v1:NamespacePatch", "backend-namespace-labels") in by_type
    assert ("kubernetes:core/v1:Namespace", "frontend-namespace") in by_type
    assert not [r for r in run.resources if r.type == "kubernetes:core/v1:Namespace" and r.name.startswith("backend")]
    assert not [r for r in run.resources if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service") and r.name.startswith("backend")]
    patch = next(r for r in run.resources if r.type == "kubernetes:core/v1:NamespacePatch")
    assert patch.inputs["kind"] == "Namespace" and patch.inputs["metadata"]["labels"] == {"zero-trust-aks/default-deny": "ingress-and-egress", "zero-trust-aks/enforcement": "enforced"}


def test_settings_for_a_namespace_no_workload_lives_in_are_refused(dev_config):
    dev_config["zero-trust-aks:namespaces"] = {"payments": {"create": False}}
    assert errors_of(dev_config) == ["zero-trust-aks:namespaces.payments: no workload lives in 'payments'; the stack's namespaces are: backend, frontend"]


# -- Services and containers as Kubernetes has them -------------------------------------------------------------


@pytest.fixture
def email(dev_config):
    w = dev_config["zero-trust-aks:workloads"]
    w["backend"] = {
        "namespace": "backend", "image": "ghcr.io/example/email:1", "ports": [{"name": "grpc", "port": 5000, "targetPort": 8080}],
        "env": {"PORT": "8080", "SMTP_PASSWORD": {"secretKeyRef": {"name": "smtp", "key": "password"}},
                "REGION": {"configMapKeyRef": {"name": "settings", "key": "region"}}},
        "command": ["/email"], "args": ["--port", "8080"], "serviceAccountName": "email", "runAsUser": 1000, "runAsGroup": 1000,
        "healthCheck": {"path": "/healthz", "port": "grpc"},
    }
    dev_config["zero-trust-aks:flows"] = [{"from": "frontend", "to": "backend", "port": 5000}]
    return dev_config


def test_a_service_exposes_the_port_clients_dial_and_targets_the_container_port(email):
    o = objects(email)
    assert o[("Service", "backend")]["spec"]["ports"] == [{"name": "grpc", "port": 5000, "targetPort": 8080, "protocol": "TCP"}]
    assert container(o[("Deployment", "backend")])["ports"] == [{"name": "grpc", "containerPort": 8080, "protocol": "TCP"}]


def test_policies_allow_the_container_port_because_cilium_enforces_after_the_services_translation(email):
    o = objects(email)
    ingress = o[("CiliumNetworkPolicy", "zt-allow.backend")]["spec"]["ingress"][0]["toPorts"]
    egress = o[("CiliumNetworkPolicy", "zt-allow.frontend")]["spec"]["egress"][0]["toPorts"]
    assert ingress == egress == [{"ports": [{"port": "8080", "protocol": "TCP"}]}]


def test_environment_arguments_service_account_user_and_http_check_are_rendered_as_kubernetes_takes_them(email):
    o = objects(email)
    d = o[("Deployment", "backend")]
    c = container(d)
    assert c["env"] == [
        {"name": "PORT", "value": "8080"},
        {"name": "SMTP_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "smtp", "key": "password"}}},
        {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "region"}}},
    ]
    assert (c["command"], c["args"]) == (["/email"], ["--port", "8080"])
    assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (1000, 1000)
    assert c["readinessProbe"]["httpGet"] == c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert d["spec"]["template"]["spec"]["serviceAccountName"] == "email"
    assert o[("ServiceAccount", "email")]["automountServiceAccountToken"] is False
    for obj in o.values():
        if obj["kind"] in ("Deployment", "Service", "ServiceAccount", "Namespace"):
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_probe_dials_the_service_port_and_expects_what_the_policies_allow_on_the_container_port(email):
    cfg = load_config(email)
    (p,) = [p for p in probes(cfg, render(cfg)).probes if p.declared]
    assert (p.flow, p.host, p.port, p.expect) == ("frontend -> backend:8080/TCP", "backend.backend.svc", 5000, "allow")


def test_a_flow_may_name_the_port_by_its_name_or_the_number_clients_dial(email):
    for port in ("grpc", 5000):
        email["zero-trust-aks:flows"] = [{"from": "frontend", "to": "backend", "port": port}]
        cfg = load_config(email)
        assert (cfg.flow_port(cfg.flows[0]), cfg.flow_service_port(cfg.flows[0])) == (8080, 5000)


@pytest.mark.parametrize(
    "change, line",
    [
        ({"healthCheck": {"path": "/healthz", "port": 9999}}, "zero-trust-aks:workloads.backend.healthCheck.port: an HTTP check needs a TCP port the workload serves; it serves: grpc (5000/TCP)"),
        ({"runAsUser": 0}, "zero-trust-aks:workloads.backend.runAsUser: 0 is root, which securityProfile restricted refuses; use a non-root user or securityProfile: baseline"),
        ({"env": {"X": {"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}}},
         "zero-trust-aks:workloads.backend.env.X: give exactly one of secretKeyRef or configMapKeyRef (or a plain string value)"),
        ({"targetPort": 8080}, "zero-trust-aks:workloads.backend.targetPort: only with port (with ports, give targetPort in each entry)"),
        ({"service": "email"}, "zero-trust-aks:workloads.backend.service: only with selector; the Service of a workload this stack deploys is named after it ('backend')"),
    ],
    ids=["a check on a port it does not serve", "root under restricted", "two sources for one value", "targetPort beside ports",
         "a service name for a deployed workload"],
)
def test_workload_settings_kubernetes_or_the_pod_would_refuse_are_one_line_each(email, change, line):
    email["zero-trust-aks:workloads"]["backend"].update(change)
    assert errors_of(email) == [line]


def test_the_committed_stacks_run_with_service_accounts_only_where_asked():
    run = stack_run("dev")
    assert not run.of_type("kubernetes:core/v1:ServiceAccount")


def test_two_workloads_with_the_same_selector_are_refused_once(elsewhere):
    w = elsewhere["zero-trust-aks:workloads"]
    w["backend-copy"] = {"namespace": "backend", "selector": dict(w["backend"]["selector"]), "port": 8080}
    assert errors_of(elsewhere) == [
        "zero-trust-aks:workloads.backend.selector: {app.kubernetes.io/instance: prod, app.kubernetes.io/name: backend} also selects "
        "the pods of 'backend-copy' ({app.kubernetes.io/instance: prod, app.kubernetes.io/name: backend}); add a label that tells them apart"
    ]
