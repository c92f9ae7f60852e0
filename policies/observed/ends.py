"""Naming an observed end in the stack's terms, and the identity the verdict engine judges it as.

In this order:

- ``kube-system`` pods of CoreDNS (label ``k8s-app=kube-dns``, workload or pod name ``coredns``): kube-dns;
- a pod of a stack workload: by the workload the record names (``workloads[]``), by the workload's
  selector labels, or, when the record lists no labels (field masks, proxy observations, Log
  Analytics), by its pod name: ``<deployment>-<hash>-<suffix>``, ``<name>-<suffix>`` (DaemonSet,
  Job, ReplicaSet), ``<statefulset>-<ordinal>``, the longest workload name first;
- a pod of a namespace peer (its labels; a peer without labels when the record has none);
- any other pod of a managed namespace: an unknown pod, judged as the labels it has (unattributed
  when the record lists none: no telling which policies select it);
- an address outside the cluster: the address peer that holds it, else itself (with the DNS names
  its source, and other sources, looked it up under); an address inside the pod, Service or node
  ranges of the stack's cluster is never ``world``;
- a reserved identity: the entity peer that names it, else the entity;
- anything else is unattributed: counted and listed, never judged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from policies.config import StackConfig
from policies.config.azure import MANAGED_VNET
from policies.analysis.matrix import KUBE_DNS, WorkloadPods
from policies.observed.records import End, Observations
from policies.render import selector
from policies.verdict import ENTITIES, Endpoint, addresses, entity, host_cidr
from policies.verdict.identity import CLUSTER_KEY, NS_LABELS_PREFIX, SA_KEY

SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
"""The alphabet Kubernetes draws generated name suffixes and pod-template hashes from (``rand.SafeEncodeString``)."""
POD_NAME_PATTERNS = (
    rf"-{SAFE}{{1,10}}-{SAFE}{{5}}",  # Deployment: <deployment>-<pod-template-hash>-<suffix>
    rf"-{SAFE}{{5}}",  # DaemonSet, Job, ReplicaSet: <name>-<suffix>
    r"-(0|[1-9][0-9]*)",  # StatefulSet: <name>-<ordinal>
)
COREDNS = ("coredns", "kube-dns")
NS_LABELS = "io.cilium.k8s.namespace.labels."


def owner_of(pod: str, names: Sequence[str]) -> str | None:
    """The workload (of ``names``) whose pods are named like ``pod``; the longest name wins."""
    for name in sorted(names, key=len, reverse=True):
        if pod.startswith(name + "-") and any(re.fullmatch(p, pod[len(name):]) for p in POD_NAME_PATTERNS):
            return name
    return None


@dataclass(frozen=True)
class Named:
    name: str
    endpoint: Endpoint | None
    """What the verdict engine judges; None for an unattributed end."""
    unknown: bool = False
    """A pod of a managed namespace that matches no workload."""
    aliases: tuple[str, ...] = ()
    """Entity peers it also counts as, for "never observed"."""
    why: str = ""
    """Why it is unattributed."""
    identity: frozenset = field(default=frozenset(), compare=False)


def _named(name: str, endpoint: Endpoint | None, **kw) -> Named:
    return Named(name, endpoint, identity=endpoint.identity() if endpoint is not None else frozenset(), **kw)


def cluster_ranges(cfg: StackConfig) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """The address ranges inside the stack's AKS cluster: pods, Services, nodes (none known for an existing cluster)."""
    c = cfg.cluster
    if c is None:
        return []
    out = [("serviceCidr", ipaddress.ip_network(c.service_cidr)), ("the node VNet", MANAGED_VNET)]
    if c.effective_pod_cidr:
        out.append(("podCidr", ipaddress.ip_network(c.effective_pod_cidr)))
    return out


def _covers(peer, ip) -> bool:
    """Whether an address peer's ranges, less its except ranges, hold ``ip``."""
    return any(ip in ipaddress.ip_network(c) for c in peer.cidrs) and not any(ip in ipaddress.ip_network(e) for e in peer.except_)


