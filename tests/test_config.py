"""Stack config: every problem is one line naming the key path and what is allowed."""

from __future__ import annotations

import json

import pytest

from policies.config import load_config
from tests.conftest import errors_of



def test_the_dev_stack_loads_as_the_walkthrough(dev_config):
    cfg = load_config(dev_config)
    assert cfg.location == "westeurope"
    assert cfg.resource_group_name == "aks-zero-trust-rg"
    assert (cfg.cluster.name, cfg.cluster.node_count) == ("aks-zero-trust", 3)
    assert {n: (w.namespace, w.port, w.replicas) for n, w in cfg.workloads.items()} == {
        "frontend": ("frontend", 80, 1),
        "backend": ("backend", 80, 1),
    }
    assert [(f.source, f.to, cfg.flow_port(f), cfg.flow_protocol(f)) for f in cfg.flows] == [
        ("frontend", "backend", 80, "TCP")
    ]


def test_config_models_are_frozen(dev_config):
    cfg = load_config(dev_config)
    with pytest.raises(Exception):
        cfg.cluster.node_count = 5


def test_structured_values_may_arrive_as_json_strings_as_the_engine_passes_them(dev_config):
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in dev_config.items()}
    assert load_config(encoded) == load_config(dev_config)


def test_a_flow_to_an_unknown_workload_names_the_key_path_and_the_workloads(dev_config):
    dev_config["zero-trust-aks:flows"][0]["to"] = "backnd"
    assert errors_of(dev_config) == [
        "zero-trust-aks:flows[0].to: 'backnd' is neither a workload nor a peer; workloads are: backend, frontend"
    ]


def test_a_flow_from_an_unknown_workload_is_reported(dev_config):
    dev_config["zero-trust-aks:flows"][0]["from"] = "web"
    assert errors_of(dev_config) == ["zero-trust-aks:flows[0].from: 'web' is neither a workload nor a peer; workloads are: backend, frontend"]


def test_every_problem_gets_its_own_line(dev_config):
    dev_config["zero-trust-aks:cluster"]["nodeCount"] = 0
    dev_config["zero-trust-aks:workloads"]["backend"]["port"] = 70000
    dev_config["zero-trust-aks:zeroTrust"] = {"defaultDeny": "egress"}
    lines = errors_of(dev_config)
    assert len(lines) == 3
    assert "zero-trust-aks:cluster.nodeCount: 0 is too small; at least 1" in lines
    assert "zero-trust-aks:workloads.backend.port: 70000 is too large; at most 65535" in lines
    assert "zero-trust-aks:zeroTrust.defaultDeny: 'egress' is not allowed; allowed: 'ingress-and-egress' or 'ingress'" in lines


def test_a_misspelt_key_is_rejected_not_ignored(dev_config):
    dev_config["zero-trust-aks:cluster"]["nodecount"] = 3
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.nodecount: unknown key (check its spelling); allowed: name, nodeCount,")


def test_an_unknown_project_key_lists_the_known_ones(dev_config):
    dev_config["zero-trust-aks:flow"] = []
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:flow: unknown config key; did you mean zero-trust-aks:flows? the project's keys are: zero-trust-aks:cluster,")


def test_a_missing_required_key_is_named(dev_config):
    del dev_config["zero-trust-aks:resourceGroupName"]
    assert errors_of(dev_config) == ["zero-trust-aks:resourceGroupName: required with zero-trust-aks:cluster"]


def test_bad_json_in_a_structured_key_is_one_line(dev_config):
    dev_config["zero-trust-aks:flows"] = "[{"
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:flows: not valid JSON")


def test_a_flow_port_the_target_does_not_serve_is_rejected(dev_config):
    dev_config["zero-trust-aks:flows"][0]["port"] = 8080
    assert errors_of(dev_config) == ["zero-trust-aks:flows[0].port: 'backend' has no port 8080; it serves: serve (80/TCP)"]


def test_http_rules_need_acns_l7_security(dev_config):
    dev_config["zero-trust-aks:flows"][0]["http"] = [{"method": "GET", "path": "/"}]
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:flows[0].http: L7 rules need zero-trust-aks:cluster.advancedNetworking.security: l7")


