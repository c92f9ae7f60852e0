"""The guardrail rules (policies/guardrails.py): each passes on the committed stacks and fails on a fixture built to break it."""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

from policies import guardrails as g
from tests.conftest import stack_run
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import policy_resources

CNP_TYPE = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"
CCNP_TYPE = "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy"


def resources(stack: str) -> list[g.Resource]:
    return copy.deepcopy(policy_resources(stack_run(stack)))


def levels(stack: str) -> dict[str, str]:
    return g.resolve_levels(json.loads((PROJECT_DIR / "guardrails" / "config" / f"{stack}.json").read_text()), stack)


def cnp(name: str, namespace: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> g.Resource:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = annotations
    props = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": meta, "spec": spec}
    return g.Resource(CNP_TYPE, f"{namespace}-{name}", props, f"urn:pulumi:test::p::{CNP_TYPE}::{namespace}-{name}")


def ccnp(name: str, spec: dict[str, Any]) -> g.Resource:
    props = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": name}, "spec": spec}
    return g.Resource(CCNP_TYPE, name, props)


def one(rs: list[g.Resource], kind: str, name: str, namespace: str | None = None) -> g.Resource:
    (r,) = [r for r in rs if r.kind == kind and r.object_name == name and namespace in (None, r.namespace)]
    return r


def cluster(rs: list[g.Resource]) -> g.Resource:
    (c,) = [r for r in rs if r.type == g.MANAGED_CLUSTER]
    return c


def violations(rule: str, rs: list[g.Resource]) -> list[str]:
    report = g.evaluate(rs, {**{r.name: "disabled" for r in g.RULES}, rule: "mandatory"})
    return [v.message for v in report.violations]


def without(rs: list[g.Resource], kind: str, name: str, namespace: str | None = None) -> list[g.Resource]:
    return [r for r in rs if not (r.kind == kind and r.object_name == name and (namespace is None or r.namespace == namespace))]


# -- the committed stacks ------------------------------------------------------------------------


def test_the_prod_stack_passes_every_rule_and_only_names_its_placeholder_admin_group():
    report = g.evaluate(resources("prod"), g.default_levels())
    assert [(v.rule, v.level) for v in report.violations] == [("aks-admin-group-placeholder", "advisory")] and report.excepted == ()


def test_the_dev_stack_passes_with_its_levels_and_only_warns_that_stock_nginx_runs_as_root():
    report = g.evaluate(resources("dev"), levels("dev"))
    assert report.ok
    assert {(v.rule, v.level, v.resource) for v in report.violations} == {
        ("workload-non-root", "advisory", "Deployment frontend/frontend"),
        ("workload-non-root", "advisory", "Deployment backend/backend"),
        ("aks-production-hardening", "advisory", "ManagedCluster aks-zero-trust"),  # no Defender on dev
    }


PRODUCTION_ONLY = ("aks-api-server-restricted", "aks-production-hardening", "aks-admin-group-placeholder")


@pytest.mark.parametrize("rule", [r.name for r in g.RULES if r.name not in (*PRODUCTION_ONLY, "workload-non-root")])
def test_each_rule_not_scoped_to_production_passes_on_the_dev_stack(rule):
    assert violations(rule, resources("dev")) == []


# -- aks-cilium-dataplane ------------------------------------------------------------------------


def test_a_cluster_without_the_cilium_dataplane_is_refused_naming_the_field():
    rs = resources("dev")
    cluster(rs).props["networkProfile"]["networkDataplane"] = "azure"
    assert violations("aks-cilium-dataplane", rs) == [
        "ManagedCluster aks-zero-trust: networkProfile.networkDataplane is 'azure'; set it to 'cilium' "
        "(Azure CNI powered by Cilium is what enforces the CiliumNetworkPolicies)"
    ]


def test_a_cluster_with_kubenet_and_no_network_policy_fails_once_per_field():
    rs = resources("dev")
    network = cluster(rs).props["networkProfile"]
    network["networkPlugin"] = "kubenet"
    del network["networkPolicy"]
    found = violations("aks-cilium-dataplane", rs)
    assert [m.split(":")[1].split(" is ")[0].strip() for m in found] == ["networkProfile.networkPlugin", "networkProfile.networkPolicy"]


# -- namespace-default-deny ----------------------------------------------------------------------------

WALKTHROUGH_DENY = {"endpointSelector": {}, "ingress": []}


def test_the_walkthroughs_ingress_empty_list_is_flagged_as_enforcing_nothing():
    rs = without(resources("dev"), "CiliumNetworkPolicy", "zt-default-deny")
    cluster(rs).props["kubernetesVersion"] = "1.30"  # Cilium 1.14 accepts the policy, and ignores it
    rs.append(cnp("default-deny", "backend", WALKTHROUGH_DENY))
    found = violations("namespace-default-deny", rs)
    assert (
        "Namespace backend: ingress of backend/stranger is not enforced: no selecting rule has a "
        "non-empty ingress section (backend/default-deny has `ingress: []`, which enforces nothing)"
    ) in [m.split("; add")[0] for m in found]


def test_the_walkthroughs_policy_is_flagged_as_rejected_where_cilium_rejects_it():
    rs = without(resources("dev"), "CiliumNetworkPolicy", "zt-default-deny")
    rs.append(cnp("default-deny", "backend", WALKTHROUGH_DENY))
    found = [m for m in violations("namespace-default-deny", rs) if m.startswith("Namespace backend: ingress")]
    assert len(found) == 1 and "backend/default-deny was rejected by Cilium" in found[0]


def test_a_namespace_without_egress_default_deny_is_flagged_with_the_fix():
    rs = resources("dev")
    one(rs, "CiliumNetworkPolicy", "zt-default-deny", "frontend").props["spec"].pop("egress")
    (found,) = violations("namespace-default-deny", rs)
    assert found.startswith("Namespace frontend: egress of frontend/stranger is not enforced")
    assert found.endswith("add a CiliumNetworkPolicy with endpointSelector: {} and egress: [{}] (zero-trust-aks:zeroTrust.defaultDeny: ingress-and-egress)")


def test_default_deny_switched_off_with_enable_default_deny_false_is_flagged():
    rs = resources("dev")
    for r in rs:
        if r.kind == "CiliumNetworkPolicy" and r.namespace == "backend":
            r.props["spec"]["enableDefaultDeny"] = {"ingress": False, "egress": False}
    found = violations("namespace-default-deny", rs)
    assert len(found) == 2 and all("is enforced but default-allow" in m for m in found)


def test_a_workload_left_out_by_the_deny_selector_is_flagged_by_name():
    rs = without(resources("dev"), "CiliumNetworkPolicy", "zt-allow.backend")
    deny = one(rs, "CiliumNetworkPolicy", "zt-default-deny", "backend")
    deny.props["spec"]["endpointSelector"] = {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["backend"]}]}
    found = violations("namespace-default-deny", rs)
    assert sorted(f.split(" is not enforced")[0] for f in found) == [
        "Namespace backend: egress of backend/Deployment backend",
        "Namespace backend: ingress of backend/Deployment backend",
    ]


