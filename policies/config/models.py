"""The stack configuration as frozen pydantic models: field by field, what each key accepts.

Rules that need more than one field live in ``rules``; the limits on size in
``limits``; both run in the same pass (``load``), so every problem is reported
at once.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, ValidationError

from policies import acns_levels
from policies.cilium_versions import CILIUM, DEFAULT_CILIUM, Version, aks_cilium, parse_minor
from policies.config import azure, kubernetes, outside_names
from policies.config.errors import show
from policies.config.limits import (
    MAX_ARGS,
    MAX_ENV,
    MAX_FQDNS_PER_FLOW,
    MAX_HTTP_RULES_PER_FLOW,
    MAX_LABELS_PER_WORKLOAD,
    MAX_NODES,
    MAX_REPLICAS,
)

PROJECT = "zero-trust-aks"
"""The Pulumi project name: the namespace of every project config key."""

PROBE_IMAGE = "curlimages/curl:8.11.1@sha256:c1fe1679c34d9784c1b0d1e5f62ac0a79fca01fb6377cdd33e90473c6f9f9a69"
"""The probe image (curl on Alpine; runs as uid 100), pinned by digest."""


def _shaped(regex: str, words: str):
    """An AfterValidator: the value must match ``regex``, said in ``words`` (never the expression itself)."""
    rx = re.compile(regex)

    def validate(value: str) -> str:
        if not rx.search(value):
            raise ValueError(f"{show(value)} is not {words}")
        return value

    return AfterValidator(validate)


def _check(problem):
    """An AfterValidator from a ``value -> problem or None`` function."""

    def validate(value):
        why = problem(value)
        if why:
            raise ValueError(why)
        return value

    return AfterValidator(validate)


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise ValueError(f"not a CIDR range ({e})") from None
    return str(net)


def _ipv4_cidr(value: str) -> str:
    value = _cidr(value)
    if ipaddress.ip_network(value).version != 4:
        raise ValueError("must be an IPv4 range (this stack builds a single-stack IPv4 cluster)")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("not an IP address") from None


def _public_ip(value: str) -> str:
    value = _ip(value)
    if not ipaddress.ip_address(value).is_global:
        raise ValueError("must be a public address outside the cluster (a private one may be a pod, node or Azure service)")
    return value


def _kubernetes_version(value: str) -> str:
    aks_cilium(value)  # raises ValueError naming the versions AKS documents Cilium for
    return value


def _cilium_minor(value: str) -> str:
    if parse_minor(value) not in CILIUM:
        raise ValueError(f"not a Cilium version this tool knows; known: {', '.join(f'{a}.{b}' for a, b in CILIUM)}")
    return value


def _pinned_image(value: str) -> str:
    if "@sha256:" not in value:
        raise ValueError(
            "must be pinned by digest (image@sha256:<64 hex digits>): the probes run with each source workload's "
            "identity, so a moved tag could change what they do"
        )
    return value


DnsLabel = Annotated[str, _shaped(kubernetes.DNS1123_LABEL, "a DNS label (1-63 lower-case letters, digits or '-', starting and ending with a letter or digit)")]
DnsSubdomain = Annotated[str, StringConstraints(max_length=253), _shaped(kubernetes.DNS1123_SUBDOMAIN, "a DNS subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)")]
ConfigKey = Annotated[str, StringConstraints(max_length=253), _shaped(kubernetes.CONFIG_KEY, "a Secret or ConfigMap key (letters, digits, '-', '_' and '.')")]
EnvName = Annotated[str, StringConstraints(max_length=256), _shaped(kubernetes.ENV_NAME, "an environment variable name (letters, digits, '-', '_' and '.', not starting with a digit)")]
UserId = Annotated[int, Field(ge=0, le=2147483647, strict=True)]
LabelKey = Annotated[str, _check(kubernetes.label_key_problem)]
LabelValue = Annotated[str, _shaped(kubernetes.LABEL_VALUE, "a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; or empty)")]
Fqdn = Annotated[
    str,
    StringConstraints(to_lower=True, max_length=253),
    _check(outside_names.fqdn_problem),
    _check(outside_names.wildcard_problem),
]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
PortName = Annotated[str, StringConstraints(max_length=15), _shaped(r"^[a-z0-9]+(-[a-z0-9]+)*$", "a port name (1-15 lower-case letters, digits and single hyphens)"), _check(kubernetes.port_name_problem)]
"""A Kubernetes port name (IANA_SVC_NAME): 1-15 lower-case letters, digits and single hyphens, with a letter."""
def _port_ref(value: object) -> int | str:
    """A port a flow or check names: a number clients dial, or a port's name (one message, in our words)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        kind = {bool: "true/false", list: "a list", dict: "a mapping", float: "a fraction"}.get(type(value), type(value).__name__)
        raise ValueError(f"must be a port number (1-65535) or a port's name, not {kind}")
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError(f"{value} is not a port number (1-65535)")
        return value
    if value.isdigit():
        raise ValueError(f"{value!r} is a number in quotes: write the port without quotes ({value})")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", value) or len(value) > 15:
        raise ValueError(f"{value!r} is not a port name: 1-15 lower-case letters, digits and single hyphens")
    why = kubernetes.port_name_problem(value)
    if why:
        raise ValueError(why)
    return value


