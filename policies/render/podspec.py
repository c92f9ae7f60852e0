"""The pod template of any object that makes pods, read one way by the matrix and the guardrails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")


def pod_template(o: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template (``metadata``, ``spec``) of any object that makes pods, else None."""
    kind, spec = o.get("kind"), o.get("spec") or {}
    if kind == "Pod":
        return {"metadata": o.get("metadata") or {}, "spec": spec}
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}) if kind in POD_TEMPLATE_KINDS else None


def pod_spec(o: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pods' spec, or None for an object that makes no pods."""
    template = pod_template(o)
    return None if template is None else template.get("spec") or {}


def pod_labels(o: Mapping[str, Any]) -> Mapping[str, str]:
    """The labels the object's pods carry."""
    return ((pod_template(o) or {}).get("metadata") or {}).get("labels") or {}


def containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Init containers and containers of a pod spec."""
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, Mapping)]
