"""What the cluster keys accept: an AKS cluster to create (``cluster``) or an existing one (``kubernetes``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from policies import acns_levels
from policies.cilium_versions import Version, aks_cilium
from policies.config import azure
from policies.config.fields import Cidr, Count, Guid, Ipv4Cidr, _Model, _cilium_minor, _ip, _kubernetes_version, _shaped
from policies.config.limits import MAX_NODES


class AdvancedNetworking(_Model):
    """Advanced Container Networking Services (a paid AKS add-on)."""

    observability: bool = False
    """Hubble flow logs and metrics."""
    security: Literal["none", "fqdn", "l7"] = "none"
    """`fqdn` enables toFQDNs and DNS rules; `l7` adds HTTP/gRPC/Kafka rules (``policies.acns_levels``)."""

    @property
    def level(self) -> acns_levels.AcnsLevel:
        return acns_levels.BY_SETTING[self.security]


class EntraId(_Model):
    """Entra ID (AAD) integration with Azure RBAC for Kubernetes authorization."""

    admin_group_object_ids: tuple[Guid, ...] = Field((), alias="adminGroupObjectIds", max_length=50)
    azure_rbac: bool = Field(True, alias="azureRbac")
    tenant_id: Guid | None = Field(None, alias="tenantId")


class ImageCleaner(_Model):
    """AKS's image cleaner: removes unused images (with their vulnerabilities) from the nodes."""

    enabled: bool = True
    interval_hours: Count = Field(168, alias="intervalHours", ge=24, le=2160)
    """How often it runs: 24 hours to 90 days (ARM's range); a week by default."""


class AutoUpgrade(_Model):
    """ARM's ``autoUpgradeProfile``: how AKS keeps Kubernetes and the node OS patched."""

    upgrade_channel: Literal["rapid", "stable", "patch", "node-image", "none"] = Field("patch", alias="upgradeChannel")
    """`patch` keeps the minor version `kubernetesVersion` names (and so its Cilium semantics) and takes its patches."""
    node_os_upgrade_channel: Literal["None", "Unmanaged", "NodeImage", "SecurityPatch"] = Field("NodeImage", alias="nodeOsUpgradeChannel")


class Autoscaling(_Model):
    min_count: Count = Field(alias="minCount", ge=1, le=MAX_NODES)
    max_count: Count = Field(alias="maxCount", ge=1, le=MAX_NODES)


class ClusterConfig(_Model):
    name: Annotated[str, _shaped(r"^[A-Za-z0-9]([-_A-Za-z0-9]{0,61}[A-Za-z0-9])?$", "an AKS cluster name (1-63 letters, digits, '-' or '_', starting and ending with a letter or digit)")]
    node_count: Count = Field(3, alias="nodeCount", ge=1, le=MAX_NODES)
    vm_size: Annotated[str, StringConstraints(max_length=64), _shaped(r"^Standard_[A-Za-z0-9_]+$", "an Azure VM size (Standard_D2s_v5, ...)")] = Field(
        "Standard_D2s_v5", alias="vmSize"
    )
    kubernetes_version: Annotated[
        str, _shaped(r"^1\.\d{2}(\.\d+)?$", "a Kubernetes version like \"1.33\" or \"1.33.2\""), AfterValidator(_kubernetes_version)
    ] | None = Field(None, alias="kubernetesVersion")
    network_plugin_mode: Literal["overlay", "node-subnet"] = Field("overlay", alias="networkPluginMode")
    """`overlay` (recommended) or `node-subnet`, the walkthrough's legacy mode where pods take VNet IPs."""
    pod_cidr: Ipv4Cidr | None = Field(None, alias="podCidr")
    """Overlay only; defaults to 10.244.0.0/16."""
    service_cidr: Ipv4Cidr = Field("10.0.0.0/16", alias="serviceCidr")
    dns_service_ip: Annotated[str, AfterValidator(_ip)] = Field("10.0.0.10", alias="dnsServiceIp")
    advanced_networking: AdvancedNetworking = Field(AdvancedNetworking(), alias="advancedNetworking")
    entra_id: EntraId | None = Field(EntraId(), alias="entraId")
    """Entra ID with Azure RBAC, on by default: the kubeconfig then holds no credential (kubelogin)."""
    disable_local_accounts: bool = Field(True, alias="disableLocalAccounts")
    """No static admin credential (the local-account kubeconfig is admin-equivalent)."""
    azure_policy: bool = Field(True, alias="azurePolicy")
    """The Azure Policy add-on (Gatekeeper with Azure's policy definitions)."""
    defender: bool = False
    """Microsoft Defender for Containers (paid); the stack creates its Log Analytics workspace."""
    image_cleaner: ImageCleaner = Field(ImageCleaner(), alias="imageCleaner")
    auto_upgrade: AutoUpgrade = Field(AutoUpgrade(), alias="autoUpgrade")
    oidc_issuer: bool = Field(True, alias="oidcIssuer")
    """The cluster's OIDC issuer (AKS cannot turn it off once on)."""
    workload_identity: bool = Field(True, alias="workloadIdentity")
    """Entra Workload ID for pods (needs the OIDC issuer): Azure access without secrets."""
    disable_run_command: bool = Field(True, alias="disableRunCommand")
    """Refuse `az aks command invoke`, which runs kubectl in the cluster on behalf of ARM callers."""
    local_dns: Literal["disabled", "preferred", "required"] = Field("disabled", alias="localDns")
    """AKS LocalDNS on the nodes; when on, every pod's DNS egress also allows the node's local resolver."""
    authorized_ip_ranges: tuple[Cidr, ...] = Field((), alias="authorizedIpRanges", max_length=azure.MAX_AUTHORIZED_IP_RANGES)
    private_cluster: bool = Field(False, alias="privateCluster")
    availability_zones: tuple[Literal["1", "2", "3"], ...] = Field((), alias="availabilityZones", max_length=3)
    autoscaling: Autoscaling | None = None
    kubelogin_mode: Literal["azurecli", "workloadidentity", "spn", "msi"] = Field("azurecli", alias="kubeloginMode")
    """How the kubeconfig logs in when Entra ID is on (non-interactive kubelogin)."""
    sku_tier: Literal["Free", "Standard", "Premium"] = Field("Free", alias="skuTier")

    @property
    def dns_prefix(self) -> str:
        """The cluster's DNS prefix (ARM ``dnsPrefix``): its name."""
        return self.name

    @property
    def effective_pod_cidr(self) -> str | None:
        if self.network_plugin_mode != "overlay":
            return None
        return self.pod_cidr or "10.244.0.0/16"

    @property
    def cilium_version(self) -> Version:
        """The Cilium minor version AKS ships for this cluster's Kubernetes version."""
        return aks_cilium(self.kubernetes_version)


class ExistingCluster(_Model):
    """An existing cluster that already runs Cilium (e.g. kind): no Azure resources are created."""

    context: str | None = None
    """The kubeconfig context to use (default: the current context)."""
    kubeconfig: str | None = None
    """Path to a kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."""
    cilium_version: Annotated[str, _shaped(r"^1\.\d{2}$", "a Cilium minor version like \"1.17\""), AfterValidator(_cilium_minor)] = Field(
        "1.17", alias="ciliumVersion"
    )
    """The cluster's Cilium minor version, for the policy semantics (`cilium version`)."""
