"""The labels a workload's pods carry and are selected by: part of the model, read by rendering, the
matrix, the probes and the checks that two workloads' selectors do not overlap."""

from __future__ import annotations

from policies.config.models import PROJECT, StackConfig, WorkloadConfig

MANAGED_BY = {"app.kubernetes.io/managed-by": PROJECT}
"""The label on every object the stack renders."""


def selector_labels(name: str) -> dict[str, str]:
    """The labels the pods of a workload this stack deploys are selected by (Deployment, Service, policies)."""
    return {"app": name}


def selector(cfg: StackConfig, name: str) -> dict[str, str]:
    """The labels that select a workload's pods: its own ``selector`` when deployed elsewhere."""
    w = cfg.workloads[name]
    return dict(w.selector) if w.selector is not None else selector_labels(name)


def pod_labels(name: str, w: WorkloadConfig) -> dict[str, str]:
    """The labels a workload's pods carry, as far as the stack knows them (deployed elsewhere: its selector)."""
    if w.selector is not None:
        return dict(w.selector)
    return {**w.labels, **selector_labels(name), "app.kubernetes.io/name": name, **MANAGED_BY}
