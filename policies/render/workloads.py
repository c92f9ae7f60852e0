"""A workload's objects: its pods' labels, the Namespace, its Deployment, Service and service account."""

from __future__ import annotations

from typing import Any

from policies.config import PROJECT, StackConfig, WorkloadConfig
from policies.config.pods import pod_labels, selector, selector_labels  # re-exported by policies.render
from policies.render.labels import ENFORCEMENT_LABEL, MANAGED_BY, OTHER_IDENTITIES_ANNOTATION

# Capabilities the stock nginx image (and most root-started servers) need to
# start and drop to an unprivileged user; all are in Pod Security `baseline`.
BASELINE_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "NET_BIND_SERVICE", "SETGID", "SETUID")


def namespace(ns: str, workloads: Any, cfg: StackConfig) -> dict[str, Any]:
    """The Namespace; for one that exists already, only the label the stack sets on it (Pod Security stays its owner's)."""
    marker = {f"{PROJECT}/default-deny": cfg.zero_trust.default_deny, ENFORCEMENT_LABEL: cfg.enforcement(ns)}
    # The budget's estimate, where the guardrail (which sees resources, not config) reads it.
    notes = {OTHER_IDENTITIES_ANNOTATION: str(cfg.other_identities)}
    if not cfg.creates_namespace(ns):
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": marker, "annotations": notes}}
    deployed = [w for w in workloads if w.deployed]
    level = "restricted" if all(w.security_profile == "restricted" for w in deployed) else "baseline"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ns,
            "labels": {
                **MANAGED_BY,
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                **marker,
            },
            "annotations": notes,
        },
    }


def service_account(name: str, ns: str) -> dict[str, Any]:
    """A workload's own service account; its token is mounted only where the workload asks (serviceAccountToken)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": ns, "labels": dict(MANAGED_BY)},
        "automountServiceAccountToken": False,
    }


def deployment(name: str, w: WorkloadConfig) -> dict[str, Any]:
    restricted = w.security_profile == "restricted"
    container_security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]} if restricted else {"drop": ["ALL"], "add": list(BASELINE_CAPABILITIES)},
    }
    if restricted:
        container_security["runAsNonRoot"] = True
    if w.run_as_user is not None:
        container_security["runAsUser"] = w.run_as_user
    if w.run_as_group is not None:
        container_security["runAsGroup"] = w.run_as_group
    container: dict[str, Any] = {"name": name, "image": w.image}
    if w.command:
        container["command"] = list(w.command)
    if w.args:
        container["args"] = list(w.args)
    listening: dict[tuple[int, str], str] = {}
    for s in w.served:  # one container port however many Service ports reach it
        listening.setdefault((s.container_port, s.protocol), s.name)
    if listening:  # a worker that receives nothing: no ports, no health probes
        container["ports"] = [{"name": n, "containerPort": port, "protocol": proto} for (port, proto), n in listening.items()]
    if w.env:
        container["env"] = [_env(k, v) for k, v in w.env.items()]
    container["resources"] = {
        "requests": {"cpu": w.resources.cpu_request, "memory": w.resources.memory_request},
        "limits": {"cpu": w.resources.cpu_limit, "memory": w.resources.memory_limit},
    }
    container["securityContext"] = container_security
    check = _health_check(w)
    if check is not None:
        container["readinessProbe"] = {**check, "periodSeconds": 5}
        container["livenessProbe"] = {**check, "initialDelaySeconds": 10, "periodSeconds": 20}
    pod_security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if restricted:
        pod_security["runAsNonRoot"] = True
    labels = pod_labels(name, w)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": w.namespace, "labels": labels},
        "spec": {
            "replicas": w.replicas,
            "selector": {"matchLabels": selector_labels(name)},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    **({"serviceAccountName": w.service_account_name} if w.service_account_name else {}),
                    "automountServiceAccountToken": w.service_account_token,
                    "securityContext": pod_security,
                    "containers": [container],
                },
            },
        },
    }


def _env(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": name, "value": value}
    ref, kind = (value.secret_key_ref, "secretKeyRef") if value.secret_key_ref else (value.config_map_key_ref, "configMapKeyRef")
    return {"name": name, "valueFrom": {kind: {"name": ref.name, "key": ref.key}}}


def _health_check(w: WorkloadConfig) -> dict[str, Any] | None:
    """An HTTP GET where the workload has a health check, else a TCP connect to its first TCP port (None: no TCP port)."""
    tcp = [s for s in w.served if s.protocol == "TCP"]
    if w.health_check is not None:
        spec = w.find_port(w.health_check.port, "TCP") if w.health_check.port is not None else tcp[0]
        return {"httpGet": {"path": w.health_check.path, "port": spec.container_port}}
    return {"tcpSocket": {"port": tcp[0].container_port}} if tcp else None


def service(name: str, w: WorkloadConfig) -> dict[str, Any]:
    """ClusterIP, or LoadBalancer for an exposed workload.

    A LoadBalancer Service keeps ``externalTrafficPolicy: Local``: the Azure load balancer then
    sends clients only to nodes that run a backend, so Cilium sees them as ``world``. With
    ``Cluster``, AKS's native routing forwards to another node and the source becomes
    ``remote-node`` (docs.cilium.io, security/policy/caveats "Security Identity for N/S
    Service Traffic"), which a policy admitting ``world`` would drop.
    """
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector_labels(name),
        "ports": [{"name": s.name, "port": s.port, "targetPort": s.container_port, "protocol": s.protocol} for s in w.served],
    }
    if w.expose == "loadBalancer":
        spec.update(type="LoadBalancer", externalTrafficPolicy="Local")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": w.namespace, "labels": pod_labels(name, w)},
        "spec": spec,
    }


# -- policies ----------------------------------------------------------------------

__all__ = ["BASELINE_CAPABILITIES", "deployment", "namespace", "pod_labels", "selector", "selector_labels", "service", "service_account"]
