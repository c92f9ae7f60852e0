"""The guardrails, one row each: name, what it holds, why, default level, scope, check."""

from __future__ import annotations

from policies.guardrails import aks, cilium, datapath, workloads
from policies.guardrails.resources import MANAGED_CLUSTER, Rule
from policies.podspec import POD_TEMPLATE_KINDS
from policies.verdict import CCNP, CNP

RULES: tuple[Rule, ...] = (
    Rule(
        "aks-cilium-dataplane",
        "The AKS cluster uses Azure CNI powered by Cilium: networkPlugin azure, networkDataplane cilium, networkPolicy cilium.",
        "Any other dataplane ignores CiliumNetworkPolicies: every flow would be open.",
        "mandatory",
        "resource",
        aks.check_cilium_dataplane,
        types=(MANAGED_CLUSTER,),
    ),
    Rule(
        "namespace-default-deny",
        "Every namespace the stack manages is in effective default deny for ingress and egress.",
        "Decided with the verdict engine: `ingress: []` enforces nothing, so name-based checks are not enough.",
        "mandatory",
        "stack",
        cilium.check_namespace_default_deny,
        exceptable=True,
    ),
    Rule(
        "no-broad-peers",
        "No policy allows from or to the entities all, world or cluster, 0.0.0.0/0, or pods of every namespace.",
        "One such rule undoes zero trust for everything it selects. A world ingress admitting only what a LoadBalancer Service (externalTrafficPolicy Local) exposes is intended.",
        "mandatory",
        "stack",
        cilium.check_no_broad_peers,
        exceptable=True,
    ),
    Rule(
        "l7-needs-acns",
        "L7 (rules.http, rules.kafka) and FQDN (toFQDNs, rules.dns) rules only where the cluster's Advanced Container Networking security allows them.",
        "AKS rejects them otherwise, at `pulumi up` time, after the cluster exists.",
        "mandatory",
        "stack",
        cilium.check_l7_needs_acns,
    ),
    Rule(
        "no-l7-in-ccnp",
        "No L7 rules in a CiliumClusterwideNetworkPolicy.",
        "AKS's Cilium does not support L7 rules in clusterwide policies.",
        "mandatory",
        "resource",
        cilium.check_no_l7_in_ccnp,
        types=(CCNP,),
    ),
    Rule(
        "cilium-version-fields",
        "No enableDefaultDeny or endPort when the cluster's Kubernetes version ships Cilium 1.14 (AKS 1.29/1.30).",
        "That CRD silently drops both fields, changing what the policy means.",
        "mandatory",
        "stack",
        cilium.check_cilium_version_fields,
    ),
    Rule(
        "policy-map-budget",
        "No workload's policies need 80% or more of the policy-map entries an endpoint has (16,384 on AKS).",
        "An overflowing policy map drops traffic silently, and AKS does not let the limit be raised.",
        "mandatory",
        "stack",
        datapath.check_policy_map_budget,
    ),
    Rule(
        "policy-map-budget-warning",
        "Workloads whose policies need 50% to 80% of the policy-map entries are named before they reach the limit.",
        "Entries grow with the identities a peer matches: a growing cluster fills the map without a policy change.",
        "advisory",
        "stack",
        datapath.check_policy_map_budget_warning,
    ),
    Rule(
        "workload-non-root",
        "Workload containers run as non-root (runAsNonRoot or a non-zero runAsUser).",
        "A root container that escapes owns the node.",
        "advisory",
        "resource",
        workloads.workload_check(workloads.may_run_as_root, "set securityContext.runAsNonRoot: true (securityProfile: restricted, a non-root image)"),
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "workload-no-privilege-escalation",
        "Workload containers set allowPrivilegeEscalation: false and are not privileged.",
        "setuid binaries or a privileged container get past every other control.",
        "advisory",
        "resource",
        workloads.workload_check(workloads.may_escalate, "set securityContext.allowPrivilegeEscalation: false"),
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "workload-resource-limits",
        "Workload containers have CPU and memory limits.",
        "One runaway pod should not starve its node.",
        "advisory",
        "resource",
        workloads.workload_check(workloads.no_limits, "set resources.limits.cpu and .memory (zero-trust-aks:workloads.<name>.resources)"),
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "workload-no-service-account-token",
        "Pods mount a service-account token only when they ask for it (automountServiceAccountToken set explicitly).",
        "A stolen token is an API credential; most workloads never call the API.",
        "advisory",
        "resource",
        workloads.check_no_token,
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "aks-entra-id-only",
        "Production clusters: local accounts disabled, Entra ID with Azure RBAC.",
        "A local admin kubeconfig is a shared, unaudited, unrevocable credential.",
        "mandatory",
        "resource",
        aks.check_entra_id_only,
        types=(MANAGED_CLUSTER,),
    ),
    Rule(
        "aks-api-server-restricted",
        "Production clusters: the API server is private or limited to authorized IP ranges.",
        "A public API server is one leaked credential away from the cluster.",
        "mandatory",
        "resource",
        aks.check_api_server_restricted,
        types=(MANAGED_CLUSTER,),
    ),
)
BY_NAME = {r.name: r for r in RULES}

