"""One workload: its Deployment and, where it receives traffic, its Service."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from policies.render import WorkloadManifests


class Workload(pulumi.ComponentResource):
    """Wraps the manifests ``policies.render`` made for one workload."""

    def __init__(
        self,
        name: str,
        *,
        manifests: WorkloadManifests,
        provider: k8s.Provider,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("zero-trust-aks:kubernetes:Workload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(depends_on))
        d = manifests.deployment
        self.deployment = k8s.apps.v1.Deployment(f"{name}-deployment", metadata=d["metadata"], spec=d["spec"], opts=child)
        self.service = None
        if manifests.service:
            s = manifests.service
            self.service = k8s.core.v1.Service(f"{name}-service", metadata=s["metadata"], spec=s["spec"], opts=child)
        self.register_outputs({"deployment": self.deployment.metadata["name"]})
