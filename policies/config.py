"""The stack configuration as frozen pydantic models.

The config keys are the project's public interface (see the README's
"Configuration" table). Everything is validated in one pass and every problem
becomes one line that names the full key path, e.g.::

    zero-trust-aks:flows[0].to: 'backnd' is not a workload; workloads are: backend, frontend

``load_config`` takes the stack's config as a flat mapping of full keys
(``azure-native:location``, ``zero-trust-aks:cluster``...) to plain values, the
way ``pulumi config`` holds them, and returns a ``StackConfig`` or raises
``ConfigErrors``. Structured values may arrive as JSON strings (that is how the
Pulumi engine hands them to a program); they are decoded here.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

PROJECT = "zero-trust-aks"
"""The Pulumi project name: the namespace of every project config key."""

# Cilium versions that AKS ships per Kubernetes minor version (the minimum
# listed by "Azure CNI Powered by Cilium", articles/aks/azure-cni-powered-by-cilium.md).
AKS_CILIUM_VERSIONS: dict[tuple[int, int], tuple[int, int]] = {
    (1, 29): (1, 14),
    (1, 30): (1, 14),
    (1, 31): (1, 16),
    (1, 32): (1, 17),
    (1, 33): (1, 17),
    (1, 34): (1, 18),
    (1, 35): (1, 18),
    (1, 36): (1, 18),
}
DEFAULT_CILIUM_VERSION = (1, 17)
"""Assumed when no Kubernetes version is pinned (AKS's default is 1.32/1.33 today)."""

RESERVED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "gatekeeper-system"})

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
_FQDN = r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$"

DnsLabel = Annotated[str, StringConstraints(pattern=_DNS_LABEL)]
LabelKey = Annotated[str, StringConstraints(pattern=_LABEL_KEY, max_length=316)]
LabelValue = Annotated[str, StringConstraints(pattern=_LABEL_VALUE)]
Fqdn = Annotated[str, StringConstraints(pattern=_FQDN, to_lower=True, max_length=253)]
Port = Annotated[int, Field(ge=1, le=65535)]
Protocol = Literal["TCP", "UDP", "SCTP"]


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as e:
        raise ValueError(f"not a CIDR range ({e})") from None


