"""Config -> Kubernetes manifests, as plain dicts.

This is where intent (workloads and the flows between them) becomes the
objects that are applied. Components wrap these dicts in Pulumi resources and
add nothing of their own, so what the verdict engine judges here is what is
deployed.

Cilium facts this module relies on (see docs/policy-semantics.md):

- A direction is enforced for a pod only when a rule that selects it has a
  *non-empty* ``ingress``/``egress`` list; ``ingress: []`` enforces nothing.
  ``ingress: [{}]`` enforces default deny and allows nothing by itself.
  ``enableDefaultDeny`` is not used: Cilium 1.14 (AKS on Kubernetes 1.29/1.30)
  prunes the field.
- A CNP's peer selectors are confined to the policy's own namespace unless
  they name ``k8s:io.kubernetes.pod.namespace``, so every peer names it.
- A connection needs the source's egress allow *and* the destination's
  ingress allow, so each flow is rendered on both sides.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.cilium_versions import features
from policies.config import PROJECT, Flow, StackConfig, WorkloadConfig, outside_names
from policies.config import azure

CILIUM_API = "cilium.io/v2"
NS_LABEL = "k8s:io.kubernetes.pod.namespace"
KUBE_DNS = {NS_LABEL: "kube-system", "k8s:k8s-app": "kube-dns"}
MANAGED_BY = {"app.kubernetes.io/managed-by": PROJECT}
OTHER_IDENTITIES_ANNOTATION = f"{PROJECT}/other-identities"
"""On each managed Namespace: the policy-map budget's estimate of identities the stack does not know."""
FLOWS_ANNOTATION = f"{PROJECT}/flows"
"""On a workload's policy: JSON, rule position (``ingress[0]``) -> the flow it comes from."""
ROLE_LABEL = f"{PROJECT}/role"

# Capabilities the stock nginx image (and most root-started servers) need to
# start and drop to an unprivileged user; all are in Pod Security `baseline`.
BASELINE_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "NET_BIND_SERVICE", "SETGID", "SETUID")


@dataclass(frozen=True)
class WorkloadManifests:
    name: str
    deployment: dict[str, Any]
    service: dict[str, Any] | None


@dataclass(frozen=True)
class NamespaceManifests:
    name: str
    namespace: dict[str, Any]
    """The Namespace the stack creates; or, for one that exists already (``create: false``), the labels the
    stack sets on it (applied as a server-side patch that neither creates nor deletes it)."""
    policies: tuple[dict[str, Any], ...]
    workloads: tuple[WorkloadManifests, ...] = field(default=())
    create: bool = True
    service_accounts: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class Rendered:
    namespaces: tuple[NamespaceManifests, ...]

    def all(self) -> list[dict[str, Any]]:
        """Every object, namespaces first, in a stable order."""
        out: list[dict[str, Any]] = [n.namespace for n in self.namespaces]
        for n in self.namespaces:
            out.extend(n.service_accounts)
            for w in n.workloads:
                out.append(w.deployment)
                if w.service:
                    out.append(w.service)
        for n in self.namespaces:
            out.extend(n.policies)
        return out

    def policies(self) -> list[dict[str, Any]]:
        return [p for n in self.namespaces for p in n.policies]


def render(cfg: StackConfig) -> Rendered:
    targets = cfg.flow_targets
    namespaces = []
    for ns in cfg.namespaces:
        members = {name: w for name, w in sorted(cfg.workloads.items()) if w.namespace == ns}
        workloads = tuple(
            WorkloadManifests(
                name=name,
                deployment=deployment(name, w),
                service=service(name, w) if name in targets or w.expose == "loadBalancer" else None,
            )
            for name, w in members.items()
            if w.deployed
        )
        accounts = sorted({w.service_account_name for w in members.values() if w.service_account_name not in (None, "default")})
        namespaces.append(
            NamespaceManifests(
                name=ns,
                namespace=namespace(ns, members.values(), cfg),
                policies=tuple(namespace_policies(cfg, ns)),
                workloads=workloads,
                create=cfg.creates_namespace(ns),
                service_accounts=tuple(service_account(a, ns) for a in accounts),
            )
        )
    return Rendered(tuple(namespaces))


# -- workloads ---------------------------------------------------------------------


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


def namespace(ns: str, workloads: Any, cfg: StackConfig) -> dict[str, Any]:
    """The Namespace; for one that exists already, only the label the stack sets on it (Pod Security stays its owner's)."""
    marker = {f"{PROJECT}/default-deny": cfg.zero_trust.default_deny}
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


def cnp(name: str, ns: str, role: str, spec: dict[str, Any], flows: Mapping[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns, "labels": {**MANAGED_BY, ROLE_LABEL: role}}
    if flows:
        metadata["annotations"] = {FLOWS_ANNOTATION: json.dumps(dict(flows), sort_keys=True)}
    return {"apiVersion": CILIUM_API, "kind": "CiliumNetworkPolicy", "metadata": metadata, "spec": spec}


def namespace_policies(cfg: StackConfig, ns: str) -> list[dict[str, Any]]:
    """One policy for the namespace (default deny, and DNS), then one per workload with flows.

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
