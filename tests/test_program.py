"""The whole Pulumi program under the mock engine: what it registers, and how it is wired."""

from __future__ import annotations

from collections import Counter

import pulumi
import pytest
import yaml

from components.aks_cluster import non_interactive_kubeconfig
from tests.conftest import stack_run, with_config
from zerotrust.mockrun import fake_kubeconfig, run_program, unwrap_secrets

SECRET_SIG = "4dabf18193072939515e22adb298388d"


def kinds(run) -> Counter:
    return Counter(r.type for r in run.resources if r.custom)


def test_the_dev_stack_registers_exactly_the_walkthrough_resources_plus_policies_and_gate():
    assert kinds(stack_run("dev")) == Counter(
        {
            "azure-native:resources:ResourceGroup": 1,
            "azure-native:containerservice:ManagedCluster": 1,
            "pulumi:providers:kubernetes": 1,
            "pulumi-python:dynamic/zero-trust-aks:CiliumCrdGate": 1,
            "kubernetes:core/v1:Namespace": 3,  # frontend, backend, and zt-probes for the ingress prober
            "kubernetes:apps/v1:Deployment": 2,
            "kubernetes:core/v1:Service": 1,
            "kubernetes:cilium.io/v2:CiliumNetworkPolicy": 6,  # per namespace its default deny, per workload (and the prober) its flows
            "kubernetes:batch/v1:Job": 4,  # one per source identity: frontend, the stranger of each namespace, the ingress prober
        }
    )


def test_the_dev_cluster_is_the_walkthroughs_cilium_cluster():
    (rg,) = stack_run("dev").of_type("azure-native:resources:ResourceGroup")
    (aks,) = stack_run("dev").of_type("azure-native:containerservice:ManagedCluster")
    assert (rg.inputs["resourceGroupName"], rg.inputs["location"]) == ("aks-zero-trust-rg", "westeurope")
    assert aks.inputs["resourceName"] == "aks-zero-trust"
    net = aks.inputs["networkProfile"]
    assert (net["networkPlugin"], net["networkDataplane"], net["networkPolicy"]) == ("azure", "cilium", "cilium")
    assert "networkPluginMode" not in net  # the walkthrough's node-subnet mode
    assert aks.inputs["identity"] == {"type": "SystemAssigned"}
    assert aks.inputs["agentPoolProfiles"][0]["count"] == 3


def test_the_prod_cluster_is_hardened():
    (aks,) = stack_run("prod").of_type("azure-native:containerservice:ManagedCluster")
    i = aks.inputs
    assert i["disableLocalAccounts"] is True
    assert i["aadProfile"]["managed"] is True and i["aadProfile"]["enableAzureRBAC"] is True
    assert i["apiServerAccessProfile"]["authorizedIPRanges"] == ["203.0.113.0/24"]
    pool = i["agentPoolProfiles"][0]
    assert pool["availabilityZones"] == ["1", "2", "3"] and pool["enableAutoScaling"] is True
    assert i["networkProfile"]["networkPluginMode"] == "overlay"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_aks_stack_dev_included_has_entra_id_with_azure_rbac_and_no_local_accounts(stack):
    (aks,) = stack_run(stack).of_type("azure-native:containerservice:ManagedCluster")
    assert aks.inputs["disableLocalAccounts"] is True
    assert aks.inputs["aadProfile"]["managed"] is True and aks.inputs["aadProfile"]["enableAzureRBAC"] is True


def test_the_dev_kubeconfig_holds_no_credential_only_a_non_interactive_kubelogin():
    kubeconfig = yaml.safe_load(stack_run("dev").outputs["kubeconfig"])
    (user,) = [u["user"] for u in kubeconfig["users"]]
    assert set(user) == {"exec"} and user["exec"]["command"] == "kubelogin"
    assert user["exec"]["args"][:3] == ["get-token", "--login", "azurecli"] and user["exec"]["interactiveMode"] == "Never"