PortRef = Annotated[int | str, PlainValidator(_port_ref)]
"""A port a flow names: its number (what clients dial) or its name."""
Protocol = Literal["TCP", "UDP", "SCTP"]
Cidr = Annotated[str, AfterValidator(_cidr)]
Ipv4Cidr = Annotated[str, AfterValidator(_ipv4_cidr)]
Guid = Annotated[str, _shaped(azure.GUID, "a GUID (8-4-4-4-12 hexadecimal digits, as Entra ID writes object and tenant IDs)")]
Quantity = Annotated[str, _check(kubernetes.quantity_problem)]
Image = Annotated[str, StringConstraints(min_length=1, max_length=512), _shaped(r"^[^\s]+$", "an image reference (no spaces)")]
Count = Annotated[int, Field(strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=False)


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


class Resources(_Model):
    cpu_request: Quantity = Field("50m", alias="cpuRequest")
    cpu_limit: Quantity = Field("250m", alias="cpuLimit")
    memory_request: Quantity = Field("64Mi", alias="memoryRequest")
    memory_limit: Quantity = Field("128Mi", alias="memoryLimit")


class PortSpec(_Model):
    """A port a workload serves, by name: ``port`` is what clients dial (the Service's port),
    ``targetPort`` what the container listens on (default: the same)."""

    name: PortName
    port: Port
    target_port: Port | None = Field(None, alias="targetPort")
    protocol: Protocol = "TCP"

    @property
    def container_port(self) -> int:
        """Where the pods listen: what Cilium enforces, after the Service's translation."""
        return self.target_port or self.port


class KeyRef(_Model):
    """A key of a Secret or ConfigMap in the workload's namespace."""

    name: DnsSubdomain
    key: ConfigKey


class EnvFrom(_Model):
    """An environment variable's value from a Secret or a ConfigMap (exactly one)."""

    secret_key_ref: KeyRef | None = Field(None, alias="secretKeyRef")
    config_map_key_ref: KeyRef | None = Field(None, alias="configMapKeyRef")


def _env_value(value: object) -> str | EnvFrom:
    """A plain string, or a reference to a Secret's or ConfigMap's key (one message, in our words)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        try:
            return EnvFrom.model_validate(value)
        except ValidationError as e:
            from policies.config.errors import pydantic_line

            raise ValueError("; ".join(pydantic_line(err, EnvFrom) for err in e.errors())) from None
    hint = f' (quote it: "{str(value).lower() if isinstance(value, bool) else value}")' if isinstance(value, (bool, int, float)) else ""
    raise ValueError(f"must be a string, or {{secretKeyRef: {{name, key}}}} or {{configMapKeyRef: {{name, key}}}}{hint}")


EnvValue = Annotated[str | EnvFrom, PlainValidator(_env_value)]


class HealthCheck(_Model):
    """An HTTP readiness and liveness check: GET ``path`` on ``port`` (a port name or number; default the first TCP port)."""

    path: Annotated[str, StringConstraints(max_length=1024), _shaped(r"^/\S*$", "a URL path (starting with '/', no spaces)")]
    port: PortRef | None = None


class WorkloadConfig(_Model):
    """A workload: one the stack deploys (``image``: a Deployment, and a Service when a flow targets it), or one
    deployed elsewhere (``selector``: Helm, Argo CD, another stack), whose pods the stack only polices."""

    namespace: DnsLabel
    image: Image | None = None
    selector: dict[LabelKey, LabelValue] | None = Field(None, min_length=1, max_length=MAX_LABELS_PER_WORKLOAD)
    """Deployed elsewhere: the labels that select its pods (no Deployment or Service is rendered)."""
    service: DnsLabel | None = None
    """Deployed elsewhere: the Service clients reach it by (the probes dial it); none: its checks are not probed."""
    port: Port | None = None
    """The one port it serves (named `serve`); or `ports`; or neither for a workload that receives nothing."""
    target_port: Port | None = Field(None, alias="targetPort")
    """With `port`: where the container listens, when it differs from the port clients dial."""
    protocol: Protocol = "TCP"
    ports: tuple[PortSpec, ...] | None = Field(None, min_length=1, max_length=32)
    """Several named ports: `[{name, port, targetPort?, protocol?}]`."""
    env: dict[EnvName, EnvValue] | None = Field(None, max_length=MAX_ENV)
    """Environment variables: a plain value, or `{secretKeyRef: {name, key}}` / `{configMapKeyRef: {name, key}}`."""
    args: tuple[str, ...] | None = Field(None, max_length=MAX_ARGS)
    command: tuple[str, ...] | None = Field(None, max_length=MAX_ARGS)
    service_account_name: DnsSubdomain | None = Field(None, alias="serviceAccountName")
    """The pods' service account (the stack creates it; its token is still mounted only with serviceAccountToken)."""
    run_as_user: UserId | None = Field(None, alias="runAsUser")
    run_as_group: UserId | None = Field(None, alias="runAsGroup")
    health_check: HealthCheck | None = Field(None, alias="healthCheck")
    replicas: Count = Field(1, ge=0, le=MAX_REPLICAS)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS_PER_WORKLOAD)
    """Extra pod labels. `app` is set to the workload's name and cannot be overridden."""
    security_profile: Literal["restricted", "baseline"] = Field("restricted", alias="securityProfile")
    """`restricted`: non-root, all capabilities dropped (Pod Security `restricted`).
    `baseline`: for images that must start as root (e.g. the stock nginx image); still drops every
    capability it does not need and forbids privilege escalation (Pod Security `baseline`)."""
    resources: Resources = Resources()
    service_account_token: bool = Field(False, alias="serviceAccountToken")
    """Mount the service-account token into the pods (off unless the workload talks to the API)."""
    expose: Literal["none", "loadBalancer"] = "none"
    """`loadBalancer`: a Service of type LoadBalancer (externalTrafficPolicy Local, so Cilium sees the
    client as `world`); a flow from an `entity: world` peer may then reach it."""

    @property
    def deployed(self) -> bool:
        """Whether the stack deploys it (an image), rather than policing pods deployed elsewhere (a selector)."""
        return self.selector is None

    @property
    def served(self) -> tuple[PortSpec, ...]:
        """Every port the workload serves, named."""
        if self.ports is not None:
            return self.ports
        if self.port is not None:
            return (PortSpec(name="serve", port=self.port, targetPort=self.target_port, protocol=self.protocol),)
        return ()

    def find_port(self, ref: int | str, protocol: str | None = None) -> PortSpec | None:
        """The served port a flow names: by name, or by the number clients dial (and the protocol)."""
        for spec in self.served:
            if (spec.name == ref if isinstance(ref, str) else spec.port == ref) and protocol in (None, spec.protocol):
                return spec
        return None

    def find_container_port(self, number: int, protocol: str) -> PortSpec | None:
        """The served port whose pods listen on ``number`` (what a capture records, after the Service)."""
        return next((s for s in self.served if s.container_port == number and s.protocol == protocol), None)


