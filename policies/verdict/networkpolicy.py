"""Kubernetes NetworkPolicy, as Cilium enforces it: translated into the Cilium rule it becomes.

Cilium parses every ``networking.k8s.io/v1`` NetworkPolicy into one Cilium rule and enforces it
alongside CiliumNetworkPolicies (cilium/cilium ``pkg/k8s/network_policy.go``
``ParseNetworkPolicy``). The translation, rule by rule:

- ``podSelector`` selects the subject pods, in the policy's namespace;
- a peer's ``podSelector`` alone: pods of the policy's namespace;
  ``namespaceSelector``: pods (matching the peer's ``podSelector``, if any) of the namespaces
  whose labels match, an empty one meaning every namespace;
- ``ipBlock``: a CIDR rule with its ``except`` ranges (never a pod: CIDR rules do not select
  pods' identities);
- a rule without ``from``/``to``: every peer, inside and outside the cluster;
- ``ports`` apply to each peer of their rule; ``port`` missing means every port, ``protocol``
  missing means TCP, ``endPort`` a range, a named port is the destination's;
- ``policyTypes``: with no ingress rule, ingress is default deny when ``Ingress`` is listed or
  ``Egress`` is not; with no egress rule, egress is default deny when ``Egress`` is listed;
  an empty rule list is the same as none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.verdict.identity import NS_KEY, NS_LABELS_PREFIX

KIND = "NetworkPolicy"


def _namespaced_peer(peer: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    pods = dict(peer.get("podSelector") or {})
    labels = dict(pods.get("matchLabels") or {})
    expressions = list(pods.get("matchExpressions") or [])
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        labels[NS_KEY] = namespace
    else:
        labels |= {f"{NS_LABELS_PREFIX}.{k}": v for k, v in (ns_sel.get("matchLabels") or {}).items()}
        expressions += [{**e, "key": f"{NS_LABELS_PREFIX}.{e.get('key')}"} for e in ns_sel.get("matchExpressions") or []]
        if not ns_sel.get("matchLabels") and not ns_sel.get("matchExpressions"):
            expressions.append({"key": NS_KEY, "operator": "Exists"})
    out: dict[str, Any] = {"matchLabels": labels}
    if expressions:
        out["matchExpressions"] = expressions
    return out


def _ports(ports: list[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not ports:
        return None
    out = []
    for p in ports:
        entry: dict[str, Any] = {"port": str(p["port"]) if p.get("port") is not None else "0", "protocol": p.get("protocol") or "TCP"}
        if p.get("endPort") is not None:
            entry["endPort"] = p["endPort"]
        out.append({"ports": [entry]})
    return out


def _section(rules: list[Mapping[str, Any]] | None, namespace: str, ingress: bool) -> list[dict[str, Any]]:
    peers_key = "from" if ingress else "to"
    endpoints, cidrs, entities = f"{peers_key}Endpoints", f"{peers_key}CIDRSet", f"{peers_key}Entities"
    out = []
    for rule in rules or []:
        ports = _ports(rule.get("ports"))
        entries: list[dict[str, Any]] = []
        for peer in rule.get(peers_key) or []:
            if peer.get("ipBlock") is not None:
                block = peer["ipBlock"]
                entries.append({cidrs: [{"cidr": block.get("cidr"), "except": list(block.get("except") or [])}]})
            elif peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
                entries.append({endpoints: [_namespaced_peer(peer, namespace)]})
        if not rule.get(peers_key):
            # Cilium's wildcard endpoint selector, unscoped by namespace: every identity.
            entries.append({entities: ["all"]})
        out += [e | ({"toPorts": ports} if ports else {}) for e in entries]
    return out


def to_cilium(np: Mapping[str, Any]) -> dict[str, Any]:
    """The CiliumNetworkPolicy-shaped rule a NetworkPolicy becomes (its name marks where it came from)."""
    meta = np.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    spec = np.get("spec") or {}
    types = spec.get("policyTypes") or []
    ingress = _section(spec.get("ingress"), namespace, ingress=True)
    egress = _section(spec.get("egress"), namespace, ingress=False)
    if not ingress and ("Ingress" in types or "Egress" not in types):
        ingress = [{}]
    if not egress and "Egress" in types:
        egress = [{}]
    cilium_spec: dict[str, Any] = {"endpointSelector": spec.get("podSelector") or {}}
    if ingress:
        cilium_spec["ingress"] = ingress
    if egress:
        cilium_spec["egress"] = egress
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"namespace": namespace, "name": f"networkpolicy/{meta.get('name', '?')}"},
        "spec": cilium_spec,
    }
