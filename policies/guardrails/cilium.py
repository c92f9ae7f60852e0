"""Guardrails on the Cilium policies: default deny (decided by the verdict engine), broad peers,
what the cluster's ACNS level and Cilium version accept."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policies import acns_levels
from policies.cilium_versions import AKS_CILIUM, features
from policies.guardrails import breadth
from policies.guardrails.resources import (
    Resource,
    acns_level,
    cilium_version,
    clusters,
    entries,
    policies,
    specs,
)
from policies.render import ENFORCEMENT_LABEL, as_enforced
from policies.render.podspec import POD_TEMPLATE_KINDS, pod_labels, pod_spec
from policies.verdict import CCNP, CNP, NS_KEY, NS_LABELS_PREFIX, Endpoint, Engine, PolicyRejected, peer_selector, stranger

BROAD_ENTITIES = {
    "all": "every endpoint, in the cluster and outside it",
    "world": "the whole internet",
    "world-ipv4": "the whole IPv4 internet",
    "world-ipv6": "the whole IPv6 internet",
    "cluster": "every pod and node of the cluster",
}

def _broad_peer(policy: Resource, section: str, entry: Mapping[str, Any]) -> str | None:
    """What makes an allow rule too broad, or None."""
    ingress = section == "ingress"
    entities = entry.get("fromEntities" if ingress else "toEntities") or []
    for e in entities:
        if e in BROAD_ENTITIES:
            return f"{'fromEntities' if ingress else 'toEntities'}: [{e}] allows {BROAD_ENTITIES[e]}"
    for key, cidr, _excepts in _cidr_ranges(entry, section):
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                return f"{key}: {cidr} allows the whole internet"
        except ValueError:
            continue
    endpoints_key = "fromEndpoints" if ingress else "toEndpoints"
    namespace = None if policy.kind == CCNP else policy.namespace
    for i, raw in enumerate(entry.get(endpoints_key) or []):
        try:
            sel = peer_selector(raw, namespace, f"{endpoints_key}[{i}]")
        except PolicyRejected:
            continue
        scoped = any(
            r.source in ("k8s", "any") and ((r.key == NS_KEY and r.op == "In") or r.key.startswith(NS_LABELS_PREFIX))
            for r in sel.requirements
        ) or any(r.source not in ("k8s", "any") for r in sel.requirements)
        if not scoped:
            return f"{endpoints_key}[{i}] selects pods in every namespace of the cluster"
    l3 = [k for k in entry if k.startswith("from" if ingress else "to") and k not in ("toPorts",)]
    if not l3 and entry.get("toPorts"):
        return "a rule with toPorts and no peer allows every peer, the internet included, on those ports"
    return None


def _load_balanced(resources: Sequence[Resource]) -> dict[str, list[Mapping[str, Any]]]:
    """namespace -> the specs of its LoadBalancer Services that keep the client's address (externalTrafficPolicy Local)."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in resources:
        spec = r.props.get("spec") or {}
        if r.is_kubernetes and r.kind == "Service" and spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
            out.setdefault(r.namespace, []).append(spec)
    return out


def _exposed_world_ingress(policy: Resource, section: str, entry: Mapping[str, Any], services: Mapping[str, list]) -> bool:
    """A world ingress rule that admits only what a LoadBalancer Service exposes: what the stack intends.

    The rule names only ``world``, on numbered ports; its policy selects (by labels alone) only pods a
    LoadBalancer Service of its namespace selects, and those ports are the Service's target ports.
    """
    if policy.kind != CNP or section != "ingress" or list(entry.get("fromEntities") or []) != ["world"]:
        return False
    ports = [pp.get("port") for pr in entry.get("toPorts") or [] if isinstance(pr, Mapping) for pp in pr.get("ports") or [] if isinstance(pp, Mapping)]
    if not ports or not all(isinstance(x, str) and x.isdigit() for x in ports):
        return False
    for _where, spec in specs(policy):
        selector = spec.get("endpointSelector") or {}
        labels = selector.get("matchLabels") or {}
        if not labels or selector.get("matchExpressions"):
            continue
        for svc in services.get(policy.namespace, []):
            svc_selector = svc.get("selector") or {}
            targets = {str(p.get("targetPort", p.get("port"))) for p in svc.get("ports") or [] if isinstance(p, Mapping)}
            if svc_selector and svc_selector.items() <= labels.items() and set(ports) <= targets:
                return True
    return False


