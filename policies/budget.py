"""The datapath budget: policy-map entries per workload, against the limit AKS's Cilium has.

Cilium keeps one policy-map entry per allowed (identity, port, protocol, direction) for
each endpoint, at most ``POLICY_MAP_ENTRIES`` (16,384, fixed on AKS); an overflow drops
traffic silently. Entries scale with the identities and ports a policy selects, not with
the number of policy objects: a namespace-wide or ``cluster`` peer counts every identity
it can match. The estimate knows the identities of the stack (its workloads, plus the
reserved ones); pods the stack does not deploy only add to it, so it is a lower bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.cilium_versions import DEFAULT_CILIUM, POLICY_MAP_ENTRIES, Version
from policies.podspec import POD_TEMPLATE_KINDS, pod_labels
from policies.verdict import CCNP, CNP, Endpoint, Engine, entity

RESERVED = ("world", "kube-apiserver", "host", "remote-node")


@dataclass(frozen=True)
class WorkloadBudget:
    workload: str
    """``namespace/name`` of the object that makes the pods."""
    entries: int

    @property
    def share(self) -> float:
        return self.entries / POLICY_MAP_ENTRIES


@dataclass(frozen=True)
class Budget:
    limit: int
    identities: int
    """Security identities the stack's workloads create (distinct label sets)."""
    workloads: tuple[WorkloadBudget, ...]
    """Every workload, the largest first."""

    def top(self, n: int = 5) -> tuple[WorkloadBudget, ...]:
        return self.workloads[:n]


def estimate(objects: Iterable[Mapping[str, Any]], version: Version = DEFAULT_CILIUM, elsewhere: Iterable[Endpoint] = ()) -> Budget:
    """The budget of the policies and pod-making objects among ``objects`` (manifests, as applied), and of the
    workloads deployed ``elsewhere`` whose pods the policies select."""
    objects = list(objects)
    policies = [o for o in objects if o.get("kind") in (CNP, CCNP)]
    workloads = [o for o in objects if o.get("kind") in POD_TEMPLATE_KINDS and o.get("kind") != "Job"]
    endpoints = {}
    for o in workloads:
        meta = o.get("metadata") or {}
        ref = f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
        endpoints[ref] = Endpoint(str(meta.get("namespace") or "default"), dict(pod_labels(o)), name=str(meta.get("name", "")))
    for ep in elsewhere:
        endpoints[f"{ep.namespace}/{ep.name}"] = ep
    kube_dns = Endpoint("kube-system", {"k8s-app": "kube-dns"}, name="kube-dns")  # every pod's DNS peer
    engine = Engine(policies, version, [*endpoints.values(), kube_dns, *(entity(r) for r in RESERVED)])
    identities = len({e.identity() for e in endpoints.values()})
    rows = sorted((WorkloadBudget(ref, engine.policy_map_entries(ep)) for ref, ep in endpoints.items()), key=lambda w: (-w.entries, w.workload))
    return Budget(POLICY_MAP_ENTRIES, identities, tuple(rows))
