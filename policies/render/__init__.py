"""Config -> Kubernetes manifests, as plain dicts.

This is where intent (workloads and the flows between them) becomes the
objects that are applied. Components wrap these dicts in Pulumi resources and
add nothing of their own, so what the verdict engine judges here is what is
deployed.

Cilium facts this module relies on (see docs/policy-semantics.md):

- A direction is enforced for a pod only when a rule that selects it has a
  *non-empty* ``ingress``/``egress`` list; ``ingress: []`` enforces nothing.
  ``ingress: [{}]`` enforces default deny and allows nothing by itself.
  ``enableDefaultDeny`` is set only in a staged namespace (off, both directions), which
  config allows only where Cilium has the field (1.16+; 1.14 prunes it).
- A CNP's peer selectors are confined to the policy's own namespace unless
  they name ``k8s:io.kubernetes.pod.namespace``, so every peer names it.
- A connection needs the source's egress allow *and* the destination's
  ingress allow, so each flow is rendered on both sides.

Its parts: ``labels`` (the names objects carry), ``workloads`` (Namespaces, Deployments,
Services, service accounts), ``rules`` (the policies), ``podspec`` (the pod template of any
object that makes pods).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policies.config import StackConfig
from policies.render.labels import (
    CILIUM_API,
    DEFAULT_ALLOW,
    ENFORCEMENT_LABEL,
    FLOWS_ANNOTATION,
    KUBE_DNS,
    MANAGED_BY,
    NS_LABEL,
    OTHER_IDENTITIES_ANNOTATION,
    ROLE_LABEL,
)
from policies.render.rules import (
    CLUSTER_DNS_DOMAINS,
    as_enforced,
    SEARCH_DEPTH,
    cluster_dns_names,
    cnp,
    describe,
    dns_ports,
    dns_rules,
    egress_rules,
    ingress_rule,
    namespace_policies,
    peer,
    peer_rule,
    policy_name,
    workload_policy,
)
from policies.render.workloads import (
    BASELINE_CAPABILITIES,
    deployment,
    namespace,
    pod_labels,
    selector,
    selector_labels,
    service,
    service_account,
)


@dataclass(frozen=True)
class WorkloadManifests:
    name: str
    deployment: dict[str, Any]
    service: dict[str, Any] | None


@dataclass(frozen=True)
class NamespaceManifests:
    name: str
    namespace: dict[str, Any]
    """The Namespace the stack creates; or, for one that exists already (``create: false``), the labels the
    stack sets on it (applied as a server-side patch that neither creates nor deletes it)."""
    policies: tuple[dict[str, Any], ...]
    workloads: tuple[WorkloadManifests, ...] = field(default=())
    create: bool = True
    service_accounts: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class Rendered:
    namespaces: tuple[NamespaceManifests, ...]

    def all(self) -> list[dict[str, Any]]:
        """Every object, namespaces first, in a stable order."""
        out: list[dict[str, Any]] = [n.namespace for n in self.namespaces]
        for n in self.namespaces:
            out.extend(n.service_accounts)
            for w in n.workloads:
                out.append(w.deployment)
                if w.service:
                    out.append(w.service)
        for n in self.namespaces:
            out.extend(n.policies)
        return out

    def policies(self) -> list[dict[str, Any]]:
        return [p for n in self.namespaces for p in n.policies]


def render(cfg: StackConfig) -> Rendered:
    targets = cfg.flow_targets
    namespaces = []
    for ns in cfg.namespaces:
        members = {name: w for name, w in sorted(cfg.workloads.items()) if w.namespace == ns}
        workloads = tuple(
            WorkloadManifests(
                name=name,
                deployment=deployment(name, w),
                service=service(name, w) if name in targets or w.expose == "loadBalancer" else None,
            )
            for name, w in members.items()
            if w.deployed
        )
        accounts = sorted({w.service_account_name for w in members.values() if w.service_account_name not in (None, "default")})
        namespaces.append(
            NamespaceManifests(
                name=ns,
                namespace=namespace(ns, members.values(), cfg),
                policies=tuple(namespace_policies(cfg, ns)),
                workloads=workloads,
                create=cfg.creates_namespace(ns),
                service_accounts=tuple(service_account(a, ns) for a in accounts),
            )
        )
    return Rendered(tuple(namespaces))


__all__ = [
    "BASELINE_CAPABILITIES", "CILIUM_API", "CLUSTER_DNS_DOMAINS", "DEFAULT_ALLOW", "ENFORCEMENT_LABEL", "FLOWS_ANNOTATION", "KUBE_DNS", "MANAGED_BY", "NS_LABEL",
    "OTHER_IDENTITIES_ANNOTATION", "ROLE_LABEL", "SEARCH_DEPTH",
    "NamespaceManifests", "Rendered", "WorkloadManifests",
    "as_enforced", "cluster_dns_names", "cnp", "deployment", "describe", "dns_ports", "dns_rules", "egress_rules", "ingress_rule", "namespace",
    "namespace_policies", "peer", "peer_rule", "pod_labels", "policy_name", "render", "selector", "selector_labels", "service",
    "service_account", "workload_policy",
]
