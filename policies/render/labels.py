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

__all__ = ["CILIUM_API", "FLOWS_ANNOTATION", "KUBE_DNS", "MANAGED_BY", "NS_LABEL", "OTHER_IDENTITIES_ANNOTATION", "ROLE_LABEL"]