TODAY = datetime.date(2026, 6, 1)


def waiver(rule: str, resource: str, expires: str = "2026-12-31", **extra: Any) -> g.Waivers:
    entry = {"rule": rule, "resource": resource, "reason": "legacy app, ticket NET-42", "owner": "team-a@example.com", "expires": expires, **extra}
    exceptions = g.parse_exceptions({"exceptions": [entry]}, "exceptions.yaml", g.BY_NAME)
    return g.Waivers(exceptions, stack="dev", today=TODAY)


def test_a_reviewed_exception_waives_default_deny_for_that_namespace_and_is_reported_with_owner_and_expiry():
    rs = without(resources("dev"), "CiliumNetworkPolicy", "zt-default-deny", "backend")
    report = g.evaluate(rs, levels("dev"), waiver("namespace-default-deny", "Namespace backend"))
    assert not [v for v in report.violations if v.rule == "namespace-default-deny"]
    assert {(e.rule, e.resource, e.reason, e.owner, e.expires) for e in report.excepted} == {
        ("namespace-default-deny", "Namespace backend", "legacy app, ticket NET-42", "team-a@example.com", "2026-12-31")
    }


def test_an_expired_exception_is_a_violation_that_says_so():
    rs = without(resources("dev"), "CiliumNetworkPolicy", "zt-default-deny", "backend")
    report = g.evaluate(rs, levels("dev"), waiver("namespace-default-deny", "Namespace backend", expires="2026-05-31"))
    found = [v.message for v in report.violations if v.rule == "namespace-default-deny"]
    assert found and all("expired on 2026-05-31; renew or remove it in guardrails/exceptions.yaml" in m for m in found)
    assert report.excepted == ()


