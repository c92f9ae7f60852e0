"""The names the rendered objects carry: API versions, labels and annotations the stack sets and reads."""

from __future__ import annotations

from policies.config import PROJECT
from policies.config.pods import MANAGED_BY

CILIUM_API = "cilium.io/v2"
NS_LABEL = "k8s:io.kubernetes.pod.namespace"
KUBE_DNS = {NS_LABEL: "kube-system", "k8s:k8s-app": "kube-dns"}
OTHER_IDENTITIES_ANNOTATION = f"{PROJECT}/other-identities"
"""On each managed Namespace: the policy-map budget's estimate of identities the stack does not know."""
FLOWS_ANNOTATION = f"{PROJECT}/flows"
"""On a workload's policy: JSON, rule position (``ingress[0]``) -> the flow it comes from."""
ROLE_LABEL = f"{PROJECT}/role"
ENFORCEMENT_LABEL = f"{PROJECT}/enforcement"
"""On each managed Namespace: ``enforced`` or ``staged`` (its policies with default deny off)."""
DEFAULT_ALLOW = {"ingress": False, "egress": False}
"""``enableDefaultDeny`` of a staged namespace's policies: the rules apply, nothing is dropped for want of one."""

__all__ = ["CILIUM_API", "DEFAULT_ALLOW", "ENFORCEMENT_LABEL", "FLOWS_ANNOTATION", "KUBE_DNS", "MANAGED_BY", "NS_LABEL", "OTHER_IDENTITIES_ANNOTATION", "ROLE_LABEL"]