Cidr = Annotated[str, AfterValidator(_cidr)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


ACNS_POLICY_LEVELS = {"fqdn": "FQDN", "l7": "L7"}
"""`advancedNetworking.security` -> ARM's `advancedNetworkPolicies` value."""


class AdvancedNetworking(_Model):
    """Advanced Container Networking Services (a paid AKS add-on)."""

    observability: bool = False
    """Hubble flow logs and metrics."""
    security: Literal["none", "fqdn", "l7"] = "none"
    """`fqdn` enables toFQDNs and DNS rules; `l7` adds HTTP/gRPC/Kafka rules."""


class EntraId(_Model):
    """Entra ID (AAD) integration with Azure RBAC for Kubernetes authorization."""

    admin_group_object_ids: tuple[str, ...] = Field((), alias="adminGroupObjectIds")
    azure_rbac: bool = Field(True, alias="azureRbac")
    tenant_id: str | None = Field(None, alias="tenantId")


class Autoscaling(_Model):
    min_count: int = Field(alias="minCount", ge=1, le=1000)
    max_count: int = Field(alias="maxCount", ge=1, le=1000)


class ClusterConfig(_Model):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][-_A-Za-z0-9]{0,61}[A-Za-z0-9]$")]
    node_count: int = Field(3, alias="nodeCount", ge=1, le=1000)
    vm_size: Annotated[str, StringConstraints(pattern=r"^Standard_[A-Za-z0-9_]+$")] = Field(
        "Standard_D2s_v5", alias="vmSize"
    )
    kubernetes_version: Annotated[str, StringConstraints(pattern=r"^1\.\d{2}(\.\d+)?$")] | None = Field(
        None, alias="kubernetesVersion"
    )
    network_plugin_mode: Literal["overlay", "node-subnet"] = Field("overlay", alias="networkPluginMode")
    """`overlay` (recommended) or `node-subnet`, the walkthrough's legacy mode where pods take VNet IPs."""
    pod_cidr: Cidr | None = Field(None, alias="podCidr")
    """Overlay only; defaults to 10.244.0.0/16."""
    service_cidr: Cidr = Field("10.0.0.0/16", alias="serviceCidr")
    dns_service_ip: Annotated[str, AfterValidator(lambda v: str(ipaddress.ip_address(v)))] = Field(
        "10.0.0.10", alias="dnsServiceIp"
    )
    advanced_networking: AdvancedNetworking = Field(AdvancedNetworking(), alias="advancedNetworking")
    entra_id: EntraId | None = Field(None, alias="entraId")
    disable_local_accounts: bool = Field(False, alias="disableLocalAccounts")
    authorized_ip_ranges: tuple[Cidr, ...] = Field((), alias="authorizedIpRanges")
    private_cluster: bool = Field(False, alias="privateCluster")
    availability_zones: tuple[Literal["1", "2", "3"], ...] = Field((), alias="availabilityZones")
    autoscaling: Autoscaling | None = None
    kubelogin_mode: Literal["azurecli", "workloadidentity", "spn", "msi"] = Field("azurecli", alias="kubeloginMode")
    """How the kubeconfig logs in when local accounts are disabled (non-interactive kubelogin)."""
    sku_tier: Literal["Free", "Standard", "Premium"] = Field("Free", alias="skuTier")

    @property
    def effective_pod_cidr(self) -> str | None:
        if self.network_plugin_mode != "overlay":
            return None
        return self.pod_cidr or "10.244.0.0/16"

    @property
    def cilium_version(self) -> tuple[int, int]:
        """The Cilium minor version AKS ships for this cluster's Kubernetes version."""
        return cilium_version_for(self.kubernetes_version)


def cilium_version_for(kubernetes_version: str | None) -> tuple[int, int]:
    if not kubernetes_version:
        return DEFAULT_CILIUM_VERSION
    major, minor = (int(p) for p in kubernetes_version.split(".")[:2])
    if (major, minor) in AKS_CILIUM_VERSIONS:
        return AKS_CILIUM_VERSIONS[(major, minor)]
    return (1, 14) if (major, minor) < min(AKS_CILIUM_VERSIONS) else max(AKS_CILIUM_VERSIONS.values())


class Resources(_Model):
    cpu_request: str = Field("50m", alias="cpuRequest")
    cpu_limit: str = Field("250m", alias="cpuLimit")
    memory_request: str = Field("64Mi", alias="memoryRequest")
    memory_limit: str = Field("128Mi", alias="memoryLimit")


class Workload(_Model):
    namespace: DnsLabel
    image: Annotated[str, StringConstraints(pattern=r"^[^\s]+$", min_length=1)]
    port: Port
    protocol: Protocol = "TCP"
    replicas: int = Field(1, ge=0, le=1000)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Extra pod labels. `app` is set to the workload's name and cannot be overridden."""
    security_profile: Literal["restricted", "baseline"] = Field("restricted", alias="securityProfile")
    """`restricted`: non-root, all capabilities dropped (Pod Security `restricted`).
    `baseline`: for images that must start as root (e.g. the stock nginx image); still drops every
    capability it does not need and forbids privilege escalation (Pod Security `baseline`)."""
    resources: Resources = Resources()
    service_account_token: bool = Field(False, alias="serviceAccountToken")
    """Mount the service-account token into the pods (off unless the workload talks to the API)."""


class HttpRule(_Model):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] | None = None
    path: Annotated[str, StringConstraints(pattern=r"^/")] | None = None
    """A regular expression, as Cilium matches it (e.g. `/api/v1/.*`)."""


