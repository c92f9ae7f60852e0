"""Every policy field is decided as Cilium decides it, or reported as not decided, naming what decides it.

The policies are shaped after the examples of Cilium's documentation and the Kubernetes network-policy
recipes (their names are kept, so a reader can compare); the connections are the ones those pages say
are allowed or denied.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.agent_settings import AKS, AgentSettings
from policies.observed.hubble import end as hubble_end
from policies.verdict import Endpoint, Engine, addresses, decide, entity
from tests.capture import DEV, flow_line, replay_config, stack_config, write

DEV_CONFIG = stack_config(DEV)
HOST_FIREWALL = AgentSettings(host_firewall=True, node_selector_labels=False)
NODE_LABELS = AgentSettings(host_firewall=False, node_selector_labels=True)


def ccnp(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def cnp(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def labelled(namespace: str, pod_name: str, *labels: str) -> dict[str, Any]:
    """A Hubble end as the agent writes it: the pod's labels and those Cilium adds, every one ``k8s:``."""
    return {"namespace": namespace, "pod_name": pod_name, "labels": [f"k8s:{x}" for x in labels]}


def cilium_labels(namespace: str, service_account: str = "default", **namespace_labels: str) -> tuple[str, ...]:
    ns = {"kubernetes.io/metadata.name": namespace, **namespace_labels}
    return (f"io.kubernetes.pod.namespace={namespace}", f"io.cilium.k8s.policy.serviceaccount={service_account}",
            "io.cilium.k8s.policy.cluster=default", *(f"io.cilium.k8s.namespace.labels.{k}={v}" for k, v in ns.items()))


# -- identities as Cilium builds them ---------------------------------------------------------------

# The Kubernetes network-policy recipe "allow all traffic from a namespace" (web-allow-prod).
WEB_ALLOW_PROD = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web-allow-prod", "namespace": "web"},
    "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"purpose": "production"}}}]}]},
}
WEB = labelled("web", "web-5d78c9869d-xq2mz", "app=web", *cilium_labels("web"))


def web_call(tmp_path, client: dict[str, Any]):
    return replay_config(DEV_CONFIG, write(tmp_path, flow_line(client, WEB, "10.244.1.9", 80)), others=(WEB_ALLOW_PROD,))[1]


def test_a_namespace_selector_on_a_namespace_label_matches_the_label_the_record_carries(tmp_path):
    prod = labelled("prod", "client-5d78c9869d-abcde", "app=client", *cilium_labels("prod", purpose="production"))
    dev = labelled("dev", "client-5d78c9869d-abcde", "app=client", *cilium_labels("dev", purpose="testing"))
    assert web_call(tmp_path, prod).would_drop == ()
    assert [(d.src, d.dst) for d in web_call(tmp_path, dev).would_drop] == [("dev/app=client", "web/app=web")]


def test_a_namespace_selector_on_a_label_the_record_does_not_carry_is_undecided_naming_the_label(tmp_path):
    bare = labelled("prod", "client-5d78c9869d-abcde", "app=client", "io.kubernetes.pod.namespace=prod")
    r = web_call(tmp_path, bare)
    assert r.would_drop == ()
    assert len(r.undecided) == 1 and "io.cilium.k8s.namespace.labels.purpose" in r.undecided[0].dropped_by