def test_aks_production_settings_are_on_by_default_but_defender():
    (aks,) = stack_run("dev").of_type("azure-native:containerservice:ManagedCluster")
    i = aks.inputs
    assert i["addonProfiles"] == {"azurepolicy": {"enabled": True}}
    assert i["securityProfile"] == {"imageCleaner": {"enabled": True, "intervalHours": 168}, "workloadIdentity": {"enabled": True}}
    assert i["autoUpgradeProfile"] == {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "NodeImage"}
    assert i["oidcIssuerProfile"] == {"enabled": True} and i["apiServerAccessProfile"] == {"disableRunCommand": True}
    assert i["agentPoolProfiles"][0]["localDNSProfile"] == {"mode": "Disabled"}
    assert not stack_run("dev").of_type("azure-native:operationalinsights:Workspace")


def test_prod_has_defender_reporting_to_a_log_analytics_workspace_the_stack_creates():
    run = stack_run("prod")
    (workspace,) = run.of_type("azure-native:operationalinsights:Workspace")
    (aks,) = run.of_type("azure-native:containerservice:ManagedCluster")
    assert workspace.inputs["workspaceName"] == "aks-zero-trust-prod-defender"
    assert workspace.inputs["resourceGroupName"] == "aks-zero-trust-prod-rg"
    defender = aks.inputs["securityProfile"]["defender"]
    assert defender["securityMonitoring"] == {"enabled": True}
    assert defender["logAnalyticsWorkspaceResourceId"] == f"{workspace.name}-id"  # the mock engine's id of the workspace
    assert workspace.urn in aks.dependencies


def test_every_kubernetes_object_uses_the_clusters_provider():
    run = stack_run("dev")
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    k8s = [r for r in run.resources if r.type.startswith("kubernetes:")]
    assert k8s and all(r.provider.startswith(provider.urn + "::") for r in k8s)


def test_the_provider_and_the_kubeconfig_output_are_secret():
    run = stack_run("dev")
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert SECRET_SIG in provider.inputs["kubeconfig"]
    assert "kubeconfig" in run.secret_outputs


def test_resource_urns_are_unique():
    urns = [r.urn for r in stack_run("dev").resources]
    assert len(urns) == len(set(urns))


def test_every_resource_sits_under_a_component():
    run = stack_run("dev")
    components = {r.urn: r.type for r in run.resources if not r.custom}
    for r in run.resources:
        if r.custom:
            assert components.get(r.parent, "").startswith("zero-trust-aks:"), r.name
    assert set(components.values()) == {
        "zero-trust-aks:azure:ResourceGroup",
        "zero-trust-aks:azure:AksCluster",
        "zero-trust-aks:kubernetes:ZeroTrustNamespace",
        "zero-trust-aks:kubernetes:ConnectivityProbes",
    }


def test_policies_wait_for_the_crd_gate_and_workloads_wait_for_their_policies():
    run = stack_run("dev")
    (gate,) = run.of_type("pulumi-python:dynamic")
    policies = run.of_type("kubernetes:cilium.io/v2:CiliumNetworkPolicy")
    assert all(gate.urn in p.dependencies for p in policies)
    backend_policies = {p.urn for p in policies if p.inputs["metadata"]["namespace"] == "backend"}
    (deployment,) = [d for d in run.of_type("kubernetes:apps/v1:Deployment") if d.name == "backend-deployment"]
    assert backend_policies <= set(deployment.dependencies)


