"""The ingress prober: a probe identity whose only obstacle is the target's ingress policy.

With egress default deny, an unlabelled pod in a source namespace is stopped by its own
egress before it reaches a target, so its deny check proves the source's side only; a target
whose ingress rule admitted everyone would pass every such check. The prober closes that gap:
pods labelled ``zero-trust-aks/prober: ingress`` in the stack's own probe namespace
(``zeroTrust.probeNamespace``, default ``zt-probes``) have an egress allow to every probed
target's pods on their ports, and nothing else but DNS. No flow admits them at any target, so
each of their checks must time out at the target's ingress.

The allow gives no pod of the applications a path: it selects pods of the probe namespace
only, a namespace the stack creates and only its deploy identity deploys to, so copying the
label elsewhere selects nothing.
"""

from __future__ import annotations

from typing import Any

from policies.config import PROJECT, Flow, StackConfig
from policies.render import (
    MANAGED_BY,
    NS_LABEL,
    NamespaceManifests,
    cluster_dns_names,
    cnp,
    describe,
    dns_rules,
    selector,
)

PROBER = "ingress-prober"
PROBER_LABELS = {f"{PROJECT}/prober": "ingress"}


def probed_flows(cfg: StackConfig) -> tuple[list[Flow], list[str]]:
    """The flows probes can check (TCP, between the stack's workloads, to a pod they can dial), and why
    each other flow is not probed."""
    probed, skipped = [], []
    for f in cfg.flows:
        if f.source in cfg.peers or f.to in cfg.peers:
            skipped.append(f"{describe(cfg, f)}: flows with a peer are not probed (a peer is not the stack's to run a pod as)")
        elif not f.to:
            skipped.append(f"{describe(cfg, f)}: outside names are not probed (their reachability is not ours to prove)")
        elif cfg.flow_protocol(f) != "TCP":
            skipped.append(f"{describe(cfg, f)}: {cfg.flow_protocol(f)} is not probed (a drop and a silent server look the same)")
        elif not cfg.workloads[f.to].deployed and cfg.workloads[f.to].service is None:
            skipped.append(f"{describe(cfg, f)}: {f.to} is deployed elsewhere and names no Service to dial (workloads.{f.to}.service)")
        else:
            probed.append(f)
    return probed, skipped


def prober_targets(cfg: StackConfig) -> list[tuple[str, int, int]]:
    """(target workload, port policies allow, port clients dial) of every probed flow, once each."""
    flows, _ = probed_flows(cfg)
    return sorted({(f.to, cfg.flow_port(f), cfg.flow_service_port(f)) for f in flows if f.to})


def prober_namespace(cfg: StackConfig) -> NamespaceManifests | None:
    """The probe namespace and its policies: default deny, DNS, and egress to each probed target's pods on its
    ports; None when nothing is probed (``verify: false`` or no probed flow)."""
    targets = prober_targets(cfg)
    if not cfg.zero_trust.verify or not targets:
        return None
    ns = cfg.zero_trust.probe_namespace
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ns,
            "labels": {
                **MANAGED_BY,
                "pod-security.kubernetes.io/enforce": "restricted",
                f"{PROJECT}/default-deny": "ingress-and-egress",
            },
        },
    }
    deny = cnp("zt-default-deny", ns, "default-deny", {"endpointSelector": {}, "ingress": [{}], "egress": dns_rules(cfg, cluster_dns_names(cfg))})
    egress: list[dict[str, Any]] = []
    flows: dict[str, str] = {}
    by_target: dict[str, list[int]] = {}
    for target, port, _dial in targets:
        by_target.setdefault(target, []).append(port)
    for target, ports in sorted(by_target.items()):
        w = cfg.workloads[target]
        flows[f"egress[{len(egress)}]"] = f"{PROBER} -> {target}:{','.join(map(str, ports))}/TCP"
        egress.append({
            "toEndpoints": [{"matchLabels": {NS_LABEL: w.namespace, **selector(cfg, target)}}],
            "toPorts": [{"ports": [{"port": str(p), "protocol": "TCP"} for p in sorted(set(ports))]}],
        })
    allow = cnp(f"zt-allow.{PROBER}", ns, "flows", {"endpointSelector": {"matchLabels": dict(PROBER_LABELS)}, "egress": egress}, flows)
    return NamespaceManifests(ns, namespace, (deny, allow))