def test_an_exception_for_another_stack_does_not_apply():
    rs = without(resources("dev"), "CiliumNetworkPolicy", "zt-default-deny", "backend")
    report = g.evaluate(rs, levels("dev"), waiver("namespace-default-deny", "Namespace backend", stacks=["prod"]))
    assert [v for v in report.violations if v.rule == "namespace-default-deny"] and report.excepted == ()


def test_an_annotation_on_the_object_no_longer_waives_anything():
    rs = without(resources("dev"), "CiliumNetworkPolicy", "zt-default-deny", "backend")
    one(rs, "Namespace", "backend").props["metadata"]["annotations"] = {"zero-trust-aks/exception": "trust me"}
    assert violations("namespace-default-deny", rs)


def test_a_level_file_can_refuse_every_exception_for_a_rule():
    r = cnp("lb", "backend", {"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}]})
    w = waiver("no-broad-peers", "CiliumNetworkPolicy backend/lb")
    strict = g.Waivers(w.exceptions, "prod", TODAY, g.unexceptable({"no-broad-peers": {"enforcementLevel": "mandatory", "exceptable": False}}))
    (v,) = g.evaluate([r], None, strict).violations
    assert v.rule == "no-broad-peers" and "this stack accepts none for no-broad-peers" in v.message


def test_the_prod_level_file_refuses_exceptions_to_broad_peers():
    doc = json.loads((PROJECT_DIR / "guardrails" / "config" / "prod.json").read_text())
    assert "no-broad-peers" in g.unexceptable(doc)


def test_a_bad_exceptions_file_gets_one_line_per_problem():
    doc = {"exceptions": [
        {"rule": "no-such-rule", "resource": "x", "reason": "r", "owner": "o", "expires": "2026-01-01"},
        {"rule": "aks-cilium-dataplane", "resource": "ManagedCluster c", "reason": "r", "owner": "o", "expires": "2026-01-01"},
        {"rule": "no-broad-peers", "resource": "CiliumNetworkPolicy a/b", "reason": " ", "expires": "soon", "ticket": 1},
    ]}
    with pytest.raises(g.ExceptionsFileError) as e:
        g.parse_exceptions(doc, "exceptions.yaml", g.BY_NAME)
    assert e.value.lines == [
        "exceptions.yaml: exceptions[0].rule: 'no-such-rule' is not a guardrail; the guardrails are: " + ", ".join(g.BY_NAME),
        "exceptions.yaml: exceptions[1].rule: aks-cilium-dataplane cannot be waived; fix the resource instead",
        "exceptions.yaml: exceptions[2].ticket: unknown key; allowed: rule, resource, reason, owner, expires, stacks",
        "exceptions.yaml: exceptions[2].owner: required",
        "exceptions.yaml: exceptions[2].reason: must be a non-empty string",
        "exceptions.yaml: exceptions[2].expires: 'soon' is not a date (YYYY-MM-DD)",
    ]


def test_the_committed_exceptions_file_is_valid():
    import yaml

    doc = yaml.safe_load((PROJECT_DIR / g.EXCEPTIONS_FILE).read_text())
    assert g.parse_exceptions(doc, g.EXCEPTIONS_FILE, g.BY_NAME)


# -- no-broad-peers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section, entry, why",
    [
        ("ingress", {"fromEntities": ["world"]}, "fromEntities: [world] allows the whole internet"),
        ("egress", {"toEntities": ["all"]}, "toEntities: [all] allows every endpoint"),
        ("ingress", {"fromEntities": ["cluster"]}, "fromEntities: [cluster] allows every pod and node"),
        ("egress", {"toCIDR": ["0.0.0.0/0"]}, "toCIDR: 0.0.0.0/0 allows the whole internet"),
        ("egress", {"toCIDRSet": [{"cidr": "::/0"}]}, "toCIDRSet: ::/0 allows the whole internet"),
        (
            "ingress",
            {"fromEndpoints": [{"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}]}]},
            "fromEndpoints[0] selects pods in every namespace",
        ),
        ("ingress", {"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}, "a rule with toPorts and no peer allows every peer"),
    ],
)
def test_a_policy_that_opens_to_everyone_is_flagged(section, entry, why):
    (found,) = violations("no-broad-peers", [cnp("open", "backend", {"endpointSelector": {}, section: [entry]})])
    assert found.startswith(f"CiliumNetworkPolicy backend/open spec.{section}[0]: {why}")


def test_a_clusterwide_policy_allowing_a_label_from_any_namespace_is_flagged():
    (found,) = violations("no-broad-peers", [ccnp("any-ns", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "x"}}]}]})])
    assert found.startswith("CiliumClusterwideNetworkPolicy any-ns spec.ingress[0]: fromEndpoints[0] selects pods in every namespace")


