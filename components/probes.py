"""Connectivity probes as Kubernetes Jobs, run by every `pulumi up` that changes a policy or workload."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import pulumi
import pulumi_kubernetes as k8s


class ProbeJob(NamedTuple):
    resource_name: str
    """The Pulumi name (``Probe.resource_name``): stable while the Job's name carries a digest."""
    manifest: dict[str, Any]
    after: Sequence[pulumi.Resource]
    """What the probe's verdict depends on: the policies of its source and target
    namespaces and the target workload (nothing else, so large stacks stay cheap)."""


class ConnectivityProbes(pulumi.ComponentResource):
    """Wraps the probe Jobs ``policies.analysis.probes`` made.

    pulumi-kubernetes waits for each Job to succeed and fails the update when
    one fails, i.e. when a probe observed something other than its
    expectation; the Job's log line names the flow. A Job's name carries a
    hash of what its verdict depends on (the policies of its two namespaces
    and its target workload), so a change re-runs only the probes it can
    affect; the logical names stay stable. Jobs have no
    ``ttlSecondsAfterFinished``: a Job that deleted itself would be dropped by
    the next ``pulumi refresh`` and run again by the next ``pulumi up``
    (pulumi/pulumi#6456). A finished Job keeps one Completed pod until a change
    replaces it.
    """

    def __init__(
        self,
        name: str,
        *,
        jobs: Sequence[ProbeJob],
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("zero-trust-aks:kubernetes:ConnectivityProbes", name, None, opts)
        self.jobs = []
        for resource_name, manifest, after in jobs:
            self.jobs.append(
                k8s.batch.v1.Job(
                    resource_name,
                    metadata=manifest["metadata"],
                    spec=manifest["spec"],
                    opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(after)),
                )
            )
        self.names = [j.manifest["metadata"]["name"] for j in jobs]
        self.register_outputs({"jobs": self.names})