def namer(cfg: StackConfig, workloads: Sequence[WorkloadPods], obs: Observations) -> Callable[..., Named]:
    """``name(end, source=None)``: the end named and judged (cached per end, and per source for the world).

    ``workloads``: every workload of the stack, deployed here or elsewhere (``matrix.workload_pods``)."""
    pods = {w.name: w for w in workloads}
    by_namespace: dict[str, list[str]] = {}
    for n, w in cfg.workloads.items():
        by_namespace.setdefault(w.namespace, []).append(n)
    ranges = cluster_ranges(cfg)
    ip_names: dict[str, dict[End, set[str]]] = {}
    for c in obs.connections.values():
        if c.dst.ip and c.dst.names:
            ip_names.setdefault(c.dst.ip, {}).setdefault(c.src, set()).update(c.dst.names)
    cache: dict[tuple, Named] = {}

    def name(end: End, source: End | None = None) -> Named:
        key = (end, source if end.reserved == "world" else None)
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = _name(end, source)
        return hit

    def _name(end: End, source: End | None) -> Named:
        if end.unattributed:
            why = f"the record gives {end.ip} no identity" if end.ip else "the record names no pod, identity or address"
            return _named(end.display, None, why=why)
        if end.reserved is not None:
            return _reserved(end, source)
        return _pod(end)

    def _reserved(end: End, source: End | None) -> Named:
        aliases = tuple(n for n, p in sorted(cfg.peers.items()) if p.entity == end.reserved)
        if end.reserved == "world" and end.ip:
            ip = ipaddress.ip_address(end.ip)
            inside = next((f"{what} {net}" for what, net in ranges if ip.version == net.version and ip in net), None)
            if inside:
                return _named(f"unattributed {end.ip}", None, why=f"{end.ip} is inside the cluster ({inside}) but the record names no pod")
            others = sorted({x for src, names in ip_names.get(end.ip, {}).items() if src != source for x in names} - set(end.names or ()))
            host = host_cidr(end.ip)
            for peer_name, p in sorted(cfg.peers.items()):
                if p.cidrs and _covers(p, ip):
                    return _named(peer_name, addresses(peer_name, (host,), names=end.names, other_names=tuple(others)), aliases=aliases)
            label = f"world {end.ip}" + (f" ({', '.join(end.names)})" if end.names else "")
            return _named(label, addresses(label, (host,), names=end.names, other_names=tuple(others)), aliases=aliases)
        if end.reserved == "kube-apiserver" and cfg.api_server_outside:
            # An address outside the cluster: CIDR rules and world select it too (identity.Endpoint.outside),
            # so a flow to an address peer covering it is observed by it.
            display = aliases[0] if aliases else "kube-apiserver"
            if end.ip:
                aliases += tuple(n for n, p in sorted(cfg.peers.items()) if p.cidrs and _covers(p, ipaddress.ip_address(end.ip)))
            return _named(display, entity("kube-apiserver", display=display, outside=True, address=end.ip), aliases=aliases)
        nodes = dict(end.node_labels) if end.node_labels is not None else None  # host and remote-node only
        if aliases:
            return _named(aliases[0], entity(end.reserved, display=aliases[0], node_labels=nodes), aliases=aliases)
        if end.reserved not in ENTITIES:
            # A reserved label newer than this table: judged as nothing rather than guessed.
            return _named(f"reserved:{end.reserved}", None,
                          why=f"reserved:{end.reserved} is none of Cilium's reserved identities this table knows ({', '.join(ENTITIES)})")
        return _named(end.reserved, entity(end.reserved, node_labels=nodes))

    def _pod(end: End) -> Named:
        ns = str(end.namespace)
        labels = dict(end.labels)
        extra = _identity_labels(end)
        if ns == "kube-system" and (
            labels.get("k8s-app") == "kube-dns" or end.workload in COREDNS or (end.pod and owner_of(end.pod, COREDNS))
        ):
            return _named(KUBE_DNS, Endpoint("kube-system", {"k8s-app": "kube-dns"}, name=KUBE_DNS))
        candidates = by_namespace.get(ns, [])
        owner = end.workload if end.workload in candidates else None
        if owner is None and end.labels_known:
            owner = next((n for n in candidates if selector(cfg, n).items() <= labels.items()), None)
        if owner is None and not end.labels_known and end.pod:
            owner = owner_of(end.pod, candidates)
        if owner is not None:
            return _named(owner, pods[owner].endpoint())
        ns_peers = [(n, p) for n, p in sorted(cfg.peers.items()) if p.namespace == ns]
        for peer_name, p in ns_peers:
            if (p.labels.items() <= labels.items()) if end.labels_known else not p.labels:
                return _named(peer_name, Endpoint(ns, labels or dict(p.labels), name=peer_name, **extra))
        if ns in by_namespace and not end.labels_known:
            return _named(end.display, None, unknown=True,
                          why=f"the record lists no labels and its name matches no workload of {ns}: no telling which policies select it")
        if ns in by_namespace:
            return _named(end.display, Endpoint(ns, labels, name=end.workload or "", **extra), unknown=True)
        labelled = [n for n, p in ns_peers if p.labels]
        if not end.labels_known and labelled:
            return _named(end.display, None, why=f"the record lists no labels, and peer {labelled[0]} selects pods of {ns} by label")
        return _named(end.display, Endpoint(ns, labels, name=end.workload or "", **extra))

    return name


def _identity_labels(end: End) -> dict:
    """The service account, cluster and namespace labels Cilium adds to a pod's identity, where the record
    has them; the families it lacks are named unknown (selectors on them are then not decided)."""
    out: dict = {}
    ns_labels = {k.removeprefix(NS_LABELS): v for k, v in end.cilium_labels if k.startswith(NS_LABELS)}
    if ns_labels:
        out["namespace_labels"] = ns_labels
    for k, v in end.cilium_labels:
        if k == SA_KEY:
            out["service_account"] = v
        elif k == CLUSTER_KEY:
            out["cluster"] = v
    # A record lists every label of these families or none (field masks, older agents, Log Analytics).
    carried = {"namespace_labels": NS_LABELS_PREFIX, "service_account": SA_KEY, "cluster": CLUSTER_KEY}
    out["unknown_labels"] = frozenset(f for field, f in carried.items() if field not in out)
    return out