class Flow(_Model):
    source: str = Field(alias="from")
    to: str | None = None
    to_fqdns: tuple[Fqdn, ...] | None = Field(None, alias="toFqdns", min_length=1)
    port: Port | None = None
    protocol: Protocol | None = None
    http: tuple[HttpRule, ...] | None = Field(None, min_length=1)


PROBE_IMAGE = "curlimages/curl:8.11.1"
"""The probe image (curl on Alpine; runs as uid 100)."""


class ZeroTrust(_Model):
    default_deny: Literal["ingress-and-egress", "ingress"] = Field("ingress-and-egress", alias="defaultDeny")
    allow_dns: bool = Field(True, alias="allowDns")
    crd_timeout_seconds: int = Field(600, alias="crdTimeoutSeconds", ge=30, le=3600)
    """How long the first `pulumi up` waits for AKS's Cilium to register its policy CRDs."""
    verify: bool = True
    """Run connectivity probes (Kubernetes Jobs) as part of `pulumi up`; a disagreeing probe fails the update."""
    probe_image: Annotated[str, StringConstraints(pattern=r"^[^\s:@]+(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$")] = Field(
        PROBE_IMAGE, alias="probeImage"
    )
    """A curl image, pinned by tag or digest (it must run as a non-root numeric user: uid 100 here)."""


class ExistingCluster(_Model):
    """An existing cluster that already runs Cilium (e.g. kind): no Azure resources are created."""

    context: str | None = None
    """The kubeconfig context to use (default: the current context)."""
    kubeconfig: str | None = None
    """Path to a kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."""
    cilium_version: Annotated[str, StringConstraints(pattern=r"^1\.\d{2}$")] = Field("1.17", alias="ciliumVersion")
    """The cluster's Cilium minor version, for the policy semantics (`cilium version`)."""


class StackConfig(_Model):
    """All of a stack's configuration, keyed by the full Pulumi config keys."""

    location: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+$")] | None = Field(None, alias="azure-native:location")
    resource_group_name: Annotated[str, StringConstraints(pattern=r"^[-\w.()]{1,89}[-\w()]$")] | None = Field(
        None, alias=f"{PROJECT}:resourceGroupName"
    )
    cluster: ClusterConfig | None = Field(None, alias=f"{PROJECT}:cluster")
    """An AKS cluster to create (with its resource group)."""
    kubernetes: ExistingCluster | None = Field(None, alias=f"{PROJECT}:kubernetes")
    """Or: an existing cluster running Cilium, reached through a kubeconfig context."""
    workloads: dict[DnsLabel, Workload] = Field(alias=f"{PROJECT}:workloads", min_length=1)
    flows: tuple[Flow, ...] = Field((), alias=f"{PROJECT}:flows")
    zero_trust: ZeroTrust = Field(ZeroTrust(), alias=f"{PROJECT}:zeroTrust")

    # -- derived views (no state of their own) ---------------------------------

    @property
    def cilium_version(self) -> tuple[int, int]:
        """The Cilium minor version whose policy semantics apply."""
        if self.cluster is not None:
            return self.cluster.cilium_version
        if self.kubernetes is not None:
            major, minor = self.kubernetes.cilium_version.split(".")
            return int(major), int(minor)
        return DEFAULT_CILIUM_VERSION

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The workload namespaces this stack manages, sorted."""
        return tuple(sorted({w.namespace for w in self.workloads.values()}))

    def flow_port(self, flow: Flow) -> int | None:
        if flow.port is not None:
            return flow.port
        return self.workloads[flow.to].port if flow.to in self.workloads else None

    def flow_protocol(self, flow: Flow) -> str:
        if flow.protocol:
            return flow.protocol
        return self.workloads[flow.to].protocol if flow.to in self.workloads else "TCP"


class ConfigErrors(Exception):
    """Bad stack configuration: one line per problem, each naming the key path."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def load_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate a stack's config (full key -> value) into a ``StackConfig``.

    Raises ``ConfigErrors`` listing every problem, pydantic's and the
    cross-field ones, each on one line with its key path.
    """
    decoded, errors = _decode(raw)
    known = {f.alias for f in StackConfig.model_fields.values()}
    for key in sorted(decoded):
        if key.startswith(f"{PROJECT}:") and key not in known:
            allowed = ", ".join(sorted(k for k in known if k.startswith(PROJECT)))
            errors.append(f"{key}: unknown config key; the project's keys are: {allowed}")
    project_and_provider = {k: v for k, v in decoded.items() if k in known}
    try:
        cfg = StackConfig.model_validate(project_and_provider)
    except ValidationError as e:
        raise ConfigErrors(errors + [_format_pydantic(err) for err in e.errors()]) from None
    errors += semantic_errors(cfg)
    if errors:
        raise ConfigErrors(errors)
    return cfg


def _decode(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    out, errors = {}, []
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                errors.append(f"{key}: not valid JSON ({e.msg} at character {e.pos})")
                continue
        out[key] = value
    return out, errors


def format_path(loc: tuple[Any, ...]) -> str:
    """``('zero-trust-aks:flows', 0, 'to')`` -> ``zero-trust-aks:flows[0].to``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _format_pydantic(err: Any) -> str:
    loc = tuple(err["loc"])
    msg = err["msg"]
    if err["type"] == "string_pattern_mismatch":
        msg = f"{err['input']!r} is not allowed here; it must match {err['ctx']['pattern']}"
    elif err["type"] == "literal_error":
        msg = f"{err['input']!r} is not allowed; allowed: {err['ctx']['expected']}"
    elif err["type"] == "extra_forbidden":
        msg = "unknown key (check its spelling)"
    elif err["type"] == "missing":
        msg = "required"
    elif err["type"] == "value_error":
        msg = f"{err['input']!r}: {msg.removeprefix('Value error, ')}"
    return f"{format_path(loc)}: {msg}"