PEER_ENTITIES = ("world", "kube-apiserver", "host", "remote-node", "cluster")


class PeerConfig(_Model):
    """Something flows talk to that the stack does not deploy: exactly one of
    `namespace` (pods of a namespace the stack does not manage, optionally by `labels`),
    `cidrs` (addresses outside the cluster, less `except`) or `entity` (a Cilium entity)."""

    namespace: DnsLabel | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS_PER_WORKLOAD)
    cidrs: tuple[Cidr, ...] | None = Field(None, min_length=1, max_length=64)
    except_: tuple[Cidr, ...] = Field((), alias="except", max_length=64)
    entity: Literal[PEER_ENTITIES] | None = None  # type: ignore[valid-type]

    @property
    def kind(self) -> str | None:
        """``pods``, ``addresses`` or ``entity``; None when not exactly one is given."""
        given = [k for k, v in (("pods", self.namespace), ("addresses", self.cidrs), ("entity", self.entity)) if v is not None]
        return given[0] if len(given) == 1 else None


HttpMethod = Literal[outside_names.HTTP_METHODS]  # type: ignore[valid-type]


class HttpRule(_Model):
    method: HttpMethod | None = None
    path: Annotated[str, StringConstraints(max_length=1024), _shaped(r"^/", "a path expression starting with '/'"), _check(outside_names.re2_problem)] | None = None
    """A regular expression, as Envoy matches it (RE2, e.g. `/api/v1/.*`)."""