def _cidr_ranges(entry: Mapping[str, Any], section: str) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(key, cidr, excepts) for every address range of an allow rule."""
    for key in ("fromCIDR", "fromCIDRSet") if section == "ingress" else ("toCIDR", "toCIDRSet"):
        for c in entry.get(key) or []:
            cidr = c.get("cidr") if isinstance(c, Mapping) else c
            excepts = c.get("except") if isinstance(c, Mapping) else None
            if cidr:
                yield key, str(cidr), tuple(str(e) for e in excepts or ())


def check_no_broad_peers(resources: Sequence[Resource], settings: Mapping[str, Any] | None = None) -> Iterator[tuple[Resource, str]]:
    services = _load_balanced(resources)
    for r in policies(resources):
        yield from _broad_peers_of(r, services, settings)


def _broad_peers_of(r: Resource, services: Mapping[str, list], settings: Mapping[str, Any] | None) -> Iterator[tuple[Resource, str]]:
    ranges: dict[str, list[tuple[str, tuple[str, ...]]]] = {"ingress": [], "egress": []}
    whole = set()
    for where, section, entry in entries(r, ("ingress", "egress")):
        why = _broad_peer(r, section, entry)
        if why and _exposed_world_ingress(r, section, entry, services):
            continue  # a declared world ingress to an exposed workload
        if why:
            whole.add(section)
            yield r, (
                f"{r.display} {where}: {why}; name the peers (a namespace and labels), "
                "or add a reviewed exception to guardrails/exceptions.yaml"
            )
        ranges[section] += [(cidr, excepts) for _key, cidr, excepts in _cidr_ranges(entry, section)]
    for section, held in ranges.items():
        too_wide = breadth.over(breadth.public_addresses(held), settings) if section not in whole else []
        if too_wide:
            yield r, (
                f"{r.display} {section}: its address ranges hold {' and '.join(too_wide)}; narrow them, "
                "or add a reviewed exception to guardrails/exceptions.yaml"
            )


def _acns_usage(policy: Resource) -> Iterator[tuple[str, str, acns_levels.Feature]]:
    """(where, field, feature) for every field of a policy that needs an ACNS level (``acns_levels.POLICY_FEATURES``)."""
    for where, _section, entry in entries(policy, ("ingress", "egress", "ingressDeny", "egressDeny")):
        if entry.get("toFQDNs"):
            yield where, "toFQDNs", acns_levels.POLICY_FEATURES["toFQDNs"]
        for i, ports in enumerate(entry.get("toPorts") or []):
            rules = (ports.get("rules") or {}) if isinstance(ports, Mapping) else {}
            for key in rules if isinstance(rules, Mapping) else ():
                feature = acns_levels.POLICY_FEATURES.get(f"rules.{key}")
                if feature and rules.get(key):
                    yield f"{where}.toPorts[{i}]", f"rules.{key}", feature


def check_l7_needs_acns(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    found = clusters(resources)
    if not found:
        return  # not an AKS stack (e.g. an existing cluster): its Cilium decides
    cluster = found[0]
    level = acns_level(cluster)
    for p in policies(resources):
        for where, what, feature in _acns_usage(p):
            if feature not in level.allows:
                needed = acns_levels.weakest_allowing(feature)
                yield p, (
                    f"{p.display} {where}: {what} needs Advanced Container Networking security {needed.arm} on "
                    f"{cluster.display} (now {level.arm}), or AKS rejects the policy; set "
                    f"networkProfile.advancedNetworking.security.advancedNetworkPolicies: {needed.arm} "
                    f"(zero-trust-aks:cluster.advancedNetworking.security: {needed.setting}) or drop the rule"
                )


def check_no_l7_in_ccnp(r: Resource) -> Iterator[tuple[Resource, str]]:
    if acns_levels.L7_IN_CCNP:
        return
    for where, what, feature in _acns_usage(r):
        if feature == "l7":
            yield r, (
                f"{r.display} {where}: {what} in a CiliumClusterwideNetworkPolicy is not supported on AKS; "
                "move the L7 rule into a namespaced CiliumNetworkPolicy"
            )


def check_cilium_version_fields(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    cilium = features(cilium_version(resources))
    if cilium.enable_default_deny and cilium.end_port:
        return
    found = clusters(resources)
    k8s = found[0].props.get("kubernetesVersion") if found else None
    shipped = f"Cilium {cilium.text} (what AKS ships with Kubernetes {k8s})"
    fix = f"remove it, or use a Kubernetes version whose Cilium knows it ({_kubernetes_with(lambda f: f.enable_default_deny and f.end_port)})"
    for p in policies(resources):
        if not cilium.enable_default_deny:
            for where, spec in specs(p):
                if "enableDefaultDeny" in spec:
                    yield p, (
                        f"{p.display} {where}: enableDefaultDeny is dropped by the CRD of {shipped}, so the "
                        f"policy puts its pods in default deny whatever it says; {fix}"
                    )
        if cilium.end_port:
            continue
        for where, _section, entry in entries(p, ("ingress", "egress", "ingressDeny", "egressDeny")):
            for i, ports in enumerate(entry.get("toPorts") or []):
                for j, port in enumerate((ports.get("ports") or []) if isinstance(ports, Mapping) else []):
                    if isinstance(port, Mapping) and "endPort" in port:
                        yield p, (
                            f"{p.display} {where}.toPorts[{i}].ports[{j}]: endPort is dropped by the CRD of "
                            f"{shipped}, so the range shrinks to port {port.get('port')}; {fix}"
                        )


def _kubernetes_with(wanted) -> str:
    """``Kubernetes 1.31 or later`` for the first AKS Kubernetes version whose Cilium has ``wanted``."""
    for k8s, cilium in sorted(AKS_CILIUM.items()):
        if wanted(features(cilium)):
            return f"Kubernetes {k8s[0]}.{k8s[1]} or later"
    return "a later Kubernetes version"


def check_namespace_default_deny(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    """Every managed namespace, for an unlabelled pod and each workload's pods, per the verdict engine."""
    namespaces = [r for r in resources if r.is_kubernetes and r.kind == "Namespace"]
    if not namespaces:
        return
    by_namespace: dict[str, list[Endpoint]] = {}
    for w in resources:
        if w.is_kubernetes and w.kind in POD_TEMPLATE_KINDS:
            spec = pod_spec(w.props) or {}
            by_namespace.setdefault(w.namespace, []).append(
                Endpoint(
                    w.namespace,
                    pod_labels(w.props),
                    name=f"{w.kind} {w.object_name}",
                    service_account=str(spec.get("serviceAccountName") or "default"),
                )
            )
    endpoints: dict[str, tuple[Endpoint, list[Endpoint]]] = {}
    for ns in namespaces:
        name, labels = ns.object_name, ns.metadata.get("labels") or {}
        anonymous = stranger(name, labels)
        pods = [
            Endpoint(name, e.labels, e.name, e.service_account, namespace_labels=labels) for e in by_namespace.get(name, [])
        ]
        endpoints[name] = (anonymous, pods)
    # A staged namespace is judged as enforced: its rules must still put it in default deny once it is
    # (that it is staged at all is namespace-staged's concern).
    judged = as_enforced([r.props for r in policies(resources)], staged_namespaces(resources))
    # Every identity up front: the engine then resolves each selector once.
    engine = Engine(judged, cilium_version(resources), [e for anonymous, pods in endpoints.values() for e in (anonymous, *pods)])
    for ns in namespaces:
        name = ns.object_name
        anonymous, pods = endpoints[name]
        for direction in ("ingress", "egress"):
            side = engine.enforcement(anonymous, direction)
            if not side.allowed:
                yield ns, f"Namespace {name}: {side.reason}; {_default_deny_fix(direction)}"
                continue
            for ep in pods:
                side = engine.enforcement(ep, direction)
                if not side.allowed:
                    yield ns, f"Namespace {name}: {side.reason}; {_default_deny_fix(direction)}"


def staged_namespaces(resources: Sequence[Resource]) -> list[str]:
    """The namespaces whose Namespace resource says they are staged (the stack's own label)."""
    return [
        r.object_name for r in resources
        if r.is_kubernetes and r.kind == "Namespace" and (r.metadata.get("labels") or {}).get(ENFORCEMENT_LABEL) == "staged"
    ]


def check_namespace_staged(r: Resource) -> Iterator[tuple[Resource, str]]:
    """A staged namespace: its policies apply, but nothing is dropped there."""
    if staged_namespaces([r]):
        yield r, (
            f"Namespace {r.object_name} is staged: its policies have default deny off, so nothing is dropped there; "
            "enforce it once a capture shows nothing would drop (python -m zerotrust promote)"
        )


def _default_deny_fix(direction: str) -> str:
    return (
        f"add a CiliumNetworkPolicy with endpointSelector: {{}} and {direction}: [{{}}] "
        f"(zero-trust-aks:zeroTrust.defaultDeny: ingress-and-egress)"
    )

