"""The staging pre-flight: before a staged namespace's policies are applied, read the live cluster and
refuse unless staging is known to drop nothing there (``policies.analysis.staging`` decides).

A dynamic resource like the CRD gate: its ``create`` reads ``kube-system/cilium-config``, the Cilium agent's
image and every policy in the cluster with the stack's own credentials, and fails the update with one line
per problem. It runs again whenever the staged namespaces, their workloads or rules, or the cluster change;
with no staged namespace there is no gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from components.crd_gate import replace_on_change
from policies.analysis import staging

Reader = Callable[[], staging.ClusterFacts]

POLICY_LISTS = (
    ("cilium.io", "v2", "ciliumnetworkpolicies", "CiliumNetworkPolicy"),
    ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy"),
)


class StagingRefused(Exception):
    """Staging is not known to drop nothing on this cluster: one line per reason."""


def check(read: Reader, namespaces: Sequence[Mapping[str, Any]], own: Sequence[Mapping[str, Any]]) -> list[str]:
    """The staged namespaces, read from the live cluster: raises ``StagingRefused`` with every problem."""
    found = staging.problems([staging.StagedNamespace.from_dict(n) for n in namespaces], own, read())
    if found:
        raise StagingRefused("staging refused:\n" + "\n".join(f"  {line}" for line in found))
    return [str(n["name"]) for n in namespaces]


def _forbidden(what: str, e: Any) -> StagingRefused:
    return StagingRefused(
        f"staging refused: reading {what}: the API server answered {e.status} {e.reason}; the stack's identity needs get on "
        "configmaps and daemonsets in kube-system and list on ciliumnetworkpolicies, ciliumclusterwidenetworkpolicies and "
        "networkpolicies (with Entra ID and Azure RBAC: a role such as Azure Kubernetes Service RBAC Cluster Admin)"
    )


def kube_reader(kubeconfig: str | None, context: str | None = None, path: str | None = None) -> Reader:
    """Reads the cluster with a kubeconfig's text (an AKS cluster's), or a kubeconfig file and context (an existing cluster)."""

    def read() -> staging.ClusterFacts:
        import yaml
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        if kubeconfig:
            api = config.new_client_from_config_dict(yaml.safe_load(kubeconfig))
        else:
            api = config.new_client_from_config(config_file=path, context=context)
        core, apps, net, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api), client.CustomObjectsApi(api)

        def get(what: str, call: Callable[[], Any]) -> Any:
            try:
                return call()
            except ApiException as e:
                if e.status == 404:
                    return None
                if e.status in (401, 403):
                    raise _forbidden(what, e) from None
                raise StagingRefused(f"staging refused: reading {what}: the API server answered {e.status} {e.reason}") from None

        cm = get("kube-system/cilium-config", lambda: core.read_namespaced_config_map("cilium-config", "kube-system"))
        ds = get("the DaemonSet kube-system/cilium", lambda: apps.read_namespaced_daemon_set("cilium", "kube-system"))
        image = next((c.image for c in ds.spec.template.spec.containers if c.name == "cilium-agent"), None) if ds else None
        policies = []
        for group, version, plural, kind in POLICY_LISTS:
            listed = get(plural, lambda: custom.list_cluster_custom_object(group, version, plural)) or {}
            policies += [{**item, "kind": kind} for item in listed.get("items") or []]
        nps = get("networkpolicies", lambda: net.list_network_policy_for_all_namespaces())
        for item in nps.items if nps else ():
            policies.append({**api.sanitize_for_serialization(item), "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1"})
        return staging.ClusterFacts(dict(cm.data or {}) if cm else None, image, tuple(policies))

    return read


class _StagingGateProvider(pulumi.dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        read = kube_reader(props.get("kubeconfig"), props.get("context"), props.get("kubeconfigPath"))
        checked = check(read, props["staged"], props["policies"])
        return pulumi.dynamic.CreateResult(id_="cilium-staging", outs={**props, "checked": checked})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        return replace_on_change(olds, news, ("kubeconfig", "context", "kubeconfigPath", "staged", "policies"))


class CiliumStagingGate(pulumi.dynamic.Resource, module="zero-trust-aks", name="CiliumStagingGate"):
    """Completes once the live cluster is known to drop nothing in the staged namespaces."""

    checked: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        staged: Sequence[staging.StagedNamespace],
        policies: Sequence[Mapping[str, Any]],
        kubeconfig: pulumi.Input[str] | None = None,
        context: str | None = None,
        kubeconfig_path: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        props: dict[str, Any] = {
            "staged": [n.as_dict() for n in staged],
            "policies": [dict(p) for p in policies],
            "context": context,
            "kubeconfigPath": kubeconfig_path,
            "checked": None,
        }
        if kubeconfig is not None:
            props["kubeconfig"] = pulumi.Output.secret(kubeconfig)
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"]))
        super().__init__(_StagingGateProvider(), name, props, opts)
