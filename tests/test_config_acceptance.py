"""What Azure and the API server would reject at `pulumi up` is rejected before anything is registered.

One test per class of problem; each asserts the exact key path and what is allowed.
"""

from __future__ import annotations

from zerotrust.mockrun import PROJECT_DIR

import pytest

from policies.config import load_config
from tests.conftest import errors_of
from policies.config.limits import MAX_FLOWS, MAX_WORKLOADS



def cluster(dev_config) -> dict:
    return dev_config["zero-trust-aks:cluster"]


# -- ARM --------------------------------------------------------------------------------------------


def test_a_cluster_name_that_makes_an_invalid_dns_prefix_is_refused(dev_config):
    cluster(dev_config)["name"] = "aks_zero_trust"
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.name: the DNS prefix AKS derives from it, 'aks_zero_trust', must be 1-54")


def test_a_cluster_name_longer_than_a_dns_prefix_allows_is_refused(dev_config):
    cluster(dev_config)["name"] = "a" * 55
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.name: the DNS prefix AKS derives from it")


def test_the_dns_service_ip_must_lie_inside_the_service_range(dev_config):
    cluster(dev_config).update(serviceCidr="10.1.0.0/16", dnsServiceIp="10.2.0.10")
    assert errors_of(dev_config) == ["zero-trust-aks:cluster.dnsServiceIp: 10.2.0.10 must lie inside serviceCidr 10.1.0.0/16"]


def test_the_dns_service_ip_cannot_be_the_first_address_of_the_service_range(dev_config):
    cluster(dev_config).update(serviceCidr="10.1.0.0/16", dnsServiceIp="10.1.0.1")
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.dnsServiceIp: 10.1.0.1 is the first address of serviceCidr 10.1.0.0/16")


def test_pod_and_service_ranges_may_not_overlap(dev_config):
    cluster(dev_config).update(networkPluginMode="overlay", podCidr="10.0.0.0/14")
    assert errors_of(dev_config) == ["zero-trust-aks:cluster.podCidr: pod range 10.0.0.0/14 overlaps serviceCidr 10.0.0.0/16"]


def test_a_range_overlapping_the_vnet_aks_creates_is_refused(dev_config):
    cluster(dev_config).update(serviceCidr="10.224.0.0/16", dnsServiceIp="10.224.0.10")
    assert errors_of(dev_config) == [
        "zero-trust-aks:cluster.serviceCidr: 10.224.0.0/16 overlaps 10.224.0.0/12, the VNet AKS creates for the nodes"
    ]


def test_ranges_aks_reserves_are_refused(dev_config):
    cluster(dev_config).update(serviceCidr="172.30.0.0/16", dnsServiceIp="172.30.0.10")
    assert errors_of(dev_config) == ["zero-trust-aks:cluster.serviceCidr: 172.30.0.0/16 overlaps 172.30.0.0/16, which AKS reserves"]


def test_more_than_200_authorized_ranges_are_refused(dev_config):
    cluster(dev_config)["authorizedIpRanges"] = [f"203.0.{i // 250}.{i % 250}/32" for i in range(201)]
    assert errors_of(dev_config) == ["zero-trust-aks:cluster.authorizedIpRanges: has 201 items; at most 200"]


def test_entra_id_group_and_tenant_ids_must_be_guids(dev_config):
    cluster(dev_config)["entraId"] = {"adminGroupObjectIds": ["admins"], "tenantId": "contoso.onmicrosoft.com"}
    lines = errors_of(dev_config)
    assert [line.split(":")[1].split(" ")[0] for line in lines] == ["cluster.entraId.adminGroupObjectIds[0]", "cluster.entraId.tenantId"]
    assert all("is not a GUID (8-4-4-4-12 hexadecimal digits" in line for line in lines)


def test_kubernetes_versions_without_documented_cilium_are_refused_with_the_known_ones(dev_config):
    cluster(dev_config)["kubernetesVersion"] = "1.28"
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:cluster.kubernetesVersion: '1.28': AKS documents no Cilium for Kubernetes 1.28;")
    assert "1.29, 1.30, 1.31" in line