def test_the_deployed_objects_are_the_rendered_manifests_and_probes(dev_config):
    from policies.config import load_config
    from policies.analysis.probes import job, prober_namespace, probes
    from policies.render import Rendered, render

    cfg = load_config(dev_config)
    prober = Rendered((prober_namespace(cfg),)).all()
    objects = render(cfg).all() + prober + [job(g, cfg.zero_trust.probe_image) for g in probes(cfg, render(cfg)).groups]
    rendered = sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", "")))
    deployed = sorted(stack_run("dev").kubernetes_objects(), key=lambda o: (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", "")))
    assert deployed == rendered


def test_the_stack_outputs_name_the_cluster_and_the_flows():
    out = stack_run("dev").outputs
    assert out["clusterName"] == "aks-zero-trust"
    assert out["resourceGroupName"] == "aks-zero-trust-rg"
    assert out["flows"] == ["frontend -> backend:80/TCP"]
    assert out["ciliumPolicies"]["backend"] == ["zt-default-deny", "zt-allow.backend"]


def test_the_cluster_credentials_are_read_from_the_cluster_it_creates():
    invokes = stack_run("dev").invokes
    assert invokes == [
        (
            "azure-native:containerservice:listManagedClusterUserCredentials",
            {"resourceGroupName": "aks-zero-trust-rg", "resourceName": "aks-zero-trust"},
        )
    ]


def test_the_prod_kubeconfig_logs_in_without_a_person():
    kubeconfig = yaml.safe_load(stack_run("prod").outputs["kubeconfig"])
    exec_ = kubeconfig["users"][0]["user"]["exec"]
    assert exec_["args"][:3] == ["get-token", "--login", "azurecli"]
    assert "devicecode" not in exec_["args"] and "--client-id" not in exec_["args"]
    assert exec_["interactiveMode"] == "Never"


def test_a_local_account_kubeconfig_is_left_as_is():
    text = fake_kubeconfig("c", entra_id=False)
    assert non_interactive_kubeconfig(text, None) == text


def test_a_broken_stack_fails_with_one_line_per_problem_and_registers_nothing(dev_stack):
    flows = [{"from": "frontend", "to": "backnd"}, {"from": "ghost", "to": "backend"}]
    with pytest.raises(pulumi.RunError) as e:
        run_program(with_config(dev_stack, **{"zero-trust-aks__flows": flows}))
    lines = str(e.value).splitlines()
    assert lines[1:] == [
        "zero-trust-aks:flows[0].to: 'backnd' is neither a workload nor a peer; workloads are: backend, frontend",
        "zero-trust-aks:flows[1].from: 'ghost' is neither a workload nor a peer; workloads are: backend, frontend",
    ]


def test_nothing_is_registered_when_the_config_is_broken(dev_stack, monkeypatch):
    from zerotrust import mockrun

    seen = []
    original = mockrun._Recorder.RegisterResource

    def spy(self, request):
        seen.append(request.type)
        return original(self, request)

    monkeypatch.setattr(mockrun._Recorder, "RegisterResource", spy)
    with pytest.raises(pulumi.RunError):
        run_program(with_config(dev_stack, **{"zero-trust-aks__flows": [{"from": "x", "to": "backend"}]}))
    assert [t for t in seen if t != "pulumi:pulumi:Stack"] == []


def test_two_runs_in_one_process_do_not_share_a_stack():
    dev, prod = stack_run("dev"), stack_run("prod")
    assert all(r.urn.startswith("urn:pulumi:dev::zero-trust-aks::") for r in dev.resources)
    assert all(r.urn.startswith("urn:pulumi:prod::zero-trust-aks::") for r in prod.resources)


def test_secrets_are_masked_when_asked():
    (provider,) = stack_run("dev").of_type("pulumi:providers:kubernetes")
    assert unwrap_secrets(provider.inputs, mask=True)["kubeconfig"] == "[secret]"


# -- probes and the local stack --------------------------------------------------------------------------


def test_the_dev_probes_run_after_every_policy_and_workload_and_are_exported():
    run = stack_run("dev")
    (component,) = run.of_type("zero-trust-aks:kubernetes:ConnectivityProbes")
    jobs = run.of_type("kubernetes:batch/v1:Job")
    assert {j.parent for j in jobs} == {component.urn}
    # each Job waits for the policies that select either end of its checks, and for its targets' objects
    def urns(*names):
        return {r.urn for r in run.resources if r.name in names}

    backend = urns("backend-deployment", "backend-service", "backend-zt-default-deny", "backend-zt-allow.backend")
    expected = {
        "frontend": urns("frontend-zt-default-deny", "frontend-zt-allow.frontend") | backend,
        "stranger@frontend": urns("frontend-zt-default-deny") | backend,  # zt-allow.frontend does not select it
        "stranger@backend": backend,
        "ingress-prober@zt-probes": urns("zt-probes-zt-default-deny", "zt-probes-zt-allow.ingress-prober") | backend,
    }
    assert len(backend) == 4
    for j in jobs:
        who = j.inputs["metadata"]["annotations"]["zero-trust-aks/probe"].split(" as ", 1)[1]
        assert set(j.dependencies) == expected[who], j.name
    assert run.outputs["probes"] == {
        "frontend -> backend:80/TCP": "allow",
        "stranger@backend -> backend:80/TCP": "deny",
        "stranger@frontend -> backend:80/TCP": "deny",
        "stranger@backend -> outside 1.1.1.1:443/TCP": "deny",
        "stranger@frontend -> outside 1.1.1.1:443/TCP": "deny",
        "ingress-prober@zt-probes -> backend:80/TCP": "deny",
    }


def test_verify_false_registers_no_probes(dev_stack):
    run = run_program(with_config(dev_stack, **{"zero-trust-aks__zeroTrust": {"verify": False}}))
    assert run.of_type("kubernetes:batch/v1:Job") == [] and "probes" not in run.outputs


def test_the_local_stack_registers_no_azure_resource_and_uses_the_kubeconfig_context():
    run = stack_run("local")
    assert [r.type for r in run.resources if r.type.startswith("azure-native:") or "CiliumCrdGate" in r.type] == []
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "kind-zero-trust"
    assert all(r.provider.startswith(provider.urn) for r in run.resources if r.type.startswith("kubernetes:"))
    assert kinds(run)["kubernetes:cilium.io/v2:CiliumNetworkPolicy"] == 4 + 2  # and the ingress prober's two
    assert kinds(run)["kubernetes:batch/v1:Job"] == 3 + 1
    assert run.outputs["kubeContext"] == "kind-zero-trust" and "kubeconfig" not in run.outputs


def test_an_entra_id_cluster_with_local_accounts_still_exports_a_non_interactive_kubeconfig(dev_stack):
    entra = {**dev_stack.config["zero-trust-aks:cluster"], "entraId": {"azureRbac": True}}
    run = run_program(with_config(dev_stack, **{"zero-trust-aks__cluster": entra}))
    exec_ = yaml.safe_load(run.outputs["kubeconfig"])["users"][0]["user"]["exec"]
    assert exec_["args"][:3] == ["get-token", "--login", "azurecli"] and exec_["interactiveMode"] == "Never"


def test_with_autoscaling_up_never_pushes_the_node_count_back():
    (prod,) = stack_run("prod").of_type("azure-native:containerservice:ManagedCluster")
    assert prod.ignore_changes == ("agentPoolProfiles[0].count",)
    (dev,) = stack_run("dev").of_type("azure-native:containerservice:ManagedCluster")
    assert dev.ignore_changes == ()


def test_a_stack_that_does_not_create_its_resource_group_reads_it_and_deploys_into_it():
    run = stack_run("prod")
    assert run.of_type("azure-native:resources:ResourceGroup") == []
    assert ("azure-native:resources:getResourceGroup", {"resourceGroupName": "aks-zero-trust-prod-rg"}) in run.invokes
    (aks,) = run.of_type("azure-native:containerservice:ManagedCluster")
    assert aks.inputs["resourceGroupName"] == "aks-zero-trust-prod-rg"
    assert len(stack_run("dev").of_type("azure-native:resources:ResourceGroup")) == 1  # the walkthrough creates it


def test_the_benchmark_stack_registers_at_most_five_resources_per_workload(tmp_path):
    from benchmarks.run import stack_config
    from policies.config.stackfile import read_stack
    from zerotrust.mockrun import PROJECT_DIR

    workloads, namespaces = 50, 10
    path = tmp_path / "Pulumi.bench.yaml"
    path.write_text(yaml.safe_dump({"config": stack_config(workloads, namespaces)}))
    run = run_program(read_stack(PROJECT_DIR, "bench", path))
    counts = kinds(run)
    prober = [r for r in run.resources if r.name.startswith("zt-probes")]  # a fixed set, whatever the stack's size
    assert len(run.resources) - len(prober) <= 5 * workloads, counts
    # one policy per workload and one per namespace; one probe Job per source identity (each workload, each stranger),
    # and the ingress prober's two policies and Job
    assert counts["kubernetes:cilium.io/v2:CiliumNetworkPolicy"] == workloads + namespaces + 2
    assert counts["kubernetes:batch/v1:Job"] == workloads + namespaces + 1