class Flow(_Model):
    source: str = Field(alias="from")
    to: str | None = None
    to_fqdns: tuple[Fqdn, ...] | None = Field(None, alias="toFqdns", min_length=1, max_length=MAX_FQDNS_PER_FLOW)
    port: PortRef | None = None
    """A port number, or the name of one of the target's ports."""
    protocol: Protocol | None = None
    http: tuple[HttpRule, ...] | None = Field(None, min_length=1, max_length=MAX_HTTP_RULES_PER_FLOW)


class ZeroTrust(_Model):
    default_deny: Literal["ingress-and-egress", "ingress"] = Field("ingress-and-egress", alias="defaultDeny")
    allow_dns: bool = Field(True, alias="allowDns")
    crd_timeout_seconds: Count = Field(600, alias="crdTimeoutSeconds", ge=30, le=3600)
    """How long the first `pulumi up` waits for AKS's Cilium to register its policy CRDs."""
    verify: bool = True
    """Run connectivity probes (Kubernetes Jobs) as part of `pulumi up`; a disagreeing probe fails the update."""
    probe_image: Annotated[
        str,
        _shaped(r"^[^\s:@]+(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$", "an image reference (name, optional :tag, @sha256:<64 hex digits>)"),
        AfterValidator(_pinned_image),
    ] = Field(PROBE_IMAGE, alias="probeImage")
    """A curl image pinned by digest (it must run as a non-root numeric user: uid 100 here)."""
    outside_probe_address: Annotated[str, AfterValidator(_public_ip)] | None = Field("1.1.1.1", alias="outsideProbeAddress")
    """A public address each namespace's stranger probes: with egress default deny it must time out (null: no such probe)."""
    outside_probe_port: Port = Field(443, alias="outsideProbePort")
    probe_namespace: DnsLabel = Field("zt-probes", alias="probeNamespace")
    """The namespace the stack creates for the ingress prober (a pod whose own egress allows every probed target)."""
    other_identities: Count | None = Field(None, alias="otherIdentities", ge=0, le=65535)
    """Security identities in the cluster that the stack does not know (pods of other teams), for the
    policy-map budget; default: AKS's own (16) plus one per managed namespace."""


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


class NamespaceConfig(_Model):
    """A managed namespace's own settings."""

    create: bool = True
    """False: the namespace exists already (created by its owner); the stack labels and polices it, and
    neither creates nor deletes it."""