# Cilium's example "k8s-svc-account" (policy/kubernetes: service accounts), at L3/L4.
SVC_ACCOUNT = cnp("default", "k8s-svc-account",
                  endpointSelector={"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "leia"}},
                  ingress=[{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "luke"}}],
                            "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
LEIA = labelled("default", "leia-5d78c9869d-abcde", "app=leia", *cilium_labels("default", "leia"))


def leia_call(tmp_path, client):
    return replay_config(DEV_CONFIG, write(tmp_path, flow_line(client, LEIA, "10.244.1.7", 80)), others=(SVC_ACCOUNT,))[1]


def test_a_service_account_selector_matches_the_service_account_the_record_carries(tmp_path):
    luke = labelled("default", "luke-5d78c9869d-abcde", "app=luke", *cilium_labels("default", "luke"))
    vader = labelled("default", "vader-5d78c9869d-abcde", "app=vader", *cilium_labels("default", "vader"))
    assert leia_call(tmp_path, luke).would_drop == () and leia_call(tmp_path, luke).undecided == ()
    assert len(leia_call(tmp_path, vader).would_drop) == 1


def test_a_service_account_selector_on_a_record_without_the_service_account_is_undecided_naming_it(tmp_path):
    masked = labelled("default", "luke-5d78c9869d-abcde", "app=luke", "io.kubernetes.pod.namespace=default")
    r = leia_call(tmp_path, masked)
    assert r.would_drop == ()
    assert len(r.undecided) == 1 and "io.cilium.k8s.policy.serviceaccount" in r.undecided[0].dropped_by


def test_a_subject_selected_by_a_label_its_record_lacks_is_undecided_even_when_nothing_else_selects_it(tmp_path):
    leia = labelled("default", "leia-5d78c9869d-abcde", "app=leia", "io.kubernetes.pod.namespace=default")
    luke = labelled("default", "luke-5d78c9869d-abcde", "app=luke", *cilium_labels("default", "luke"))
    r = replay_config(DEV_CONFIG, write(tmp_path, flow_line(luke, leia, "10.244.1.7", 443)), others=(SVC_ACCOUNT,))[1]
    assert r.would_drop == () and len(r.undecided) == 1
    assert "the record of default/app=leia does not carry" in r.undecided[0].dropped_by


def test_a_cluster_selector_matches_the_cluster_the_record_names():
    policy = cnp("default", "from-cluster1", endpointSelector={},
                 ingress=[{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.policy.cluster": "cluster1"}}]}])
    ours = Endpoint("default", {"app": "x"}, cluster="cluster1")
    theirs = Endpoint("default", {"app": "x"}, cluster="cluster2")
    target = Endpoint("default", {"app": "y"})
    assert decide([policy], ours, target, 80).allowed
    assert not decide([policy], theirs, target, 80).allowed


def test_a_cluster_selector_matches_the_cluster_label_a_record_carries(tmp_path):
    policy = cnp("storefront", "from-cluster1", endpointSelector={"matchLabels": {"app": "web"}},
                 ingress=[{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.policy.cluster": "cluster1",
                                                              "io.kubernetes.pod.namespace": "clients"}}]}])
    web = labelled("storefront", "web-5d78c9869d-abcde", "app=web", *cilium_labels("storefront"))

    def client(cluster: str) -> dict:
        labels = [x.replace("cluster=default", f"cluster={cluster}") for x in cilium_labels("clients")]
        return labelled("clients", "client-5d78c9869d-abcde", "app=client", *labels)

    calls = write(tmp_path, flow_line(client("cluster1"), web, "10.244.1.9", 80, sport=1),
                  flow_line(client("cluster2"), web, "10.244.1.9", 80, sport=2, src_ip="10.244.0.6"))
    r = replay_config(DEV_CONFIG, calls, others=(policy,))[1]
    assert [(d.src, d.dst) for d in r.would_drop] == [("clients/app=client", "storefront/app=web")] and r.undecided == ()
    assert r.would_drop[0].ends[0].cilium_labels and dict(r.would_drop[0].ends[0].cilium_labels)["io.cilium.k8s.policy.cluster"] == "cluster2"


# -- host policies and nodes -------------------------------------------------------------------------

# Cilium's host-firewall guide, "demo-host-policy": nodes labelled node-access=ssh accept the cluster,
# and from anywhere only SSH and the API server port.
DEMO_HOST_POLICY = ccnp("demo-host-policy", nodeSelector={"matchLabels": {"node-access": "ssh"}}, ingress=[
    {"fromEntities": ["cluster"]},
    {"toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}, {"port": "6443", "protocol": "TCP"}]}]},
])
SSH_NODE = entity("host", node_labels={"node-access": "ssh"})
OTHER_NODE = entity("host", node_labels={})


def test_with_the_host_firewall_a_host_policy_decides_the_nodes_it_selects_as_the_guide_documents():
    world = entity("world")
    assert decide([DEMO_HOST_POLICY], world, SSH_NODE, 22, settings=HOST_FIREWALL).allowed
    v = decide([DEMO_HOST_POLICY], world, SSH_NODE, 8080, settings=HOST_FIREWALL)
    assert not v.allowed and v.exact and "ccnp/demo-host-policy" in v.reason
    assert decide([DEMO_HOST_POLICY], world, OTHER_NODE, 8080, settings=HOST_FIREWALL).allowed


def test_on_aks_a_host_policy_leaves_the_nodes_side_undecided_naming_the_host_firewall():
    v = decide([DEMO_HOST_POLICY], entity("world"), SSH_NODE, 8080, settings=AKS)
    assert v.allowed and not v.exact and "enable-host-firewall" in v.reason


def test_a_host_policy_never_selects_a_pod():
    pod = Endpoint("default", {"node-access": "ssh"})
    v = decide([DEMO_HOST_POLICY], entity("world"), pod, 8080, settings=HOST_FIREWALL)
    assert v.allowed and v.exact


def test_a_node_whose_labels_the_record_does_not_carry_is_undecided_under_a_host_policy_that_selects_by_label():
    v = decide([DEMO_HOST_POLICY], entity("world"), entity("host"), 8080, settings=HOST_FIREWALL)
    assert not v.exact and "node-access" in v.reason


def test_every_host_policy_that_may_select_a_node_is_weighed_past_pod_policies_and_host_policies_for_other_nodes():
    pod_policy = ccnp("pods", endpointSelector={}, ingress=[{"fromEntities": ["cluster"]}])
    db_nodes = ccnp("db-nodes", nodeSelector={"matchLabels": {"role": "db"}}, ingress=[{"fromEntities": ["cluster"]}])
    ssh = SSH_NODE
    v = decide([pod_policy, db_nodes, DEMO_HOST_POLICY], entity("world"), ssh, 8080, settings=AKS)
    assert not v.exact and "ccnp/demo-host-policy is a host policy" in v.reason and "db-nodes" not in v.reason
    both = ccnp("all-nodes", nodeSelector={"matchLabels": {"node-access": "ssh"}}, ingress=[{"fromEntities": ["cluster"]}])
    v = decide([DEMO_HOST_POLICY, both], entity("world"), entity("host"), 8080, settings=HOST_FIREWALL)
    assert "ccnp/demo-host-policy selects nodes on node-access" in v.reason and "ccnp/all-nodes selects nodes on node-access" in v.reason


def test_each_policy_selecting_a_pod_on_labels_its_record_lacks_is_named_and_host_policies_are_passed_over():
    api = Endpoint("shop", {"app": "api"}, unknown_labels=frozenset({"io.cilium.k8s.policy.serviceaccount", "io.cilium.k8s.policy.cluster"}))
    by_sa = cnp("shop", "by-sa", endpointSelector={"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "api"}}, ingress=[{}])
    by_cluster = cnp("shop", "by-cluster", endpointSelector={"matchLabels": {"io.cilium.k8s.policy.cluster": "c1"}}, ingress=[{}])
    v = decide([by_sa, by_cluster, DEMO_HOST_POLICY], entity("world"), api, 80)
    assert not v.exact and "shop/by-sa selects on io.cilium.k8s.policy.serviceaccount" in v.reason
    assert "shop/by-cluster selects on io.cilium.k8s.policy.cluster" in v.reason


# Cilium's clusterwide example "cilium-health-checks": the health endpoint talks to remote nodes only.
HEALTH_CHECKS = ccnp("cilium-health-checks", endpointSelector={"matchLabels": {"reserved:health": ""}},
                     ingress=[{"fromEntities": ["remote-node"]}], egress=[{"toEntities": ["remote-node"]}])


def test_a_clusterwide_policy_can_select_the_health_endpoint_by_its_reserved_label():
    health = entity("health")
    assert decide([HEALTH_CHECKS], entity("remote-node"), health, 4240).allowed
    v = decide([HEALTH_CHECKS], Endpoint("default", {"app": "x"}), health, 4240)
    assert not v.allowed and v.exact and "ccnp/cilium-health-checks" in v.reason


def test_an_empty_clusterwide_endpoint_selector_selects_the_health_endpoint_but_never_the_host():
    deny_all = ccnp("default-deny", endpointSelector={}, ingress=[{}])
    assert not decide([deny_all], entity("remote-node"), entity("health"), 4240).allowed
    assert decide([deny_all], entity("world"), entity("host"), 22, settings=HOST_FIREWALL).allowed


def test_a_clusterwide_policy_selecting_pods_by_label_leaves_the_health_endpoint_unselected():
    frontend_only = ccnp("frontend-only", endpointSelector={"matchLabels": {"app": "frontend"}}, ingress=[{}])
    v = decide([frontend_only], entity("remote-node"), entity("health"), 4240)
    assert v.allowed and v.exact


@pytest.mark.parametrize("node_or_endpoint", [entity("host", node_labels={}), entity("health")], ids=["host", "health"])
def test_with_only_namespaced_policies_the_host_and_the_health_endpoint_are_selected_by_none(node_or_endpoint):
    deny_all = cnp("default", "deny-all", endpointSelector={}, ingress=[{}], egress=[{}])
    v = decide([deny_all], entity("remote-node"), node_or_endpoint, 4240, settings=HOST_FIREWALL)
    assert v.allowed and v.exact


# Cilium's "from-nodes" example (policy language, node selector): control-plane nodes reach the backend.
FROM_NODES = cnp("default", "from-nodes", endpointSelector={"matchLabels": {"role": "backend"}},
                 ingress=[{"fromNodes": [{"matchLabels": {"node-role.kubernetes.io/control-plane": ""}}]}])
BACKEND = Endpoint("default", {"role": "backend"})


def test_a_to_nodes_rule_never_selects_a_pod_carrying_the_node_label_it_names():
    # `role` survives Cilium's label filter (a `kubernetes.io` key would not reach the pod's identity at all)
    to_db_nodes = cnp("default", "to-db-nodes", endpointSelector={"matchLabels": {"role": "backend"}},
                      egress=[{"toNodes": [{"matchLabels": {"role": "db"}}]}])
    assert decide([to_db_nodes], BACKEND, entity("host", node_labels={"role": "db"}), 5432, settings=NODE_LABELS).allowed
    v = decide([to_db_nodes], BACKEND, Endpoint("default", {"role": "db"}), 5432, settings=NODE_LABELS)
    assert not v.allowed and v.exact


def test_from_nodes_rules_are_refused_as_cilium_refuses_them_without_node_selector_labels():
    engine = Engine([FROM_NODES], settings=AKS)
    assert [ref for ref, _ in engine.rejected] == ["default/from-nodes"]
    assert "enable-node-selector-labels" in engine.rejected[0][1]


def test_with_node_selector_labels_from_nodes_selects_nodes_by_their_labels_and_never_pods():
    control = entity("remote-node", node_labels={"node-role.kubernetes.io/control-plane": ""})
    worker = entity("remote-node", node_labels={"kubernetes.io/role": "worker"})
    look_alike = Endpoint("default", {"node-role.kubernetes.io/control-plane": ""})
    assert decide([FROM_NODES], control, BACKEND, 80, settings=NODE_LABELS).allowed
    to_nodes = cnp("default", "to-nodes", endpointSelector={"matchLabels": {"role": "backend"}},
                   egress=[{"toNodes": [{"matchLabels": {"node-role.kubernetes.io/control-plane": ""}}]}])
    own_node = entity("host", node_labels={"node-role.kubernetes.io/control-plane": ""})  # the pod's own node too
    assert decide([to_nodes], BACKEND, own_node, 10250, settings=NODE_LABELS).allowed
    assert not decide([to_nodes], BACKEND, entity("host", node_labels={}), 10250, settings=NODE_LABELS).allowed
    assert not decide([FROM_NODES], worker, BACKEND, 80, settings=NODE_LABELS).allowed
    assert not decide([FROM_NODES], look_alike, BACKEND, 80, settings=NODE_LABELS).allowed


def test_a_hubble_record_of_a_node_keeps_the_node_labels_its_identity_carries():
    end = hubble_end({"identity": 6, "labels": ["reserved:remote-node", "node:node-role.kubernetes.io/control-plane=",
                                                "k8s:io.cilium.k8s.policy.cluster=default"]})
    assert end.reserved == "remote-node" and end.node_labels == (("node-role.kubernetes.io/control-plane", ""),)
    assert hubble_end({"identity": 6}).node_labels is None


# -- L7, TLS, listeners and authentication on allowed connections -------------------------------------

PORT_80 = {"ports": [{"port": "80", "protocol": "TCP"}]}
# Namespaces the dev stack does not manage: the third-party policy alone decides.
CLIENT = labelled("storefront", "client-5d78c9869d-abcde", "app=client", *cilium_labels("storefront"))
ORDERS = labelled("orders", "orders-5d78c9869d-abcde", "app=orders", *cilium_labels("orders"))


def orders_call(tmp_path, rule: dict[str, Any]):
    policy = cnp("orders", "third-party", endpointSelector={"matchLabels": {"app": "orders"}}, ingress=[rule])
    return replay_config(DEV_CONFIG, write(tmp_path, flow_line(CLIENT, ORDERS, "10.244.1.8", 80)), others=(policy,))[1]


def test_a_listener_on_an_allowed_connection_is_named_as_not_decided(tmp_path):
    listener = {"envoyConfig": {"kind": "CiliumEnvoyConfig", "name": "envoy-lb"}, "name": "envoy-lb-listener"}
    r = orders_call(tmp_path, {"toPorts": [PORT_80 | {"listener": listener}]})
    assert r.would_drop == () and [d.layer for d in r.undecided] == ["other L7"] and "listener" in r.undecided[0].dropped_by


def test_tls_server_names_on_an_allowed_connection_are_named_as_not_decided(tmp_path):
    r = orders_call(tmp_path, {"toPorts": [PORT_80 | {"serverNames": ["backend.example.com"]}]})
    assert [d.layer for d in r.undecided] == ["other L7"] and "serverNames" in r.undecided[0].dropped_by


def test_mutual_authentication_on_an_allowed_connection_leaves_it_undecided_never_allowed(tmp_path):
    r = orders_call(tmp_path, {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "storefront"}}],
                                "authentication": {"mode": "required"}})
    assert r.would_drop == () and len(r.undecided) == 1 and "mutual authentication" in r.undecided[0].dropped_by


def test_a_connection_allowed_with_nothing_undecided_is_not_listed(tmp_path):
    r = orders_call(tmp_path, {"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "storefront"}}]})
    assert r.would_drop == () and r.undecided == ()



# -- a side is undecided only by what could change it -------------------------------------------------

SRC, DST = Endpoint("shop", {"app": "web"}), Endpoint("shop", {"app": "api"})
TO_API = {"toEndpoints": [{"matchLabels": {"app": "api"}}]}


def egress_policy(*rules: dict[str, Any], deny: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return cnp("shop", "web-egress", endpointSelector={"matchLabels": {"app": "web"}}, egress=list(rules), egressDeny=list(deny))


def named(port: str) -> dict[str, Any]:
    return TO_API | {"toPorts": [{"ports": [{"port": port, "protocol": "TCP"}]}]}


def test_an_allow_that_matches_exactly_is_not_undone_by_another_allow_the_records_cannot_decide():
    v = decide([egress_policy(named("80"), named("http"))], SRC, DST, 80)
    assert v.allowed and v.exact


def test_a_deny_that_might_match_leaves_an_allowed_connection_undecided():
    v = decide([egress_policy(named("80"), deny=(named("http"),))], SRC, DST, 80)
    assert v.allowed and not v.exact and "egressDeny[0] names a port" in v.reason


def test_an_exact_deny_is_not_undone_by_an_allow_the_records_cannot_decide():
    v = decide([egress_policy(named("http"), deny=(named("80"),))], SRC, DST, 80)
    assert not v.allowed and v.exact


def test_default_deny_with_an_allow_that_might_match_is_undecided():
    v = decide([egress_policy(named("http"))], SRC, DST, 80)
    assert not v.allowed and not v.exact


# -- nothing vanishes -------------------------------------------------------------------------------------

CLUSTER_OBJECTS = [
    cnp("orders", "bad-operator", endpointSelector={"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["x"]}]},
        ingress=[{}]),
    {"apiVersion": "extensions/v1beta1", "kind": "NetworkPolicy", "metadata": {"name": "old", "namespace": "orders"},
     "spec": {"podSelector": {}}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config", "namespace": "kube-system"}},
    cnp("orders", "typo", endpointSelector={"matchLabels": {"app": "orders"}},
        ingress=[{"fromEntities": ["cluster"], "toPort": [{"ports": [{"port": "5432", "protocol": "TCP"}]}]}]),
]


def cluster_file(tmp_path, objects: list[dict[str, Any]]):
    import yaml

    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects}))
    return path


def test_every_object_not_replayed_and_every_pruned_field_is_one_line_naming_it():
    from policies.verdict import crd

    policies, notes = crd.as_stored(CLUSTER_OBJECTS, "cluster.yaml")
    assert [p["metadata"]["name"] for p in policies] == ["bad-operator", "typo"]
    assert notes == [
        "cluster.yaml object 1 (NetworkPolicy old): apiVersion 'extensions/v1beta1' is not served for NetworkPolicy "
        "(only networking.k8s.io/v1): the API server refuses it, not replayed",
        "cluster.yaml object 2 (ConfigMap cilium-config): not a policy (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, "
        "NetworkPolicy): not replayed",
        "cluster.yaml object 3 (CiliumNetworkPolicy typo): the API server prunes spec.ingress[0].toPort (not in the "
        "CiliumNetworkPolicy schema): judged without them",
    ]
    assert "toPort" not in policies[1]["spec"]["ingress"][0]


def test_a_pruned_port_list_is_judged_as_the_api_server_leaves_it_allowing_every_port(tmp_path):
    capture = write(tmp_path, flow_line(CLIENT, ORDERS, "10.244.1.8", 8080))
    from policies.verdict import crd

    policies, _ = crd.as_stored(CLUSTER_OBJECTS[3:], "cluster.yaml")
    r = replay_config(DEV_CONFIG, capture, others=tuple(policies))[1]
    assert r.would_drop == () and r.undecided == ()


def test_policies_cilium_rejects_and_objects_not_replayed_are_listed_in_text_markdown_and_json(tmp_path, capsys):
    from zerotrust.__main__ import main

    capture = write(tmp_path, flow_line(CLIENT, ORDERS, "10.244.1.8", 80))
    args = ["plan", "--stack", "dev", "--observed", str(capture), "--cluster-policies", str(cluster_file(tmp_path, CLUSTER_OBJECTS))]
    main([*args, "--format", "json"])
    lines = json.loads(capsys.readouterr().out)["observed"]["notApplied"]
    assert len(lines) == 4 and lines[-1].startswith("orders/bad-operator: not applied, Cilium rejects it: ")
    assert "'Equals' is not In, NotIn, Exists or DoesNotExist" in lines[-1]
    for fmt in ("text", "markdown"):
        main([*args, "--format", fmt])
        out = capsys.readouterr().out
        assert all(line.split(": ")[0] in out for line in lines) and "bad-operator: not applied, Cilium rejects it" in out


def test_an_empty_cluster_policies_file_is_reported_not_silently_replayed_as_nothing(tmp_path, capsys):
    from zerotrust.__main__ import main

    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    capture = write(tmp_path, flow_line(CLIENT, ORDERS, "10.244.1.8", 80))
    main(["plan", "--stack", "dev", "--format", "json", "--observed", str(capture), "--cluster-policies", str(empty)])
    assert json.loads(capsys.readouterr().out)["observed"]["notApplied"] == [
        "--cluster-policies empty.yaml: holds no objects, so no policy of the cluster is replayed"
    ]


def test_on_aks_node_labels_never_leave_a_pod_selector_undecided_for_a_node():
    # Without enable-node-selector-labels node identities carry no node labels, so an any-source key
    # (here the namespace, written without k8s:) cannot select a node whatever the record leaves out.
    policy = cnp("backend", "from-frontend", endpointSelector={},
                 ingress=[{"fromEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "frontend"}}]}])
    v = decide([policy], entity("remote-node"), Endpoint("backend", {"app": "backend"}), 80, settings=AKS)
    assert not v.allowed and v.exact
    v = decide([policy], entity("remote-node"), Endpoint("backend", {"app": "backend"}), 80, settings=NODE_LABELS)
    assert not v.allowed and not v.exact and "io.kubernetes.pod.namespace" in v.reason


def test_on_aks_a_host_policy_for_other_nodes_leaves_a_node_whose_labels_are_known_decided():
    v = decide([DEMO_HOST_POLICY], entity("world"), OTHER_NODE, 8080, settings=AKS)
    assert v.allowed and v.exact


# -- pruning as the API server prunes ---------------------------------------------------------------------


def prune_with(value: Any, node: dict[str, Any]) -> tuple[Any, list[str]]:
    from policies.verdict.crd import _prune

    dropped: list[str] = []
    return _prune(value, node, "spec", dropped), dropped


def test_pruning_walks_maps_and_lists_and_keeps_what_a_schema_leaves_open():
    item = {"type": "object", "properties": {"port": {"type": "string"}}}
    by_name = {"type": "object", "additionalProperties": item}
    assert prune_with({"a": {"port": "80", "bad": 1}}, by_name) == ({"a": {"port": "80"}}, ["spec.a.bad"])
    assert prune_with([{"port": "80", "bad": 1}], {"type": "array", "items": item}) == ([{"port": "80"}], ["spec[0].bad"])
    assert prune_with({"anything": {"x": 1}}, {"type": "object", "additionalProperties": True}) == ({"anything": {"x": 1}}, [])
    assert prune_with({"x": 1}, {"type": "object", "x-kubernetes-preserve-unknown-fields": True}) == ({"x": 1}, [])
    assert prune_with({"x": 1}, {"type": "object", "properties": {}}) == ({}, ["spec.x"])
    assert prune_with("80", {"type": "array", "items": item}) == ("80", [])
    assert prune_with({"a": 1}, {"type": "array", "items": item}) == ({"a": 1}, [])  # refused as Cilium's rules are, not pruned


def test_pruning_leaves_the_object_it_was_given_as_it_was():
    from policies.verdict import crd

    policy = cnp("orders", "typo", endpointSelector={}, ingress=[{"fromEntities": ["cluster"], "toPort": [{"ports": [{"port": "1"}]}]}])
    stored, _ = crd.prune(policy)
    assert "toPort" in policy["spec"]["ingress"][0] and "toPort" not in stored["spec"]["ingress"][0]


def test_objects_that_are_not_mappings_or_lack_a_name_are_listed_by_position():
    from policies.verdict import crd

    policies, notes = crd.as_stored(["just text", {"kind": "Secret", "metadata": "x"}, {"kind": "Pod"}], "f.yaml")
    assert policies == [] and notes == [
        "f.yaml object 0: not a policy (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy): not replayed",
        "f.yaml object 1: not a policy (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy): not replayed",
        "f.yaml object 2: not a policy (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy): not replayed",
    ]


# -- the parts each verdict rests on ------------------------------------------------------------------------


def test_a_label_family_is_read_only_by_requirements_on_its_own_keys():
    from policies.verdict.identity import CLUSTER_KEY, NODE_LABELS, NS_LABELS_PREFIX, SA_KEY, label_families

    assert label_families("k8s", "app") == frozenset()
    assert label_families("any", "app") == {NODE_LABELS}
    assert label_families("k8s", SA_KEY) == {SA_KEY}
    assert label_families("k8s", CLUSTER_KEY) == {CLUSTER_KEY, NODE_LABELS}
    assert label_families("k8s", f"{NS_LABELS_PREFIX}.team") == {NS_LABELS_PREFIX}
    assert label_families("k8s", f"{NS_LABELS_PREFIX}.kubernetes.io/metadata.name") == frozenset()
    assert label_families("node", "role") == {NODE_LABELS}


def test_from_nodes_selects_the_local_node_as_well_as_remote_ones():
    control = {"node-role.kubernetes.io/control-plane": ""}
    assert decide([FROM_NODES], entity("host", node_labels=control), BACKEND, 80, settings=NODE_LABELS).allowed


def test_each_cidr_rule_selects_its_own_addresses_in_one_engine():
    web, api = Endpoint("shop", {"app": "web"}), Endpoint("shop", {"app": "api"})
    policies = [cnp("shop", "web", endpointSelector={"matchLabels": {"app": "web"}}, egress=[{"toCIDR": ["10.0.0.0/8"]}]),
                cnp("shop", "api", endpointSelector={"matchLabels": {"app": "api"}}, egress=[{"toCIDR": ["20.0.0.0/8"]}])]
    far = addresses("world 20.0.0.1", ("20.0.0.1/32",))
    engine = Engine(policies, endpoints=(web, api, far))
    assert engine.decide(api, far, 443).allowed and not engine.decide(web, far, 443).allowed


def test_a_multi_label_dns_wildcard_selects_deep_names_only_from_the_cilium_that_has_it():
    from policies.cilium_versions import CILIUM

    policy = cnp("shop", "web", endpointSelector={"matchLabels": {"app": "web"}}, egress=[{"toFQDNs": [{"matchPattern": "**.example.com"}]}])
    deep = addresses("world 20.0.0.1", ("20.0.0.1/32",), names=("a.b.example.com",))
    web = Endpoint("shop", {"app": "web"})
    by_version = {v: decide([policy], web, deep, 443, version=v).allowed for v in CILIUM}
    assert {v for v, allowed in by_version.items() if allowed} == {v for v, f in CILIUM.items() if f.multi_label_dns_wildcard}
    assert set(by_version.values()) == {True, False}


def test_an_address_peer_is_shown_by_its_name_and_an_ipv6_address_is_a_128_range():
    from policies.verdict import host_cidr

    peer = addresses("card-processor", ("198.51.100.10/32",))
    assert (peer.display, peer.namespace, peer.address) == ("card-processor", "", "198.51.100.10")
    assert host_cidr("2001:db8::1") == "2001:db8::1/128" and host_cidr("192.0.2.1") == "192.0.2.1/32"


def test_an_unenforced_direction_names_the_empty_section_and_the_rejected_policy_that_left_it_open():
    walkthrough = cnp("shop", "deny-all", endpointSelector={}, ingress=[], egress=[{}])
    broken = cnp("shop", "broken", endpointSelector={"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["x"]}]},
                 ingress=[{}])
    side = Engine([walkthrough, broken]).enforcement(Endpoint("shop", {"app": "web"}), "ingress")
    assert not side.allowed
    assert side.reason == ("ingress of shop/app=web is not enforced: no selecting rule has a non-empty ingress section "
                           "(shop/deny-all has `ingress: []`, which enforces nothing; shop/broken was rejected by Cilium: "
                           "spec.endpointSelector.matchExpressions[0].operator: 'Equals' is not In, NotIn, Exists or DoesNotExist)")


def named_ends(tmp_path, *lines: str):
    """Every end of a capture as the replay names it (the dev stack)."""
    from policies import observed
    from policies.analysis import matrix as mx
    from policies.config import load_config
    from policies.observed.ends import namer
    from policies.render import render

    cfg = load_config(DEV_CONFIG)
    obs = observed.read([write(tmp_path, *lines)])
    name = namer(cfg, mx.workload_pods(cfg, render(cfg).all()), obs)
    return {n.name: n.endpoint for c in obs.connections.values() for n in (name(c.src), name(c.dst, c.src))}


def test_a_node_end_is_judged_with_the_node_labels_its_record_carries_or_as_unknown_without_any(tmp_path):
    node = {"identity": 6, "labels": ["reserved:remote-node", "node:role=worker"]}
    bare = {"identity": 6}
    ends = named_ends(tmp_path, flow_line(node, ORDERS, "10.244.1.8", 80))
    assert ends["remote-node"].node_labels == {"role": "worker"}
    ends = named_ends(tmp_path, flow_line(bare, ORDERS, "10.244.1.8", 80))
    assert ends["remote-node"].node_labels is None
    assert ends["orders/app=orders"].unknown_labels == frozenset()


def test_a_pod_end_without_the_labels_cilium_adds_names_them_unknown(tmp_path):
    masked = labelled("orders", "orders-5d78c9869d-abcde", "app=orders")
    ends = named_ends(tmp_path, flow_line(CLIENT, masked, "10.244.1.8", 80))
    from policies.verdict.identity import CLUSTER_KEY, NS_LABELS_PREFIX, SA_KEY

    assert ends["orders/app=orders"].unknown_labels == {SA_KEY, CLUSTER_KEY, NS_LABELS_PREFIX}
    assert ends["storefront/app=client"].service_account == "default" and ends["storefront/app=client"].unknown_labels == frozenset()


def shop_ends(tmp_path, *lines: str):
    """Every end of a capture as the replay names it (the example shop): name -> Named."""
    from policies import observed
    from policies.analysis import matrix as mx
    from policies.config import load_config
    from policies.observed.ends import namer
    from policies.render import render
    from tests.capture import SHOP

    cfg = load_config(stack_config(SHOP))
    obs = observed.read([write(tmp_path, *lines)])
    name = namer(cfg, mx.workload_pods(cfg, render(cfg).all()), obs)
    return {n.name: n for c in obs.connections.values() for n in (name(c.src), name(c.dst, c.src))}


def test_each_kind_of_end_is_named_and_judged_as_the_stack_knows_it(tmp_path):
    prometheus = labelled("monitoring", "prometheus-k8s-0", "app.kubernetes.io/name=prometheus", "shard=0",
                          *cilium_labels("monitoring"))
    coredns = {"namespace": "kube-system", "pod_name": "coredns-5d78c9869d-xq2mz"}
    stranger = labelled("shop-core", "debug-x7k2p", "app=debug", *cilium_labels("shop-core"))
    web = labelled("shop-web", "web-5d78c9869d-abcde", "app=web", *cilium_labels("shop-web"))
    ends = shop_ends(tmp_path,
                     flow_line(prometheus, web, "10.244.1.9", 9090),
                     flow_line(web, coredns, "10.244.0.10", 53, proto="UDP"),
                     flow_line(stranger, web, "10.244.1.9", 8080),
                     flow_line(web, {"identity": 7, "labels": ["reserved:kube-apiserver"]}, "198.51.100.5", 443))
    peer = ends["prometheus"].endpoint
    assert (peer.namespace, peer.name, dict(peer.labels)) == ("monitoring", "prometheus",
                                                               {"app.kubernetes.io/name": "prometheus", "shard": "0"})
    dns = ends["kube-dns"].endpoint
    assert (dns.namespace, dns.name, dict(dns.labels)) == ("kube-system", "kube-dns", {"k8s-app": "kube-dns"})
    unknown = ends["shop-core/app=debug"]
    assert unknown.unknown and unknown.endpoint.namespace == "shop-core" and dict(unknown.endpoint.labels) == {"app": "debug"}
    assert ends["web"].endpoint.name == "web" and not ends["web"].unknown
    api = ends["api-server"].endpoint
    assert (api.display, api.reserved, api.outside, api.address) == ("api-server", "kube-apiserver", True, "198.51.100.5")
    assert ends["api-server"].aliases == ("api-server", "card-processor")  # the address peer that holds its address too


def test_a_deny_that_matches_only_under_an_assumed_label_leaves_the_denial_undecided():
    unknown_sa = Endpoint("shop", {"app": "api"}, unknown_labels=frozenset({"io.cilium.k8s.policy.serviceaccount"}))
    deny = {"toEndpoints": [{"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "default"}}]}
    v = decide([egress_policy(TO_API, deny=(deny,))], SRC, unknown_sa, 80)
    assert not v.allowed and not v.exact and "io.cilium.k8s.policy.serviceaccount" in v.reason


def test_default_allow_with_a_deny_that_might_match_is_undecided():
    policy = egress_policy(deny=(named("http"),))
    policy["spec"]["enableDefaultDeny"] = {"egress": False}
    v = decide([policy], SRC, DST, 80)
    assert v.allowed and not v.exact


def test_only_the_pods_whose_records_lack_the_namespace_labels_are_undecided_the_rest_stay_exact(tmp_path):
    prod = labelled("prod", "client-5d78c9869d-abcde", "app=client", *cilium_labels("prod", purpose="production"))
    dev = labelled("dev", "client-5d78c9869d-abcde", "app=client", *cilium_labels("dev", purpose="testing"))
    masked = labelled("qa", "client-5d78c9869d-abcde", "app=client")  # a record without Cilium's labels
    calls = write(tmp_path, *(flow_line(c, WEB, "10.244.1.9", 80, sport=n, src_ip=f"10.244.0.{n}") for n, c in enumerate((prod, dev, masked), 1)))
    r = replay_config(DEV_CONFIG, calls, others=(WEB_ALLOW_PROD,))[1]
    assert [(d.src, d.dst) for d in r.would_drop] == [("dev/app=client", "web/app=web")]
    assert [(d.src, d.dst) for d in r.undecided] == [("qa/app=client", "web/app=web")]