def semantic_errors(cfg: StackConfig) -> list[str]:
    """Cross-field rules pydantic cannot express field by field."""
    p = PROJECT
    errors: list[str] = []
    if (cfg.cluster is None) == (cfg.kubernetes is None):
        errors.append(
            f"{p}:cluster: give exactly one of {p}:cluster (an AKS cluster to create) "
            f"or {p}:kubernetes (an existing cluster running Cilium)"
        )
    if cfg.cluster is not None:
        for key, value in (("azure-native:location", cfg.location), (f"{p}:resourceGroupName", cfg.resource_group_name)):
            if value is None:
                errors.append(f"{key}: required with {p}:cluster")
    elif cfg.kubernetes is not None:
        for key, value in (("azure-native:location", cfg.location), (f"{p}:resourceGroupName", cfg.resource_group_name)):
            if value is not None:
                errors.append(f"{key}: not used with {p}:kubernetes (no Azure resources are created); remove it")
    if cfg.zero_trust.verify and not cfg.zero_trust.allow_dns and cfg.zero_trust.default_deny == "ingress-and-egress":
        errors.append(
            f"{p}:zeroTrust.verify: the probes reach their targets by Service DNS name, which needs "
            f"{p}:zeroTrust.allowDns: true; allow DNS or set verify: false"
        )
    if cfg.cluster is not None:
        errors += cluster_errors(cfg.cluster)
    # An existing cluster's Cilium decides what it enforces: L7 and FQDN rules are not refused here.
    security = cfg.cluster.advanced_networking.security if cfg.cluster is not None else "l7"

    for name, w in cfg.workloads.items():
        if "app" in w.labels:
            errors.append(f"{p}:workloads.{name}.labels.app: reserved; it is always the workload's name ({name!r})")
        if w.namespace in RESERVED_NAMESPACES:
            errors.append(f"{p}:workloads.{name}.namespace: {w.namespace!r} is managed by AKS; choose your own namespace")

    names = ", ".join(sorted(cfg.workloads))
    seen: dict[tuple, int] = {}
    for i, f in enumerate(cfg.flows):
        at = f"{p}:flows[{i}]"
        if f.source not in cfg.workloads:
            errors.append(f"{at}.from: {f.source!r} is not a workload; workloads are: {names}")
        if (f.to is None) == (f.to_fqdns is None):
            errors.append(f"{at}: give exactly one of 'to' (a workload) or 'toFqdns' (outside names)")
            continue
        if f.to is not None:
            if f.to not in cfg.workloads:
                errors.append(f"{at}.to: {f.to!r} is not a workload; workloads are: {names}")
                continue
            target = cfg.workloads[f.to]
            if f.port is not None and f.port != target.port:
                errors.append(f"{at}.port: {f.to!r} listens on {target.port} only; omit port or use {target.port}")
            if f.protocol is not None and f.protocol != target.protocol:
                errors.append(f"{at}.protocol: {f.to!r} serves {target.protocol}")
            if f.http is not None:
                if security != "l7":
                    errors.append(
                        f"{at}.http: L7 rules need {p}:cluster.advancedNetworking.security: l7 "
                        f"(now {security!r}); AKS rejects them otherwise"
                    )
                if cfg.flow_protocol(f) != "TCP":
                    errors.append(f"{at}.http: HTTP rules need protocol TCP")
        else:
            if f.port is None:
                errors.append(f"{at}.port: required with toFqdns (the port on the outside host)")
            if security not in ("fqdn", "l7"):
                errors.append(
                    f"{at}.toFqdns: FQDN rules need {p}:cluster.advancedNetworking.security: fqdn or l7 "
                    f"(now {security!r}); AKS rejects them otherwise"
                )
            if f.http is not None:
                errors.append(f"{at}.http: HTTP rules apply to flows between workloads only")
            if cfg.zero_trust.default_deny != "ingress-and-egress":
                errors.append(
                    f"{at}.toFqdns: needs {p}:zeroTrust.defaultDeny: ingress-and-egress "
                    "(an egress rule would put the pod in egress default deny)"
                )
        key = (f.source, f.to, f.to_fqdns, cfg.flow_port(f), cfg.flow_protocol(f))
        if key in seen:
            errors.append(f"{at}: the same flow as {p}:flows[{seen[key]}]")
        seen.setdefault(key, i)
    return errors


