"""An existing cluster that already runs Cilium (e.g. kind), reached through a kubeconfig context."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from policies.config import ExistingCluster as ExistingClusterConfig


class ExistingCluster(pulumi.ComponentResource):
    """The Kubernetes provider for a cluster this stack does not create.

    No Azure resources and no CRD gate: the cluster runs Cilium already, so
    its policy CRDs exist before the first ``pulumi up``.
    """

    provider: k8s.Provider

    def __init__(self, name: str, *, cluster: ExistingClusterConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("zero-trust-aks:kubernetes:ExistingCluster", name, None, opts)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            context=cluster.context,
            kubeconfig=cluster.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.context = pulumi.Output.from_input(cluster.context or "")
        self.register_outputs({"context": self.context})
