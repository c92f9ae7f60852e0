"""zero-trust-aks: AKS with Azure CNI powered by Cilium, under default-deny policies.

Config -> frozen models -> manifests -> resources, in that order and once.
"""

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from components.aks_cluster import AksCluster
from components.crd_gate import CiliumCrdGate
from components.existing_cluster import ExistingCluster
from components.probes import ConnectivityProbes, ProbeJob
from components.resource_group import ResourceGroup
from components.staging_gate import CiliumStagingGate
from components.zero_trust_namespace import ZeroTrustNamespace
from policies.config import ConfigErrors, load_config
from policies.analysis import staging
from policies.analysis.probes import job, prober_namespace, probes
from policies.render import describe, render

try:
    # Every key the engine passed (the CLI sets them all; PULUMI_CONFIG is the fallback).
    cfg = load_config({**get_config_env(), **CONFIG.get()})
except ConfigErrors as e:
    raise pulumi.RunError(f"invalid stack configuration:\n{e}") from None

rendered = render(cfg)
if cfg.cluster is not None:
    group = ResourceGroup(
        cfg.resource_group_name,
        group_name=cfg.resource_group_name,
        location=cfg.location,
        create=cfg.create_resource_group,
    )
    aks = AksCluster(cfg.cluster.name, cluster=cfg.cluster, resource_group_name=group.name, location=cfg.location)
    gate = [
        CiliumCrdGate(
            f"{cfg.cluster.name}-cilium-crds",
            kubeconfig=aks.kubeconfig,
            timeout_seconds=cfg.zero_trust.crd_timeout_seconds,
            opts=pulumi.ResourceOptions(parent=aks),
        )
    ]
    provider = aks.provider
    pulumi.export("resourceGroupName", group.name)
    pulumi.export("clusterName", aks.name)
    pulumi.export("kubeconfig", aks.kubeconfig)
else:
    existing = ExistingCluster("existing-cluster", cluster=cfg.kubernetes)
    provider, gate = existing.provider, []
    pulumi.export("kubeContext", existing.context)

staged = staging.staged(cfg, rendered)
if staged:  # a staged namespace's policies wait until the live cluster is known to drop nothing there
    if cfg.cluster is not None:
        where, parent = {"kubeconfig": aks.kubeconfig}, aks
    else:
        where, parent = {"context": cfg.kubernetes.context, "kubeconfig_path": cfg.kubernetes.kubeconfig}, existing
    staging_gate = [CiliumStagingGate("cilium-staging", staged=staged, policies=rendered.policies(), **where,
                                      opts=pulumi.ResourceOptions(parent=parent, depends_on=gate))]
namespaces = {
    ns.name: ZeroTrustNamespace(ns.name, manifests=ns, provider=provider,
                                policy_gate=gate + (staging_gate if cfg.enforcement(ns.name) == "staged" else []))
    for ns in rendered.namespaces
}
probe_set = probes(cfg, rendered)
if cfg.zero_trust.verify and probe_set.probes:
    prober = prober_namespace(cfg)
    if prober is not None:  # the ingress prober's own namespace and egress allow
        namespaces[prober.name] = ZeroTrustNamespace(prober.name, manifests=prober, provider=provider, policy_gate=gate)

    def after(g):
        """What a Job's verdicts depend on: the policies selecting either end of a check, and its targets."""
        deps = [namespaces[ns].policy(name) for ns, name in g.policies]
        for target in g.targets:
            deps += namespaces[cfg.workloads[target].namespace].workloads.get(target, [])
        return deps

    ConnectivityProbes(
        "connectivity-probes",
        jobs=[ProbeJob(g.resource_name, job(g, cfg.zero_trust.probe_image), after(g)) for g in probe_set.groups],
        provider=provider,
    )
    pulumi.export("probes", {p.flow: p.expect for p in probe_set.probes})

pulumi.export("ciliumVersion", ".".join(map(str, cfg.cilium_version)))
pulumi.export("namespaces", list(namespaces))
pulumi.export("ciliumPolicies", {name: n.policy_names for name, n in namespaces.items()})
pulumi.export("flows", [describe(cfg, f) for f in cfg.flows])