def cluster_errors(c: ClusterConfig) -> list[str]:
    """Cross-field rules of an AKS cluster's config."""
    p = PROJECT
    errors: list[str] = []
    security = c.advanced_networking.security

    if c.disable_local_accounts and c.entra_id is None:
        errors.append(
            f"{p}:cluster.disableLocalAccounts: needs {p}:cluster.entraId (without Entra ID nobody could log in)"
        )
    if c.private_cluster and c.authorized_ip_ranges:
        errors.append(
            f"{p}:cluster.authorizedIpRanges: not allowed with privateCluster: true (AKS rejects the combination)"
        )
    for i, cidr in enumerate(c.authorized_ip_ranges):
        if ipaddress.ip_network(cidr).prefixlen == 0:
            errors.append(f"{p}:cluster.authorizedIpRanges[{i}]: {cidr} opens the API server to everyone; list your ranges")
    if c.autoscaling and not (c.autoscaling.min_count <= c.node_count <= c.autoscaling.max_count):
        errors.append(
            f"{p}:cluster.nodeCount: {c.node_count} must lie within autoscaling "
            f"minCount..maxCount ({c.autoscaling.min_count}..{c.autoscaling.max_count})"
        )
    if c.pod_cidr and c.network_plugin_mode != "overlay":
        errors.append(f"{p}:cluster.podCidr: only used with networkPluginMode: overlay (pods take node-subnet IPs)")
    if security != "none" and c.kubernetes_version and cilium_version_for(c.kubernetes_version) < (1, 14):
        errors.append(f"{p}:cluster.advancedNetworking.security: needs Kubernetes 1.29 or later on AKS")
    return errors