def test_peers_scoped_to_a_namespace_and_deny_rules_against_the_world_are_fine():
    rs = [
        cnp("same-ns", "backend", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}),
        cnp("ns-labels", "backend", {"endpointSelector": {}, "ingress": [{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.namespace.labels.team": "a"}}]}]}),
        cnp("deny-world", "backend", {"endpointSelector": {}, "egressDeny": [{"toEntities": ["world"]}]}),
        ccnp("dns", {"endpointSelector": {}, "egress": [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}]}]}),
    ]
    assert violations("no-broad-peers", rs) == []


def test_an_excepted_broad_policy_is_reported_as_excepted_not_as_a_violation():
    r = cnp("lb", "backend", {"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}]})
    report = g.evaluate([r], None, waiver("no-broad-peers", "CiliumNetworkPolicy backend/lb"))
    assert report.violations == () and [(e.rule, e.resource) for e in report.excepted] == [("no-broad-peers", "CiliumNetworkPolicy backend/lb")]


# -- l7-needs-acns and no-l7-in-ccnp ----------------------------------------------------------------------------

HTTP_INGRESS = {
    "endpointSelector": {"matchLabels": {"app": "backend"}},
    "ingress": [{"fromEndpoints": [{}], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]}],
}
FQDN_EGRESS = {"endpointSelector": {}, "egress": [{"toFQDNs": [{"matchName": "example.com"}], "toPorts": [{"ports": [{"port": "443"}]}]}]}


def with_acns(rs: list[g.Resource], level: str | None) -> list[g.Resource]:
    network = cluster(rs).props["networkProfile"]
    if level is None:
        network.pop("advancedNetworking", None)
    else:
        network["advancedNetworking"] = {"enabled": True, "security": {"enabled": True, "advancedNetworkPolicies": level}}
    return rs


def test_http_rules_on_a_cluster_without_acns_security_are_refused_with_the_setting_to_change():
    (found,) = violations("l7-needs-acns", with_acns(resources("dev"), None) + [cnp("http", "backend", HTTP_INGRESS)])
    assert found == (
        "CiliumNetworkPolicy backend/http spec.ingress[0].toPorts[0]: rules.http needs Advanced Container Networking "
        "security L7 on ManagedCluster aks-zero-trust (now None), or AKS rejects the policy; set "
        "networkProfile.advancedNetworking.security.advancedNetworkPolicies: L7 "
        "(zero-trust-aks:cluster.advancedNetworking.security: l7) or drop the rule"
    )


def test_http_rules_need_l7_and_fqdn_rules_are_enough_for_fqdn():
    policies = [cnp("http", "backend", HTTP_INGRESS), cnp("fqdn", "frontend", FQDN_EGRESS)]
    fqdn = violations("l7-needs-acns", with_acns(resources("dev"), "FQDN") + policies)
    assert [m.split(":")[0] for m in fqdn] == ["CiliumNetworkPolicy backend/http spec.ingress[0].toPorts[0]"]
    assert violations("l7-needs-acns", with_acns(resources("dev"), "L7") + policies) == []


def test_security_enabled_without_a_level_means_fqdn_as_in_arm():
    rs = resources("dev")
    cluster(rs).props["networkProfile"]["advancedNetworking"] = {"enabled": True, "security": {"enabled": True}}
    assert violations("l7-needs-acns", rs + [cnp("fqdn", "frontend", FQDN_EGRESS)]) == []


def test_l7_rules_without_an_aks_cluster_in_the_stack_are_left_to_that_clusters_cilium():
    assert violations("l7-needs-acns", [cnp("http", "backend", HTTP_INGRESS)]) == []


def test_l7_rules_in_a_clusterwide_policy_are_refused_but_namespaced_ones_are_not():
    (found,) = violations("no-l7-in-ccnp", [ccnp("http", HTTP_INGRESS), cnp("http", "backend", HTTP_INGRESS)])
    assert found.startswith("CiliumClusterwideNetworkPolicy http spec.ingress[0].toPorts[0]: rules.http in a CiliumClusterwideNetworkPolicy")


# -- cilium-version-fields ---------------------------------------------------------------------------------------

RANGE = {"endpointSelector": {}, "egress": [{"toEndpoints": [{}], "toPorts": [{"ports": [{"port": "8000", "endPort": 8100, "protocol": "TCP"}]}]}]}
SOFT = {"endpointSelector": {}, "enableDefaultDeny": {"egress": False}, "egress": [{"toEndpoints": [{}]}]}


def test_end_port_and_enable_default_deny_are_refused_on_kubernetes_1_30():
    rs = resources("dev")
    cluster(rs).props["kubernetesVersion"] = "1.30"
    found = violations("cilium-version-fields", rs + [cnp("range", "backend", RANGE), cnp("soft", "backend", SOFT)])
    assert len(found) == 2
    assert "backend/range spec.egress[0].toPorts[0].ports[0]: endPort is dropped by the CRD of Cilium 1.14 (what AKS ships with Kubernetes 1.30), so the range shrinks to port 8000" in found[0]
    assert "backend/soft spec: enableDefaultDeny is dropped" in found[1]


def test_end_port_and_enable_default_deny_are_fine_from_kubernetes_1_31():
    rs = resources("dev")
    cluster(rs).props["kubernetesVersion"] = "1.31"
    assert violations("cilium-version-fields", rs + [cnp("range", "backend", RANGE), cnp("soft", "backend", SOFT)]) == []


# -- workloads -------------------------------------------------------------------------------------------------------------


def prod_backend() -> tuple[list[g.Resource], dict[str, Any]]:
    rs = resources("prod")
    d = one(rs, "Deployment", "backend")
    return rs, d.props["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    "rule, breaks, says",
    [
        ("workload-non-root", lambda pod: pod["securityContext"].pop("runAsNonRoot") and pod["containers"][0]["securityContext"].pop("runAsNonRoot")
         and pod["containers"][0]["securityContext"].pop("runAsUser"), "container 'backend' may run as root"),
        ("workload-known-user", lambda pod: pod["containers"][0]["securityContext"].pop("runAsUser"),
         "container 'backend' must run as non-root but names no user, so it starts only if its image's own user is a non-root UID"),
        ("workload-non-root", lambda pod: pod["containers"][0]["securityContext"].update(runAsNonRoot=False, runAsUser=0) or pod["securityContext"].pop("runAsNonRoot"), "container 'backend' runs as root (runAsUser: 0)"),
        ("workload-no-privilege-escalation", lambda pod: pod["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), "container 'backend' may escalate privileges"),
        ("workload-no-privilege-escalation", lambda pod: pod["containers"][0]["securityContext"].update(privileged=True), "container 'backend' is privileged"),
        ("workload-resource-limits", lambda pod: pod["containers"][0]["resources"]["limits"].pop("memory"), "container 'backend' has no memory limit"),
        ("workload-no-service-account-token", lambda pod: pod.pop("automountServiceAccountToken"), "its pods get a service-account token they did not ask for"),
    ],
)
def test_a_weakened_workload_is_flagged_by_its_rule(rule, breaks, says):
    rs, pod = prod_backend()
    breaks(pod)
    (found,) = violations(rule, rs)
    assert found.startswith(f"Deployment backend/backend: {says}")


def test_workload_rules_are_advisory_by_default_and_mandatory_in_prod():
    rs, pod = prod_backend()
    pod["containers"][0]["securityContext"].pop("allowPrivilegeEscalation")
    rule = "workload-no-privilege-escalation"
    assert [v.level for v in g.evaluate(rs).violations if v.rule == rule] == ["advisory"]
    assert [v.level for v in g.evaluate(rs, levels("prod")).violations if v.rule == rule] == ["mandatory"]


def test_a_cronjobs_pod_template_is_checked_too():
    job = g.Resource(
        "kubernetes:batch/v1:CronJob",
        "report",
        {"kind": "CronJob", "metadata": {"name": "report", "namespace": "backend"},
         "spec": {"jobTemplate": {"spec": {"template": {"spec": {"automountServiceAccountToken": False, "containers": [{"name": "r", "securityContext": {"allowPrivilegeEscalation": False}}]}}}}}},
    )
    assert violations("workload-resource-limits", [job]) == [
        "CronJob backend/report: container 'r' has no cpu or memory limit; set resources.limits.cpu and .memory (zero-trust-aks:workloads.<name>.resources)"
    ]


# -- production clusters -----------------------------------------------------------------------------------------------------


def test_the_dev_cluster_has_entra_id_only_and_would_fail_the_production_api_server_rule():
    rs = resources("dev")
    assert violations("aks-entra-id-only", rs) == []
    (found,) = violations("aks-api-server-restricted", rs)
    assert found.startswith("ManagedCluster aks-zero-trust: the API server is open to the internet")


def test_a_cluster_with_local_accounts_fails_entra_id_only():
    rs = resources("dev")
    cluster(rs).props["disableLocalAccounts"] = False
    (found,) = violations("aks-entra-id-only", rs)
    assert "local accounts are enabled" in found


@pytest.mark.parametrize(
    "path, value, says",
    [
        (("addonProfiles", "azurepolicy", "enabled"), False, "the Azure Policy add-on is off"),
        (("securityProfile", "imageCleaner", "enabled"), False, "the image cleaner is off"),
        (("autoUpgradeProfile", "upgradeChannel"), "none", "Kubernetes is never patched automatically"),
        (("autoUpgradeProfile", "nodeOSUpgradeChannel"), "Unmanaged", "the node OS channel 'Unmanaged'"),
        (("apiServerAccessProfile", "disableRunCommand"), False, "run command is on"),
    ],
)
def test_each_production_setting_prod_lacks_is_one_line_naming_its_config_key(path, value, says):
    rs = resources("prod")
    props = cluster(rs).props
    for key in path[:-1]:
        props = props[key]
    props[path[-1]] = value
    (found,) = violations("aks-production-hardening", rs)
    assert found.startswith(f"ManagedCluster aks-zero-trust-prod: {says}") and "(zero-trust-aks:cluster." in found


def test_prod_without_defender_fails_production_hardening():
    rs = resources("prod")
    del cluster(rs).props["securityProfile"]["defender"]
    (found,) = violations("aks-production-hardening", rs)
    assert "Defender for Containers is off" in found and "zero-trust-aks:cluster.defender: true" in found


def test_the_placeholder_admin_group_is_named_and_a_real_group_is_not():
    rs = resources("prod")
    (found,) = violations("aks-admin-group-placeholder", rs)
    assert "00000000-0000-0000-0000-000000000000" in found
    cluster(rs).props["aadProfile"]["adminGroupObjectIDs"] = ["4b2c8f1e-9d3a-4c6b-8e7f-1a2b3c4d5e6f"]
    assert violations("aks-admin-group-placeholder", rs) == []


def test_an_authorized_range_of_everyone_is_refused_and_a_private_cluster_passes():
    rs = resources("prod")
    access = cluster(rs).props["apiServerAccessProfile"]
    access["authorizedIPRanges"] = ["0.0.0.0/0"]
    (found,) = violations("aks-api-server-restricted", rs)
    assert "authorizedIPRanges contains 0.0.0.0/0, which is everyone" in found
    cluster(rs).props["apiServerAccessProfile"] = {"enablePrivateCluster": True}
    assert violations("aks-api-server-restricted", rs) == []


def test_entra_id_without_azure_rbac_is_refused():
    rs = resources("prod")
    cluster(rs).props["aadProfile"]["enableAzureRBAC"] = False
    (found,) = violations("aks-entra-id-only", rs)
    assert "set aadProfile.enableAzureRBAC: true" in found


# -- levels --------------------------------------------------------------------------------------------------------------------


def test_levels_follow_crossguard_config_all_first_then_each_rule():
    got = g.resolve_levels({"all": {"enforcementLevel": "advisory"}, "no-broad-peers": "mandatory"}, "x.json")
    assert got["no-broad-peers"] == "mandatory" and {v for k, v in got.items() if k != "no-broad-peers"} == {"advisory"}


def test_a_bad_level_file_gets_one_line_per_problem():
    with pytest.raises(g.LevelConfigError) as e:
        g.resolve_levels({"no-broad-peer": "mandatory", "aks-cilium-dataplane": {"enforcementLevel": "strict"}, "all": {"level": "x"}}, "c.json")
    assert len(e.value.lines) == 4
    assert e.value.lines[0].startswith("c.json: no-broad-peer: not a guardrail; the guardrails are: all, aks-cilium-dataplane")
    assert e.value.lines[1] == "c.json: aks-cilium-dataplane.enforcementLevel: 'strict' is not allowed; allowed: mandatory, advisory, disabled"
    assert e.value.lines[2] == "c.json: all.level: unknown setting; the settings are: enforcementLevel, exceptable"


@pytest.mark.parametrize("path", sorted((PROJECT_DIR / "guardrails" / "config").glob("*.json")), ids=lambda p: p.name)
def test_every_committed_level_file_is_valid_and_belongs_to_a_stack(path):
    assert (PROJECT_DIR / f"Pulumi.{path.stem}.yaml").exists()
    assert set(g.resolve_levels(json.loads(path.read_text()), path.name)) == set(g.BY_NAME)
