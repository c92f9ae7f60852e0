"""A probe group's Kubernetes Job: one pod with the borrowed identity, running every check of the group."""

from __future__ import annotations

from typing import Any

from policies.analysis.probes.checks import ProbeGroup
from policies.analysis.probes.outcomes import ATTEMPTS, CONNECT_TIMEOUT, DEADLINE, INTERVAL, MAX_TIME, PROBE_ANNOTATION, PROBE_LABEL, PROBE_UID, probe_script
from policies.render import MANAGED_BY, ROLE_LABEL


def checks_env(g: ProbeGroup) -> str:
    """The group's checks, one per line: ``flow|expect|host|port``."""
    return "\n".join(f"{p.flow}|{p.expect}|{p.host}|{p.port}" for p in g.probes)


def job(g: ProbeGroup, image: str) -> dict[str, Any]:
    """The Job of one source identity: one pod with its labels, running all its checks."""
    env = {
        "CHECKS": checks_env(g),
        "CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "MAX_TIME": str(MAX_TIME),
        "ATTEMPTS": str(ATTEMPTS),
        "INTERVAL": str(INTERVAL),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": g.name,
            "namespace": g.namespace,
            "labels": {**MANAGED_BY, ROLE_LABEL: "probe"},
            "annotations": {PROBE_ANNOTATION: f"{len(g.probes)} checks as {g.who}"},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": DEADLINE,
            "template": {
                "metadata": {"labels": {**dict(g.labels), PROBE_LABEL: g.name}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": PROBE_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "command": ["/bin/sh", "-c", probe_script()],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"cpu": "100m", "memory": "32Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                            },
                            # Never Ready, so a probe borrowing a Service's labels never receives its traffic.
                            "readinessProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 3600},
                        }
                    ],
                },
            },
        },
    }
