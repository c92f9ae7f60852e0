"""Guardrails on the datapath: each workload's policy-map entries against AKS's fixed limit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from policies.analysis import budget
from policies.guardrails.resources import Resource, cilium_version

FAIL_AT = 0.8
WARN_AT = 0.5


def _over(resources: Sequence[Resource], low: float, high: float | None) -> Iterator[tuple[Resource, str]]:
    objects = {f"{r.namespace}/{r.object_name}": r for r in resources if r.is_kubernetes}
    b = budget.estimate((r.props for r in resources if r.is_kubernetes), cilium_version(resources))
    for w in b.workloads:
        if w.share >= low and (high is None or w.share < high) and w.workload in objects:
            r = objects[w.workload]
            yield r, (
                f"{r.display}: its policies need about {w.entries} policy-map entries, {w.share:.0%} of the "
                f"{b.limit} each endpoint has on AKS (an overflow drops traffic silently); narrow the peers it "
                "admits (a namespace-wide or cluster peer counts every identity it matches) or the ports"
            )


def check_policy_map_budget(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    return _over(resources, FAIL_AT, None)


def check_policy_map_budget_warning(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    return _over(resources, WARN_AT, FAIL_AT)
