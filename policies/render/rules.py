"""The CiliumNetworkPolicies: each namespace's default deny and DNS, each workload's flows on both sides."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Collection, Mapping
from typing import Any

from policies.cilium_versions import features
from policies.config import Flow, StackConfig, azure, outside_names
from policies.render.labels import CILIUM_API, DEFAULT_ALLOW, FLOWS_ANNOTATION, KUBE_DNS, MANAGED_BY, NS_LABEL, ROLE_LABEL
from policies.render.workloads import selector

def cnp(name: str, ns: str, role: str, spec: dict[str, Any], flows: Mapping[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "labels": {**MANAGED_BY, ROLE_LABEL: role}}
    if flows:
        metadata["annotations"] = {FLOWS_ANNOTATION: json.dumps(dict(flows), sort_keys=True)}
    return {"apiVersion": CILIUM_API, "kind": "CiliumNetworkPolicy", "metadata": metadata, "spec": spec}


def namespace_policies(cfg: StackConfig, ns: str) -> list[dict[str, Any]]:
    """One policy for the namespace (default deny, and DNS), then one per workload with flows.

    A staged namespace has the same objects with ``enableDefaultDeny`` off in both directions: every rule
    applies, nothing is dropped for want of one, and since ``zt-default-deny`` still selects every pod in
    both directions, Cilium emits a policy verdict for each new connection of each pod (the staged
    namespace's record of what enforcing it would drop). Enforcing it removes the field, in place.

    Per workload, not per flow: a workload's ingress and egress rules live in one object
    (``zt-allow.<workload>``), each rule's flow named in the ``zero-trust-aks/flows``
    annotation, so a stack keeps about one policy per workload however many flows it has.
    """
    deny: dict[str, Any] = {"endpointSelector": {}, "ingress": [{}]}
    if cfg.zero_trust.default_deny == "ingress-and-egress":
        # A non-empty egress list puts every pod into egress default deny: the DNS rules do, or `{}`.
        deny["egress"] = dns_rules(cfg, cluster_dns_names(cfg)) if cfg.zero_trust.allow_dns else [{}]
    out = [cnp("zt-default-deny", ns, "default-deny", deny)]
    for name in sorted(n for n, w in cfg.workloads.items() if w.namespace == ns):
        policy = workload_policy(cfg, name)
        if policy is not None:
            out.append(policy)
    if cfg.enforcement(ns) == "staged":
        for policy in out:
            policy["spec"]["enableDefaultDeny"] = dict(DEFAULT_ALLOW)
    return out


def as_enforced(policies: list[dict[str, Any]], staged: Collection[str]) -> list[dict[str, Any]]:
    """The stack's policies as they are once its staged namespaces are enforced: the same objects, without
    the ``enableDefaultDeny`` staging set (what the matrix proves and the replay judges a capture by)."""
    out = []
    for p in policies:
        meta = p.get("metadata") or {}
        if meta.get("namespace") in staged and (meta.get("labels") or {}).items() >= MANAGED_BY.items() and "enableDefaultDeny" in p["spec"]:
            p = {**p, "spec": {k: v for k, v in p["spec"].items() if k != "enableDefaultDeny"}}
        out.append(p)
    return out


def workload_policy(cfg: StackConfig, name: str) -> dict[str, Any] | None:
    """Every flow into and out of one workload, as one policy (None when it has none)."""
    ingress, egress, flows = [], [], {}
    for f in cfg.flows:
        if f.to == name:
            flows[f"ingress[{len(ingress)}]"] = describe(cfg, f)
            ingress.append(ingress_rule(cfg, f))
        if f.source == name and cfg.zero_trust.default_deny == "ingress-and-egress":
            for rule in egress_rules(cfg, f):
                flows[f"egress[{len(egress)}]"] = describe(cfg, f)
                egress.append(rule)
    if not ingress and not egress:
        return None
    spec: dict[str, Any] = {"endpointSelector": {"matchLabels": selector(cfg, name)}}
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return cnp(policy_name("zt-allow", name), cfg.workloads[name].namespace, "flows", spec, flows)


CLUSTER_DNS_DOMAINS = ("cluster.local", "internal.cloudapp.net")
"""What a pod may look up when ACNS puts a DNS proxy in the path: Service and pod names, and the
names its resolver tries on the way (kubelet's search list: ``<ns>.svc.cluster.local``,
``svc.cluster.local``, ``cluster.local`` and the node's VNet domain ``<id>.internal.cloudapp.net``,
which Azure's own resolver answers and never forwards to the internet)."""
SEARCH_DEPTH = 8
"""Labels in front of a cluster domain that a lookup can reach through the search list (ndots 5)."""


def cluster_dns_names(cfg: StackConfig) -> tuple[str, ...]:
    """The DNS names every pod may look up, as DNS rule patterns; empty (no DNS rule) without an ACNS DNS proxy.

    With ACNS FQDN security the DNS proxy enforces ``rules.dns``, so a pod resolves only cluster names
    and the outside names its own flows declare: no lookup of an arbitrary name (a DNS exfiltration
    channel). Cilium's ``*`` matches one label; ``**.`` (several labels) exists from Cilium 1.19.
    """
    level = cfg.acns_level
    if level is None or "fqdn" not in level.allows:
        return ()
    if features(cfg.cilium_version).multi_label_dns_wildcard:
        return tuple(f"**.{d}" for d in CLUSTER_DNS_DOMAINS)
    return tuple("*." * depth + d for d in CLUSTER_DNS_DOMAINS for depth in range(1, SEARCH_DEPTH + 1))


def dns_rules(cfg: StackConfig, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Egress to the cluster's resolvers on port 53, with ``names`` as DNS rules: kube-dns, and with AKS
    LocalDNS on, the node's local resolver too (its range and the host entity, as separate rules:
    Cilium refuses a rule that combines two kinds of peer)."""
    rules = [{"toEndpoints": [{"matchLabels": dict(KUBE_DNS)}], "toPorts": [dns_ports(names)]}]
    if cfg.cluster is not None and cfg.cluster.local_dns != "disabled":
        rules += [
            {"toCIDR": [azure.LOCAL_DNS_RANGE], "toPorts": [dns_ports(names)]},
            {"toEntities": ["host"], "toPorts": [dns_ports(names)]},
        ]
    return rules


def dns_ports(names: tuple[str, ...] = ()) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}
    if names:
        rule["rules"] = {"dns": [outside_names.selector(n) for n in names]}
    return rule


def describe(cfg: StackConfig, f: Flow) -> str:
    """A flow in one line: ``frontend -> backend:80/TCP``."""
    target = f.to if f.to else ",".join(f.to_fqdns or ())
    return f"{f.source} -> {target}:{cfg.flow_port(f)}/{cfg.flow_protocol(f)}"


def _ports(cfg: StackConfig, f: Flow, with_http: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"port": str(cfg.flow_port(f)), "protocol": cfg.flow_protocol(f)}]}
    if with_http and f.http:
        rule["rules"] = {"http": [h.model_dump(exclude_none=True) for h in f.http]}
    return rule


def peer(cfg: StackConfig, workload: str) -> dict[str, Any]:
    return {"matchLabels": {NS_LABEL: cfg.workloads[workload].namespace, **selector(cfg, workload)}}


def peer_rule(cfg: StackConfig, name: str, direction: str) -> dict[str, Any]:
    """The L3 part of a rule naming ``name``, a workload or a peer, for ``direction`` (``from``/``to``).

    A peer is rendered on the workload's side only: pods of another namespace by their
    namespace and labels, addresses as a CIDR set, an entity as itself.
    """
    p = cfg.peers.get(name)
    if p is None:
        return {f"{direction}Endpoints": [peer(cfg, name)]}
    if p.namespace is not None:
        return {f"{direction}Endpoints": [{"matchLabels": {NS_LABEL: p.namespace, **p.labels}}]}
    if p.cidrs is not None:
        sets = []
        for c in p.cidrs:
            net = ipaddress.ip_network(c)
            inside = [e for e in p.except_ if ipaddress.ip_network(e).version == net.version and ipaddress.ip_network(e).subnet_of(net)]
            sets.append({"cidr": c, **({"except": inside} if inside else {})})
        return {f"{direction}CIDRSet": sets}
    return {f"{direction}Entities": [p.entity]}


def egress_rules(cfg: StackConfig, f: Flow) -> list[dict[str, Any]]:
    """A flow's rules on its source's side: to its peer, or to outside names (with the DNS rule they need)."""
    if f.to:
        return [{**peer_rule(cfg, f.to, "to"), "toPorts": [_ports(cfg, f, with_http=False)]}]
    names = tuple(f.to_fqdns or ())
    return [
        # The DNS proxy must see the lookups to learn the names' addresses.
        *dns_rules(cfg, names),
        {
            "toFQDNs": [outside_names.selector(n) for n in names],
            "toPorts": [_ports(cfg, f, with_http=False)],
        },
    ]


def ingress_rule(cfg: StackConfig, f: Flow) -> dict[str, Any]:
    """A flow's rule on its target's side, with its HTTP rules."""
    return {**peer_rule(cfg, f.source, "from"), "toPorts": [_ports(cfg, f, with_http=True)]}


def policy_name(role: str, *fields: str) -> str:
    """``zt-allow.frontend``: the role, then dot-separated fields.

    Every field is a DNS label (a workload name) and labels never contain a dot, so the name
    splits back into its fields one way only. A DNS-1123 subdomain of at most 253 characters.
    """
    name = ".".join((role, *fields)).lower()
    if len(name) > 253:
        name = name[:244] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return name
