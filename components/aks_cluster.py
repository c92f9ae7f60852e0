"""The AKS cluster (Azure CNI powered by Cilium), its kubeconfig and a Kubernetes provider."""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_azure_native import containerservice

from policies.config import ClusterConfig

AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
"""The AKS AAD server application, the audience of every AKS Entra ID token."""


class AksCluster(pulumi.ComponentResource):
    """An AKS cluster with ``networkDataplane=cilium`` and the provider to reach it.

    - ``kubeconfig``: the *user* kubeconfig (``listClusterUserCredential``),
      base64-decoded and secret. With Entra ID it is the exec format,
      rewritten for non-interactive kubelogin
      (``cluster.kubeloginMode``) so CI can use it.
    - ``provider``: a ``pulumi_kubernetes.Provider`` built from it; pass it to
      every Kubernetes resource.
    """

    name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(
        self,
        name: str,
        *,
        cluster: ClusterConfig,
        resource_group_name: pulumi.Input[str],
        location: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("zero-trust-aks:azure:AksCluster", name, None, opts)
        self.workspace = None
        if cluster.defender:
            from pulumi_azure_native import operationalinsights  # only stacks with Defender pay for the import

            self.workspace = operationalinsights.Workspace(
                f"{name}-defender",
                workspace_name=defender_workspace_name(cluster),
                resource_group_name=resource_group_name,
                location=location,
                sku={"name": "PerGB2018"},
                retention_in_days=30,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.cluster = containerservice.ManagedCluster(
            f"{name}-cluster",
            resource_name_=cluster.name,
            resource_group_name=resource_group_name,
            location=location,
            **cluster_args(cluster, self.workspace.id if self.workspace is not None else None),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignored_changes(cluster)),
        )
        self.name = self.cluster.name
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=resource_group_name,
            resource_name=self.cluster.name,
        )
        # Any Entra ID cluster hands out the interactive `--login devicecode` kubeconfig, with or
        # without local accounts: rewrite it whenever Entra ID is on.
        login = cluster.kubelogin_mode if cluster.entra_id is not None else None
        self.kubeconfig = pulumi.Output.secret(
            credentials.kubeconfigs[0].value.apply(
                lambda b64: non_interactive_kubeconfig(base64.b64decode(b64).decode(), login)
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.name, "kubeconfig": self.kubeconfig})


def defender_workspace_name(c: ClusterConfig) -> str:
    """The Log Analytics workspace Defender for Containers reports to: ``<cluster>-defender`` (4-63 characters,
    letters, digits and hyphens, as the cluster's DNS prefix is)."""
    return f"{c.dns_prefix}-defender"


def ignored_changes(c: ClusterConfig) -> list[str]:
    """Inputs ``pulumi up`` must not push back: with autoscaling, the autoscaler owns the pool's node count."""
    return ["agentPoolProfiles[0].count"] if c.autoscaling else []


