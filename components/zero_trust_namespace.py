"""A workload namespace under zero trust: the Namespace (or the label on one that exists), its Cilium policies, its
workloads' service accounts, Deployments and Services."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from policies.render import NamespaceManifests


class ZeroTrustNamespace(pulumi.ComponentResource):
    """Wraps the manifests ``policies.render`` made for one namespace.

    Order of creation: the Namespace, then (once ``policy_gate`` reports the
    Cilium CRDs ready) its CiliumNetworkPolicies, and only then the
    workloads, so no pod ever runs without its default deny.
    """

    policy_names: pulumi.Output[list[str]]

    def policy(self, name: str) -> pulumi.Resource:
        """The CustomResource of one of its policies, by the policy's name."""
        return self._by_name[name]

    def __init__(
        self,
        name: str,
        *,
        manifests: NamespaceManifests,
        provider: k8s.Provider,
        policy_gate: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("zero-trust-aks:kubernetes:ZeroTrustNamespace", name, None, opts)
        ns = manifests.namespace
        if manifests.create:
            self.namespace: pulumi.CustomResource = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=ns["metadata"],
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
        else:
            # A namespace its owner created: a server-side apply patch sets the stack's label and, on
            # `pulumi destroy`, takes back only what it set; the namespace is never created or deleted here.
            self.namespace = k8s.core.v1.NamespacePatch(
                f"{name}-namespace-labels",
                api_version=ns["apiVersion"],
                kind=ns["kind"],
                metadata=ns["metadata"],
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
        after_namespace = pulumi.ResourceOptions(
            parent=self, provider=provider, depends_on=[self.namespace, *policy_gate]
        )
        self.policies = [
            k8s.apiextensions.CustomResource(
                f"{name}-{p['metadata']['name']}",
                api_version=p["apiVersion"],
                kind=p["kind"],
                metadata=p["metadata"],
                spec=p["spec"],
                opts=after_namespace,
            )
            for p in manifests.policies
        ]
        # Deployments and Services are direct children (no component per workload): a stack of
        # a thousand workloads registers a thousand fewer resources.
        after_policies = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace, *self.policies])
        for a in manifests.service_accounts:
            k8s.core.v1.ServiceAccount(
                f"{name}-{a['metadata']['name']}-serviceaccount",
                metadata=a["metadata"],
                automount_service_account_token=a["automountServiceAccountToken"],
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.namespace]),
            )
        self.workloads: dict[str, list[pulumi.Resource]] = {}
        for w in manifests.workloads:
            d = w.deployment
            objects: list[pulumi.Resource] = [
                k8s.apps.v1.Deployment(f"{w.name}-deployment", metadata=d["metadata"], spec=d["spec"], opts=after_policies)
            ]
            if w.service:
                objects.append(
                    k8s.core.v1.Service(
                        f"{w.name}-service", metadata=w.service["metadata"], spec=w.service["spec"], opts=after_policies
                    )
                )
            self.workloads[w.name] = objects
        self._by_name = {p["metadata"]["name"]: r for p, r in zip(manifests.policies, self.policies)}
        self.policy_names = pulumi.Output.from_input([p["metadata"]["name"] for p in manifests.policies])
        self.register_outputs({"namespace": self.namespace.metadata["name"], "policies": self.policy_names})