def test_http_rules_are_accepted_with_l7_security(dev_config):
    dev_config["zero-trust-aks:flows"][0]["http"] = [{"method": "GET", "path": "/"}]
    dev_config["zero-trust-aks:cluster"]["advancedNetworking"] = {"security": "l7"}
    assert load_config(dev_config).flows[0].http[0].method == "GET"


def test_fqdn_flows_need_acns_fqdn_security_and_a_port(dev_config):
    dev_config["zero-trust-aks:flows"].append({"from": "backend", "toFqdns": ["api.example.com"]})
    lines = errors_of(dev_config)
    assert "zero-trust-aks:flows[1].port: required with toFqdns (the port on the outside host)" in lines
    assert any(line.startswith("zero-trust-aks:flows[1].toFqdns: FQDN rules need") for line in lines)


def test_a_flow_needs_exactly_one_destination(dev_config):
    dev_config["zero-trust-aks:flows"][0]["toFqdns"] = ["api.example.com"]
    assert errors_of(dev_config) == ["zero-trust-aks:flows[0]: give exactly one of 'to' (a workload or a peer) or 'toFqdns' (outside names)"]


def test_a_duplicate_flow_is_reported(dev_config):
    dev_config["zero-trust-aks:flows"].append({"from": "frontend", "to": "backend"})
    assert errors_of(dev_config) == ["zero-trust-aks:flows[1]: the same flow as zero-trust-aks:flows[0]"]


def test_turning_entra_id_off_while_local_accounts_stay_disabled_is_refused(dev_config):
    dev_config["zero-trust-aks:cluster"]["entraId"] = None
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.disableLocalAccounts: needs zero-trust-aks:cluster.entraId")


def test_an_api_server_open_to_everyone_is_refused(dev_config):
    dev_config["zero-trust-aks:cluster"]["authorizedIpRanges"] = ["0.0.0.0/0"]
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.authorizedIpRanges[0]: 0.0.0.0/0 opens the API server to everyone")


def test_workload_identity_without_the_oidc_issuer_is_refused(dev_config):
    dev_config["zero-trust-aks:cluster"]["oidcIssuer"] = False
    assert errors_of(dev_config) == [
        "zero-trust-aks:cluster.workloadIdentity: needs zero-trust-aks:cluster.oidcIssuer: true "
        "(Entra Workload ID trusts the cluster's OIDC issuer)"
    ]


@pytest.mark.parametrize("channel", ["rapid", "stable"])
def test_an_upgrade_channel_that_changes_the_minor_version_is_refused_with_a_pinned_version(dev_config, channel):
    dev_config["zero-trust-aks:cluster"].update(kubernetesVersion="1.33", autoUpgrade={"upgradeChannel": channel})
    (line,) = errors_of(dev_config)
    assert line.startswith(f"zero-trust-aks:cluster.autoUpgrade.upgradeChannel: {channel!r} moves the cluster to newer minor versions")


def test_a_pinned_patch_version_under_an_upgrade_channel_is_refused_naming_the_minor_to_write(dev_config):
    dev_config["zero-trust-aks:cluster"]["kubernetesVersion"] = "1.33.2"
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.kubernetesVersion: '1.33.2' pins a patch that the 'patch' upgrade channel moves past")
    assert line.endswith('name the minor version only ("1.33")')


def test_a_pinned_patch_version_with_upgrades_off_is_accepted(dev_config):
    dev_config["zero-trust-aks:cluster"].update(kubernetesVersion="1.33.2", autoUpgrade={"upgradeChannel": "none"})
    assert load_config(dev_config).cluster.kubernetes_version == "1.33.2"


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("imageCleaner", {"intervalHours": 12}, "zero-trust-aks:cluster.imageCleaner.intervalHours: 12 is too small; at least 24"),
        ("autoUpgrade", {"nodeOsUpgradeChannel": "nodeimage"},
         "zero-trust-aks:cluster.autoUpgrade.nodeOsUpgradeChannel: 'nodeimage' is not allowed; allowed: 'None', 'Unmanaged', 'NodeImage' or 'SecurityPatch'"),
        ("localDns", "on", "zero-trust-aks:cluster.localDns: 'on' is not allowed; allowed: 'disabled', 'preferred' or 'required'"),
    ],
)
def test_a_production_setting_out_of_what_arm_accepts_is_one_line(dev_config, key, value, says):
    dev_config["zero-trust-aks:cluster"][key] = value
    (line,) = errors_of(dev_config)
    assert line.startswith(says), line


