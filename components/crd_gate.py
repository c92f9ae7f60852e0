"""A readiness gate: wait until AKS's Cilium has registered its policy CRDs.

On a fresh cluster the Cilium operator registers ``ciliumnetworkpolicies.cilium.io``
some time after the ARM deployment reports success. pulumi-kubernetes retries
a missing kind for about a minute, then fails the first ``pulumi up`` with
"no matches for kind CiliumNetworkPolicy". Every Cilium policy therefore
depends on this gate, a dynamic resource whose ``create`` polls the API server
(with the cluster's own kubeconfig) until each CRD reports ``Established``, for
up to ``zeroTrust.crdTimeoutSeconds``. On later runs nothing changes and
nothing waits; when the cluster is replaced, so is the gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

CILIUM_POLICY_CRDS = (
    "ciliumnetworkpolicies.cilium.io",
    "ciliumclusterwidenetworkpolicies.cilium.io",
)


class CrdTimeout(Exception):
    pass


class CrdGateError(Exception):
    """The API server refused to answer: one line saying who may not do what."""


def wait_for_crds(
    read: Callable[[str], dict[str, Any] | None],
    names: Sequence[str],
    timeout_seconds: float,
    *,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Poll ``read(name)`` (the CRD as a dict, or None if absent) until every CRD is Established."""
    deadline = clock() + timeout_seconds
    pending = list(names)
    while True:
        pending = [n for n in pending if not _established(read(n))]
        if not pending:
            return list(names)
        if clock() >= deadline:
            raise CrdTimeout(
                f"Cilium's CRDs {', '.join(pending)} were not Established after {timeout_seconds:.0f}s; "
                "is the cluster's networkDataplane cilium and is cilium-operator running in kube-system?"
            )
        sleep(interval)


def _established(crd: dict[str, Any] | None) -> bool:
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _kube_reader(kubeconfig: str) -> Callable[[str], dict[str, Any] | None]:
    import yaml
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = client.ApiextensionsV1Api(config.new_client_from_config_dict(yaml.safe_load(kubeconfig)))

    def read(name: str) -> dict[str, Any] | None:
        try:
            return api.read_custom_resource_definition(name).to_dict()
        except ApiException as e:
            if e.status == 404:
                return None
            if e.status in (401, 403):
                raise CrdGateError(
                    f"reading CustomResourceDefinition {name}: the API server answered {e.status} {e.reason}; the "
                    "stack's kubeconfig identity needs get on customresourcedefinitions.apiextensions.k8s.io "
                    "(with Entra ID and Azure RBAC: a role such as Azure Kubernetes Service RBAC Cluster Admin)"
                ) from None
            raise CrdGateError(f"reading CustomResourceDefinition {name}: the API server answered {e.status} {e.reason}") from None

    return read


def replace_on_change(olds: dict[str, Any], news: dict[str, Any], keys: Sequence[str]) -> pulumi.dynamic.DiffResult:
    """A gate's diff: a change to any of ``keys`` replaces it, so its ``create`` runs (and checks) again."""
    changed = [k for k in keys if olds.get(k) != news.get(k)]
    return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)


class _CrdGateProvider(pulumi.dynamic.ResourceProvider):
    def __init__(self, interval: float = 5.0):
        self.interval = interval

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        names = wait_for_crds(
            _kube_reader(props["kubeconfig"]), props["crds"], float(props["timeoutSeconds"]), interval=self.interval
        )
        return pulumi.dynamic.CreateResult(id_="cilium-crds", outs={**props, "established": names})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        return replace_on_change(olds, news, ("kubeconfig", "crds"))


class CiliumCrdGate(pulumi.dynamic.Resource, module="zero-trust-aks", name="CiliumCrdGate"):
    """Completes once Cilium's policy CRDs are Established on the cluster."""

    established: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        kubeconfig: pulumi.Input[str],
        timeout_seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"]))
        super().__init__(
            _CrdGateProvider(),
            name,
            {
                "kubeconfig": pulumi.Output.secret(kubeconfig),
                "crds": list(CILIUM_POLICY_CRDS),
                "timeoutSeconds": timeout_seconds,
                "established": None,
            },
            opts,
        )
