"""The stack configuration as frozen pydantic models: field by field, what each key accepts.

The value types are in ``fields``; the cluster's keys in ``cluster``; workloads, peers and flows
in ``workloads``; the stack as a whole here. Rules that need more than one field live in
``rules``; the limits on size in ``limits``; both run in the same pass (``load``), so every
problem is reported at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PrivateAttr, StringConstraints

from policies import acns_levels
from policies.cilium_versions import DEFAULT_CILIUM, Version, parse_minor
from policies.config import azure
from policies.config.cluster import (
    AdvancedNetworking,
    AutoUpgrade,
    Autoscaling,
    ClusterConfig,
    EntraId,
    ExistingCluster,
    ImageCleaner,
)
from policies.config.fields import (
    PROBE_IMAGE,
    PROJECT,
    Count,
    DnsLabel,
    Port,
    _Model,
    _pinned_image,
    _public_ip,
    _shaped,
)
from policies.config.workloads import (
    PEER_ENTITIES,
    EnvFrom,
    Flow,
    HealthCheck,
    HttpRule,
    KeyRef,
    PeerConfig,
    PortSpec,
    Resources,
    WorkloadConfig,
)

__all__ = [
    "PEER_ENTITIES", "PROBE_IMAGE", "PROJECT", "AdvancedNetworking", "AutoUpgrade", "Autoscaling", "ClusterConfig", "DnsLabel",
    "EntraId", "Enforcement", "EnvFrom", "ExistingCluster", "Flow", "HealthCheck", "HttpRule", "ImageCleaner", "KeyRef", "NamespaceConfig",
    "PeerConfig", "PortSpec", "Resources", "StackConfig", "WorkloadConfig", "ZeroTrust",
]


Enforcement = Literal["enforced", "staged"]
"""``enforced``: default deny drops what no rule allows. ``staged``: the same allow rules with default deny
off (Cilium's ``enableDefaultDeny``, 1.16+), so nothing is dropped and Cilium's policy verdicts say which
connections the rules match and which pass only because default deny is off (docs/adopting-zero-trust.md)."""


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
    enforcement: Enforcement = "enforced"
    """The stack's default enforcement for its namespaces (``namespaces.<ns>.enforcement`` overrides it)."""
    other_identities: Count | None = Field(None, alias="otherIdentities", ge=0, le=65535)
    """Security identities in the cluster that the stack does not know (pods of other teams), for the
    policy-map budget; default: AKS's own (16) plus one per managed namespace."""


class NamespaceConfig(_Model):
    """A managed namespace's own settings."""

    create: bool = True
    """False: the namespace exists already (created by its owner); the stack labels and polices it, and
    neither creates nor deletes it."""
    enforcement: Enforcement | None = None
    """This namespace's enforcement; unset: ``zeroTrust.enforcement``."""


class StackConfig(_Model):
    """All of a stack's configuration, keyed by the full Pulumi config keys."""

    _target_ports: dict[int, tuple[Flow, PortSpec | None]] = PrivateAttr(default_factory=dict)
    """Each flow's target port, found once (the flows are the model's own, frozen)."""

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

    def enforcement(self, namespace: str) -> Enforcement:
        """A managed namespace's enforcement: its own setting, else the stack's."""
        settings = self.namespace_settings.get(namespace)
        if settings is not None and settings.enforcement is not None:
            return settings.enforcement
        return self.zero_trust.enforcement

    @property
    def staged_namespaces(self) -> tuple[str, ...]:
        """The managed namespaces whose policies are staged (default deny off), sorted."""
        return tuple(ns for ns in self.namespaces if self.enforcement(ns) == "staged")

    def enforced_everywhere(self) -> StackConfig:
        """This config with every namespace enforced: what its rules mean once staging ends."""
        if not self.staged_namespaces:
            return self
        settings = {ns: s.model_copy(update={"enforcement": None}) for ns, s in self.namespace_settings.items()}
        return self.model_copy(update={"namespace_settings": settings, "zero_trust": self.zero_trust.model_copy(update={"enforcement": "enforced"})})

    def creates_namespace(self, namespace: str) -> bool:
        settings = self.namespace_settings.get(namespace)
        return settings is None or settings.create

    def flow_target_port(self, flow: Flow) -> PortSpec | None:
        """The target workload's port a flow reaches: the one it names, or the only one (of its protocol); else None."""
        key = id(flow)
        hit = self._target_ports.get(key)
        if hit is None or hit[0] is not flow:
            hit = self._target_ports[key] = (flow, self._find_target_port(flow))
        return hit[1]

    def _find_target_port(self, flow: Flow) -> PortSpec | None:
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
