"""zero-trust-aks: AKS with Azure CNI powered by Cilium, under default-deny policies.

Config -> frozen models -> manifests -> resources, in that order and once.
"""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from components.aks_cluster import AksCluster
from components.crd_gate import CiliumCrdGate
from components.resource_group import ResourceGroup
from components.zero_trust_namespace import ZeroTrustNamespace
from policies.config import ConfigErrors, load_config
from policies.render import describe, render

try:
    # Every key the engine passed (the CLI sets them all; PULUMI_CONFIG is the fallback).
    cfg = load_config({**get_config_env(), **CONFIG.get()})
except ConfigErrors as e:
    raise pulumi.RunError(f"invalid stack configuration:\n{e}") from None

group = ResourceGroup(cfg.resource_group_name, group_name=cfg.resource_group_name, location=cfg.location)
aks = AksCluster(cfg.cluster.name, cluster=cfg.cluster, resource_group_name=group.name, location=cfg.location)
gate = CiliumCrdGate(
    f"{cfg.cluster.name}-cilium-crds",
    kubeconfig=aks.kubeconfig,
    timeout_seconds=cfg.zero_trust.crd_timeout_seconds,
    opts=pulumi.ResourceOptions(parent=aks),
)
namespaces = {
    ns.name: ZeroTrustNamespace(ns.name, manifests=ns, provider=aks.provider, policy_gate=[gate])
    for ns in render(cfg).namespaces
}

pulumi.export("resourceGroupName", group.name)
pulumi.export("clusterName", aks.name)
pulumi.export("kubeconfig", aks.kubeconfig)
pulumi.export("ciliumVersion", ".".join(map(str, cfg.cluster.cilium_version)))
pulumi.export("namespaces", list(namespaces))
pulumi.export("policies", {name: n.policy_names for name, n in namespaces.items()})
pulumi.export("flows", [describe(cfg, f) for f in cfg.flows])