class StackConfig(_Model):
    """All of a stack's configuration, keyed by the full Pulumi config keys."""

    location: Annotated[str, StringConstraints(max_length=64), _shaped(r"^[a-z0-9]+$", "an Azure region name (lower-case letters and digits: westeurope)")] | None = Field(
        None, alias="azure-native:location"
    )
    resource_group_name: Annotated[str, _shaped(r"^[-\w.()]{0,89}[-\w()]$", "a resource group name (1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.')")] | None = Field(
        None, alias=f"{PROJECT}:resourceGroupName"
    )
    create_resource_group: bool = Field(True, alias=f"{PROJECT}:createResourceGroup")
    """False: the resource group exists already (created by whoever grants the deploy identity its rights)."""
    cluster: ClusterConfig | None = Field(None, alias=f"{PROJECT}:cluster")
    """An AKS cluster to create (with its resource group)."""
    kubernetes: ExistingCluster | None = Field(None, alias=f"{PROJECT}:kubernetes")
    """Or: an existing cluster running Cilium, reached through a kubeconfig context."""
    workloads: dict[DnsLabel, WorkloadConfig] = Field(alias=f"{PROJECT}:workloads", min_length=1)
    namespace_settings: dict[DnsLabel, NamespaceConfig] = Field(default_factory=dict, alias=f"{PROJECT}:namespaces")
    """Per managed namespace: ``create``."""
    peers: dict[DnsLabel, PeerConfig] = Field(default_factory=dict, alias=f"{PROJECT}:peers")
    """Endpoints flows reach that the stack does not deploy (one name space with the workloads)."""
    flows: tuple[Flow, ...] = Field((), alias=f"{PROJECT}:flows")
    zero_trust: ZeroTrust = Field(ZeroTrust(), alias=f"{PROJECT}:zeroTrust")

    # -- derived views (no state of their own) ---------------------------------

    @property
    def cilium_version(self) -> Version:
        """The Cilium minor version whose policy semantics apply."""
        if self.cluster is not None:
            return self.cluster.cilium_version
        if self.kubernetes is not None:
            return parse_minor(self.kubernetes.cilium_version)
        return DEFAULT_CILIUM

    @property
    def other_identities(self) -> int:
        """The policy-map budget's estimate of the cluster's identities the stack does not know."""
        if self.zero_trust.other_identities is not None:
            return self.zero_trust.other_identities
        return azure.AKS_SYSTEM_IDENTITIES + len(self.namespaces)

    @property
    def api_server_outside(self) -> bool:
        """Whether the API server lives outside the cluster, as on AKS (an existing cluster: inside, as on kind)."""
        return self.cluster is not None

    @property
    def acns_level(self) -> acns_levels.AcnsLevel | None:
        """The AKS cluster's ACNS security level; None for an existing cluster (its Cilium decides)."""
        return self.cluster.advanced_networking.level if self.cluster is not None else None

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The workload namespaces this stack manages, sorted."""
        return tuple(sorted({w.namespace for w in self.workloads.values()}))

    @property
    def flow_targets(self) -> frozenset[str]:
        """The workloads some flow targets: they get a Service."""
        return frozenset(f.to for f in self.flows if f.to)

    @property
    def exposed(self) -> frozenset[str]:
        """The workloads behind a LoadBalancer Service."""
        return frozenset(n for n, w in self.workloads.items() if w.expose == "loadBalancer")

    def creates_namespace(self, namespace: str) -> bool:
        settings = self.namespace_settings.get(namespace)
        return settings is None or settings.create

    def flow_target_port(self, flow: Flow) -> PortSpec | None:
        """The target workload's port a flow reaches: the one it names, or the only one (of its protocol); else None."""
        w = self.workloads.get(flow.to) if flow.to else None
        if w is None:
            return None
        if flow.port is None:
            return w.served[0] if len(w.served) == 1 and flow.protocol in (None, w.served[0].protocol) else None
        return w.find_port(flow.port, flow.protocol)

    def flow_port(self, flow: Flow) -> int | None:
        """The port a flow's policies allow: the target's container port (Cilium enforces after the Service's
        translation), or the port of a peer or outside name."""
        spec = self.flow_target_port(flow)
        if spec is not None:
            return spec.container_port
        return flow.port if isinstance(flow.port, int) else None

    def flow_service_port(self, flow: Flow) -> int | None:
        """The port a flow's client dials: the target's Service port."""
        spec = self.flow_target_port(flow)
        return spec.port if spec is not None else self.flow_port(flow)

    def flow_protocol(self, flow: Flow) -> str:
        if flow.protocol:
            return flow.protocol
        spec = self.flow_target_port(flow)
        return spec.protocol if spec is not None else "TCP"