def test_a_malformed_cidr_is_named(dev_config):
    dev_config["zero-trust-aks:cluster"]["authorizedIpRanges"] = ["10.0.0.300/24"]
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.authorizedIpRanges[0]: '10.0.0.300/24': not a CIDR range")


def test_node_count_must_lie_within_the_autoscaling_range(dev_config):
    dev_config["zero-trust-aks:cluster"]["autoscaling"] = {"minCount": 4, "maxCount": 6}
    assert errors_of(dev_config) == [
        "zero-trust-aks:cluster.nodeCount: 3 must lie within autoscaling minCount..maxCount (4..6)"
    ]


def test_workloads_cannot_live_in_aks_managed_namespaces(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["namespace"] = "kube-system"
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:workloads.backend.namespace: 'kube-system' is managed by Kubernetes or AKS")


def test_the_app_label_is_reserved_for_the_workload_name(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["labels"] = {"app": "frontend"}
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:workloads.backend.labels.app: reserved")


def test_a_workload_name_must_be_a_dns_label(dev_config):
    dev_config["zero-trust-aks:workloads"]["Back_End"] = dev_config["zero-trust-aks:workloads"].pop("backend")
    dev_config["zero-trust-aks:flows"] = []
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:workloads.Back_End: the name 'Back_End' is not allowed; a workload name is a DNS label")


# -- where the cluster comes from, and probes ---------------------------------------------------------------


def test_a_stack_needs_exactly_one_of_an_aks_cluster_or_an_existing_one(dev_config):
    dev_config["zero-trust-aks:kubernetes"] = {"context": "kind-zero-trust"}
    assert errors_of(dev_config)[0] == (
        "zero-trust-aks:cluster: give exactly one of zero-trust-aks:cluster (an AKS cluster to create) "
        "or zero-trust-aks:kubernetes (an existing cluster running Cilium)"
    )


def test_an_existing_cluster_stack_refuses_azure_keys(dev_config):
    del dev_config["zero-trust-aks:cluster"]
    dev_config["zero-trust-aks:kubernetes"] = {"context": "kind-zero-trust", "ciliumVersion": "1.16"}
    assert errors_of(dev_config) == [
        "azure-native:location: not used with zero-trust-aks:kubernetes (no Azure resources are created); remove it",
        "zero-trust-aks:resourceGroupName: not used with zero-trust-aks:kubernetes (no Azure resources are created); remove it",
    ]
    del dev_config["azure-native:location"], dev_config["zero-trust-aks:resourceGroupName"]
    assert load_config(dev_config).cilium_version == (1, 16)


def test_probes_need_dns_to_find_their_targets(dev_config):
    dev_config["zero-trust-aks:zeroTrust"] = {"allowDns": False}
    assert errors_of(dev_config) == [
        "zero-trust-aks:zeroTrust.verify: the probes reach their targets by Service DNS name, which needs "
        "zero-trust-aks:zeroTrust.allowDns: true; allow DNS or set verify: false"
    ]
    dev_config["zero-trust-aks:zeroTrust"]["verify"] = False
    assert load_config(dev_config).zero_trust.verify is False


def test_an_unpinned_probe_image_is_refused(dev_config):
    dev_config["zero-trust-aks:zeroTrust"] = {"probeImage": "curl image"}
    (line,) = errors_of(dev_config)
    assert line == "zero-trust-aks:zeroTrust.probeImage: 'curl image' is not an image reference (name, optional :tag, @sha256:<64 hex digits>)"


def test_create_resource_group_is_refused_on_an_existing_cluster_stack(dev_config):
    for key in ("azure-native:location", "zero-trust-aks:resourceGroupName", "zero-trust-aks:cluster"):
        del dev_config[key]
    dev_config["zero-trust-aks:kubernetes"] = {"context": "kind-zero-trust"}
    dev_config["zero-trust-aks:createResourceGroup"] = False
    assert errors_of(dev_config) == [
        "zero-trust-aks:createResourceGroup: not used with zero-trust-aks:kubernetes (no Azure resources are created); remove it"
    ]
