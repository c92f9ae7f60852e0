"""Guardrails on the workloads' pods: non-root, no privilege escalation, limits, no unasked-for token."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from policies.guardrails.resources import Resource
from policies.render.podspec import containers, pod_spec

def workload_check(problem: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None], fix: str):
    def check(r: Resource) -> Iterator[tuple[Resource, str]]:
        spec = pod_spec(r.props)
        if spec is None:
            return
        for c in containers(spec):
            what = problem(spec, c)
            if what:
                yield r, f"{r.display}: container {c.get('name', '?')!r} {what}; {fix}"

    return check


def may_run_as_root(pod: Mapping[str, Any], c: Mapping[str, Any]) -> str | None:
    pod_ctx, ctx = pod.get("securityContext") or {}, c.get("securityContext") or {}
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    if non_root is True or (isinstance(user, (int, float)) and user > 0):
        return None
    return "may run as root" if user is None else "runs as root (runAsUser: 0)"


def unknown_user(pod: Mapping[str, Any], c: Mapping[str, Any]) -> str | None:
    """A container held to non-root whose user only its image knows: kubelet refuses to start it when the image's
    user is root or a name (not a number), which no plan can see."""
    pod_ctx, ctx = pod.get("securityContext") or {}, c.get("securityContext") or {}
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    if non_root is True and user is None:
        return "must run as non-root but names no user, so it starts only if its image's own user is a non-root UID (no plan can see it)"
    return None


def may_escalate(pod: Mapping[str, Any], c: Mapping[str, Any]) -> str | None:
    ctx = c.get("securityContext") or {}
    if ctx.get("privileged"):
        return "is privileged"
    if ctx.get("allowPrivilegeEscalation") is not False:
        return "may escalate privileges"
    return None


def no_limits(pod: Mapping[str, Any], c: Mapping[str, Any]) -> str | None:
    limits = (c.get("resources") or {}).get("limits") or {}
    missing = [k for k in ("cpu", "memory") if not limits.get(k)]
    return f"has no {' or '.join(missing)} limit" if missing else None


def check_no_token(r: Resource) -> Iterator[tuple[Resource, str]]:
    spec = pod_spec(r.props)
    if spec is not None and spec.get("automountServiceAccountToken") is None:
        yield r, (
            f"{r.display}: its pods get a service-account token they did not ask for (automountServiceAccountToken "
            "is unset, which means true); set it to false, or to true if the pods call the Kubernetes API"
        )