def cluster_args(c: ClusterConfig, workspace_id: pulumi.Input[str] | None = None) -> dict[str, Any]:
    """ManagedCluster arguments for a config (pulumi-azure-native 3.x, API 2025-09-01);
    ``workspace_id``: the Log Analytics workspace Defender reports to (with ``defender: true``)."""
    pool: dict[str, Any] = {
        "name": "system",
        "mode": "System",
        "count": c.node_count,
        "vm_size": c.vm_size,
        "os_type": "Linux",  # Azure CNI powered by Cilium is Linux only
        "type": "VirtualMachineScaleSets",
    }
    if c.availability_zones:
        pool["availability_zones"] = list(c.availability_zones)
    if c.autoscaling:
        pool.update(enable_auto_scaling=True, min_count=c.autoscaling.min_count, max_count=c.autoscaling.max_count)

    network: dict[str, Any] = {
        "network_plugin": "azure",
        "network_dataplane": "cilium",
        "network_policy": "cilium",
        "load_balancer_sku": "standard",
        "service_cidr": c.service_cidr,
        "dns_service_ip": c.dns_service_ip,
    }
    if c.network_plugin_mode == "overlay":
        network.update(network_plugin_mode="overlay", pod_cidr=c.effective_pod_cidr)
    acns = c.advanced_networking
    if acns.observability or acns.security != "none":
        security: dict[str, Any] = {"enabled": acns.security != "none"}
        if acns.security != "none":
            security["advanced_network_policies"] = acns.level.arm
        network["advanced_networking"] = {
            "enabled": True,
            "observability": {"enabled": acns.observability},
            "security": security,
        }

    pool["local_dns_profile"] = {"mode": c.local_dns.capitalize()}
    security: dict[str, Any] = {
        "image_cleaner": {"enabled": c.image_cleaner.enabled, "interval_hours": c.image_cleaner.interval_hours},
        "workload_identity": {"enabled": c.workload_identity},
    }
    if c.defender:
        security["defender"] = {"log_analytics_workspace_resource_id": workspace_id, "security_monitoring": {"enabled": True}}
    args: dict[str, Any] = {
        "dns_prefix": c.dns_prefix,
        "kubernetes_version": c.kubernetes_version,
        "identity": {"type": "SystemAssigned"},
        "enable_rbac": True,
        "agent_pool_profiles": [pool],
        "network_profile": network,
        "sku": {"name": "Base", "tier": c.sku_tier},
        "disable_local_accounts": c.disable_local_accounts,
        "addon_profiles": {"azurepolicy": {"enabled": c.azure_policy}},
        "security_profile": security,
        "auto_upgrade_profile": {
            "upgrade_channel": c.auto_upgrade.upgrade_channel,
            "node_os_upgrade_channel": c.auto_upgrade.node_os_upgrade_channel,
        },
        "oidc_issuer_profile": {"enabled": c.oidc_issuer},
    }
    if c.entra_id:
        aad: dict[str, Any] = {"managed": True, "enable_azure_rbac": c.entra_id.azure_rbac}
        if c.entra_id.admin_group_object_ids:
            aad["admin_group_object_ids"] = list(c.entra_id.admin_group_object_ids)
        if c.entra_id.tenant_id:
            aad["tenant_id"] = c.entra_id.tenant_id
        args["aad_profile"] = aad
    api: dict[str, Any] = {"disable_run_command": c.disable_run_command}
    if c.authorized_ip_ranges:
        api["authorized_ip_ranges"] = list(c.authorized_ip_ranges)
    if c.private_cluster:
        api["enable_private_cluster"] = True
    args["api_server_access_profile"] = api
    return {k: v for k, v in args.items() if v is not None}


def non_interactive_kubeconfig(text: str, login: str | None) -> str:
    """Rewrite an AKS Entra ID kubeconfig for non-interactive ``kubelogin``.

    Since Kubernetes 1.24 AKS returns an exec kubeconfig that runs
    ``kubelogin get-token --login devicecode``, which waits for a person. This
    switches the login mode (``azurecli``, ``workloadidentity``, ``spn`` or
    ``msi``), as ``kubelogin convert-kubeconfig -l <mode>`` does, and drops the
    interactive client id so kubelogin reads the identity from the
    environment. ``login=None`` (local accounts) returns the text unchanged.
    """
    if login is None:
        return text
    doc = yaml.safe_load(text)
    for user in doc.get("users") or []:
        exec_ = (user.get("user") or {}).get("exec")
        if not exec_ or "kubelogin" not in str(exec_.get("command", "")):
            continue
        args = list(exec_.get("args") or [])
        kept: dict[str, str] = {}
        for flag in ("--environment", "--server-id", "--tenant-id"):
            if flag in args and args.index(flag) + 1 < len(args):
                kept[flag] = args[args.index(flag) + 1]
        kept.setdefault("--server-id", AKS_AAD_SERVER_ID)
        new_args = ["get-token", "--login", login]
        for flag, value in kept.items():
            new_args += [flag, value]
        exec_["args"] = new_args
        exec_["interactiveMode"] = "Never"
    return yaml.safe_dump(doc, sort_keys=False)