def test_an_unquoted_kubernetes_version_gets_the_hint_to_quote_exactly_what_was_written(tmp_path, capsys):
    from zerotrust.__main__ import main

    path = tmp_path / "Pulumi.v.yaml"
    path.write_text((PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("nodeCount: 3", "nodeCount: 3\n    kubernetesVersion: 1.30"))
    assert main(["plan", "--stack", "v", "--stack-file", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        'error: zero-trust-aks:cluster.kubernetesVersion: must be a string, not a number 1.3 '
        '(YAML reads an unquoted 1.30 as the number 1.3; quote it: "1.30")'
    )


# -- the API server ---------------------------------------------------------------------------------------


def test_resource_quantities_must_be_kubernetes_quantities(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["resources"] = {"memoryLimit": "128MB"}
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:workloads.backend.resources.memoryLimit: '128MB' is not a Kubernetes quantity")


def test_a_request_above_its_limit_is_refused(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["resources"] = {"cpuRequest": "1", "cpuLimit": "500m"}
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:workloads.backend.resources.cpuRequest: 1 is above cpuLimit 500m")


def test_label_keys_follow_the_prefix_and_name_limits(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["labels"] = {("a" * 254) + "/tier": "x", "team/" + "n" * 64: "y"}
    lines = errors_of(dev_config)
    assert len(lines) == 2
    assert "must be a DNS subdomain of at most 253 characters" in lines[0] or "must be a DNS subdomain of at most 253 characters" in lines[1]
    assert any("must be 1-63 characters" in line for line in lines)


def test_a_workload_that_gets_a_service_must_have_a_dns_1035_name(dev_config):
    dev_config["zero-trust-aks:workloads"]["1backend"] = dev_config["zero-trust-aks:workloads"].pop("backend")
    dev_config["zero-trust-aks:flows"][0]["to"] = "1backend"
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:workloads.1backend: '1backend' names the workload's Service, and Service names must start with a letter")


@pytest.mark.parametrize("namespace", ["default", "kube-node-lease", "kube-anything", "app-routing-system", "gatekeeper-system"])
def test_namespaces_kubernetes_or_aks_own_are_refused(dev_config, namespace):
    dev_config["zero-trust-aks:workloads"]["backend"]["namespace"] = namespace
    assert errors_of(dev_config) == [
        f"zero-trust-aks:workloads.backend.namespace: {namespace!r} is managed by Kubernetes or AKS; choose your own namespace"
    ]


def test_http_paths_must_be_re2_expressions(dev_config):
    cluster(dev_config)["advancedNetworking"] = {"security": "l7"}
    dev_config["zero-trust-aks:flows"][0]["http"] = [{"method": "POST", "path": "/charge(?=/now)"}]
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:flows[0].http[0].path: '/charge(?=/now)' is not an RE2 regular expression")


def test_http_methods_must_be_http_methods(dev_config):
    cluster(dev_config)["advancedNetworking"] = {"security": "l7"}
    dev_config["zero-trust-aks:flows"][0]["http"] = [{"method": "FETCH"}]
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:flows[0].http[0].method: 'FETCH' is not allowed; allowed: 'GET', 'HEAD', 'POST'")


def test_the_probe_image_must_be_pinned_by_digest(dev_config):
    dev_config["zero-trust-aks:zeroTrust"] = {"probeImage": "curlimages/curl:8.11.1"}
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:zeroTrust.probeImage: 'curlimages/curl:8.11.1': must be pinned by digest")


# -- outside names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["*.co.uk", "*.blob.core.windows.net", "*.vault.azure.net", "*.azurewebsites.net"])
def test_wildcards_on_public_suffixes_or_shared_domains_are_refused(dev_config, pattern):
    cluster(dev_config)["advancedNetworking"] = {"security": "fqdn"}
    dev_config["zero-trust-aks:flows"].append({"from": "backend", "toFqdns": [pattern], "port": 443})
    (line,) = errors_of(dev_config)
    assert line.startswith(f"zero-trust-aks:flows[1].toFqdns[0]: {pattern!r}: would match every tenant's host under the shared suffix")


def test_a_wildcard_under_ones_own_domain_is_accepted(dev_config):
    cluster(dev_config)["advancedNetworking"] = {"security": "fqdn"}
    dev_config["zero-trust-aks:flows"].append({"from": "backend", "toFqdns": ["*.shop.blob.core.windows.net", "api.stripe.com"], "port": 443})
    assert load_config(dev_config).flows[1].to_fqdns == ("*.shop.blob.core.windows.net", "api.stripe.com")


# -- size ------------------------------------------------------------------------------------------------------


def test_a_stack_with_too_many_workloads_is_refused_up_front_naming_the_limit(dev_config):
    template = dev_config["zero-trust-aks:workloads"]["backend"]
    dev_config["zero-trust-aks:workloads"] = {f"w{i}": dict(template) for i in range(MAX_WORKLOADS + 1)}
    assert errors_of(dev_config) == [
        f"zero-trust-aks:workloads: {MAX_WORKLOADS + 1} workloads; at most {MAX_WORKLOADS} per stack, so a plan stays "
        "bounded in time (split the estate into several stacks)"
    ]


def test_a_stack_with_too_many_flows_is_refused_up_front(dev_config):
    dev_config["zero-trust-aks:flows"] = [{"from": "frontend", "to": "backend"}] * (MAX_FLOWS + 1)
    (line,) = errors_of(dev_config)
    assert line.startswith(f"zero-trust-aks:flows: {MAX_FLOWS + 1} flows; at most {MAX_FLOWS} per stack")


def test_a_value_that_expands_beyond_the_size_limit_is_refused_without_walking_it_all(dev_config):
    layer: list = ["x"] * 10
    for _ in range(8):  # what a YAML alias bomb becomes: 10**8 leaves sharing a few lists
        layer = [layer] * 10
    dev_config["zero-trust-aks:flows"] = layer
    (line,) = errors_of(dev_config)
    assert line.startswith("config: more than 200000 values in all")


# -- every problem at once, in the project's words -----------------------------------------------------------


def test_a_bad_field_does_not_hide_an_unknown_flow_target(dev_config):
    cluster(dev_config)["nodeCount"] = 0
    dev_config["zero-trust-aks:flows"][0]["to"] = "backnd"
    assert errors_of(dev_config) == [
        "zero-trust-aks:cluster.nodeCount: 0 is too small; at least 1",
        "zero-trust-aks:flows[0].to: 'backnd' is neither a workload nor a peer; workloads are: backend, frontend",
    ]


def test_a_broken_workload_is_not_reported_as_unknown_by_the_flows_that_name_it(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["port"] = "eighty"
    assert errors_of(dev_config) == ["zero-trust-aks:workloads.backend.port: must be a whole number, not a string 'eighty'"]


def test_a_yaml_boolean_where_a_string_belongs_gets_a_quoting_hint(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["namespace"] = True  # `namespace: on`
    (line,) = errors_of(dev_config)
    assert line == (
        "zero-trust-aks:workloads.backend.namespace: must be a string, not true/false True "
        "(YAML reads yes/no/on/off/true/false as true/false; quote the value)"
    )


def test_a_date_anywhere_is_one_line_with_a_hint(dev_config):
    import datetime

    dev_config["zero-trust-aks:workloads"]["backend"]["labels"] = {"since": datetime.date(2026, 1, 2)}
    assert errors_of(dev_config) == [
        "zero-trust-aks:workloads.backend.labels.since: YAML read 2026-01-02 as a date; quote it if you meant a string"
    ]


def test_a_non_string_key_is_one_line_with_a_hint(dev_config):
    dev_config["zero-trust-aks:workloads"][True] = dev_config["zero-trust-aks:workloads"].pop("frontend")  # `on:`
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:workloads: the key True must be a string (YAML reads on/off/yes/no as true/false")


def test_config_that_is_not_a_mapping_is_one_line():
    assert errors_of(["not", "a", "mapping"]) == ["config: must be a mapping of config keys to values, not list"]


def test_null_for_a_structured_key_says_to_remove_it(dev_config):
    dev_config["zero-trust-aks:zeroTrust"] = None
    assert errors_of(dev_config) == [
        "zero-trust-aks:zeroTrust: must be a mapping, not null (remove the key to use the default)"
    ]
