"""Who a pod is to Cilium: its security identity (labels Cilium keeps, plus what it adds).

- Every pod label gets the source ``k8s:``; Cilium adds the namespace, the
  namespace's labels (``io.cilium.k8s.namespace.labels.*``), the service
  account and the cluster name.
- The default label filter drops some keys from identities
  (pkg/labelsfilter/filter.go defaultLabelPrefixCfg); selectors never see them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from policies import memo

NS_KEY = "io.kubernetes.pod.namespace"
NS_LABELS_PREFIX = "io.cilium.k8s.namespace.labels"
SA_KEY = "io.cilium.k8s.policy.serviceaccount"
CLUSTER_KEY = "io.cilium.k8s.policy.cluster"
NODE_LABELS = "node"
"""The label families Cilium adds to an identity that a record may lack: the service account, the cluster,
the namespace's labels (all but ``kubernetes.io/metadata.name``) and a node's labels. An identity built
from a record without them lists them in ``unknown_labels``; a selector on them is then not decided."""
NODE_ENTITIES = frozenset({"host", "remote-node"})
ENDPOINT_ENTITIES = frozenset({"health", "init", "ingress"})
"""Reserved identities of endpoints Cilium enforces policy on, which a CCNP's endpointSelector can select
(``reserved:health``...); the host is selected only by a nodeSelector (pkg/policy/rule.go matchesSubject)."""
STRANGER = "stranger"
"""An unlabelled pod in a namespace: the identity no flow names, so every policy must deny it."""


# pkg/labelsfilter/filter.go defaultLabelPrefixCfg: (pattern, include?). A label
# is kept if no ignore pattern matches it, or the longest matching include
# pattern is longer than the longest matching ignore pattern.
_LABEL_FILTER = [
    (NS_KEY, True),
    (NS_LABELS_PREFIX, True),
    ("app.kubernetes.io", True),
    (r"io\.kubernetes", False),
    (r"kubernetes\.io", False),
    (r".*beta\.kubernetes\.io", False),
    (r"k8s\.io", False),
    ("pod-template-generation", False),
    ("pod-template-hash", False),
    ("controller-revision-hash", False),
    ("annotation.*", False),
    ("etcd_node", False),
]
_LABEL_FILTER_RE = [(re.compile(p if not inc else re.escape(p)), len(p), inc) for p, inc in _LABEL_FILTER]

@memo.register
@lru_cache(maxsize=65536)
def keep_label(key: str) -> bool:
    """Whether Cilium keeps a pod label key in the pod's security identity."""
    included = ignored = 0
    for rx, length, include in _LABEL_FILTER_RE:
        if rx.search(key):
            if include:
                included = max(included, length)
            else:
                ignored = max(ignored, length)
    return ignored == 0 or included > ignored


ENTITIES = ("world", "kube-apiserver", "host", "remote-node", "health", "init", "ingress", "unmanaged")
"""Cilium's reserved identities (pkg/policy/api/entity.go), each an entity of the same name."""
CLUSTER_ENTITIES = frozenset(ENTITIES) - {"world"}
"""What the ``cluster`` entity covers besides every pod of the cluster."""


@dataclass(frozen=True, eq=False)
class Endpoint:
    """A pod as Cilium sees it: namespace and labels (plus what Cilium adds).

    Or something outside the pods: ``reserved`` names a reserved identity (``world``,
    ``kube-apiserver``, ``host``, ``remote-node``...), and ``cidrs``/``excepts`` narrow
    ``world`` to addresses outside the cluster (a CIDR identity). See ``entity`` and ``addresses``.
    """

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    service_account: str = "default"
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    cluster: str = "default"
    reserved: str | None = None
    cidrs: tuple[str, ...] = ()
    excepts: tuple[str, ...] = ()
    named_ports: Mapping[str, tuple[int, str]] | None = None
    """The pods' container ports by name (name -> (port, protocol)); None when unknown."""
    names: tuple[str, ...] | None = None
    """An address outside the cluster: the DNS names the source's DNS proxy saw it under (None: unknown)."""
    other_names: tuple[str, ...] = ()
    """An address outside the cluster: names other pods looked it up under (Cilium shares their answers)."""
    node_labels: Mapping[str, str] | None = None
    """``host``/``remote-node`` only: the node's labels as its identity carries them (``node:`` source, with
    enable-node-selector-labels; none without); None when the record does not say."""
    unknown_labels: frozenset[str] = frozenset()
    """Label families (``SA_KEY``, ``CLUSTER_KEY``, ``NS_LABELS_PREFIX``, ``NODE_LABELS``) the record this
    identity comes from does not carry; the defaults stand in for them, and selectors on them are undecided."""
    outside: bool = False
    """``kube-apiserver`` only: the API server lives outside the cluster (AKS). Cilium then gives its
    address a CIDR identity that carries ``reserved:kube-apiserver`` and ``reserved:world`` too
    (pkg/ipcache/metadata.go ``injectLabelsForCIDR``; pkg/labels/cidr ``GetCIDRLabels``), so the
    ``world`` entity and CIDR rules covering its address select it as well (cilium/cilium#25241)."""

    @property
    def reserved_names(self) -> frozenset[str]:
        """The reserved labels this identity carries: its own, and ``world`` for an API server outside."""
        if self.reserved is None:
            return frozenset()
        return frozenset({self.reserved, "world"}) if self.outside else frozenset({self.reserved})

    @property
    def address(self) -> str | None:
        """The one address an address identity stands for (a /32 or /128), else None."""
        if len(self.cidrs) == 1 and not self.excepts:
            net = self.cidrs[0]
            host = net.split("/")[0]
            if net.endswith("/32" if ":" not in net else "/128"):
                return host
        return None

    @property
    def display(self) -> str:
        if self.reserved is not None:
            return self.name or self.reserved
        return f"{self.namespace}/{self.name or _labels_text(self.labels) or 'pod'}"

    def identity(self) -> frozenset[tuple[str, str, str]]:
        """The identity labels as (source, key, value)."""
        if self.reserved is not None:
            out = {("reserved", r, "") for r in self.reserved_names}
            out |= {("cidr", c, "") for c in self.cidrs}
            out |= {("cidr-except", c, "") for c in self.excepts}
            if self.names is not None:
                out.add(("dns-names", "", ""))
                out |= {("dns", n, "own") for n in self.names}
            out |= {("dns", n, "other") for n in self.other_names}
            if self.node_labels:
                out |= {("node", k, v) for k, v in self.node_labels.items()}
                out.add(("k8s", CLUSTER_KEY, self.cluster))
            if self.reserved in NODE_ENTITIES and self.node_labels is None:
                out.add(("unknown", NODE_LABELS, ""))
            return frozenset(out)
        out = {("k8s", k, v) for k, v in self.labels.items() if keep_label(k)}
        out.add(("k8s", NS_KEY, self.namespace))
        out.add(("k8s", CLUSTER_KEY, self.cluster))
        out.add(("k8s", SA_KEY, self.service_account))
        ns_labels = {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}
        out |= {("k8s", f"{NS_LABELS_PREFIX}.{k}", v) for k, v in ns_labels.items()}
        out |= {("unknown", family, "") for family in self.unknown_labels}
        return frozenset(out)


def label_families(source: str, key: str) -> frozenset[str]:
    """The families of ``NODE_LABELS`` etc. a selector requirement on ``source:key`` reads (none: the
    requirement reads only labels every record carries)."""
    out = set()
    if source in ("k8s", "any"):
        if key in (SA_KEY, CLUSTER_KEY):
            out.add(key)
        elif key.startswith(NS_LABELS_PREFIX + ".") and key != f"{NS_LABELS_PREFIX}.kubernetes.io/metadata.name":
            out.add(NS_LABELS_PREFIX)
    if source in ("node", "any") or key == CLUSTER_KEY:
        out.add(NODE_LABELS)
    return frozenset(out)


def _labels_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))




def stranger_name(namespace: str) -> str:
    """How every report names the stranger of a namespace: ``stranger@frontend``."""
    return f"{STRANGER}@{namespace}"


def stranger(namespace: str, namespace_labels: Mapping[str, str] | None = None) -> Endpoint:
    """An unlabelled pod in ``namespace``."""
    return Endpoint(namespace, name=STRANGER, namespace_labels=dict(namespace_labels or {}))


def host_cidr(ip: str) -> str:
    """The one-address range of an address: ``/32`` or ``/128``."""
    return f"{ip}/{128 if ':' in ip else 32}"


def entity(
    name: str, display: str = "", *, outside: bool = False, address: str | None = None, node_labels: Mapping[str, str] | None = None
) -> Endpoint:
    """A reserved identity: ``world``, ``kube-apiserver``, ``host``, ``remote-node``...

    ``outside`` (``kube-apiserver`` only): the API server lives outside the cluster, at ``address``
    when known (a one-address range), so CIDR rules and the ``world`` entity select it too.
    ``node_labels`` (``host``, ``remote-node``): the node labels its identity carries (None: unknown).
    """
    if name not in ENTITIES:
        raise ValueError(f"{name!r} is not one of Cilium's reserved identities: {', '.join(ENTITIES)}")
    if (outside or address) and name != "kube-apiserver":
        raise ValueError("only the kube-apiserver identity can live outside the cluster")
    cidrs = (host_cidr(address),) if address else ()
    if node_labels is not None and name not in NODE_ENTITIES:
        raise ValueError("only host and remote-node identities carry node labels")
    return Endpoint("", name=display or name, reserved=name, outside=outside or bool(address), cidrs=cidrs,
                    node_labels=dict(node_labels) if node_labels is not None else None)


def addresses(
    name: str,
    cidrs: tuple[str, ...],
    excepts: tuple[str, ...] = (),
    names: tuple[str, ...] | None = None,
    other_names: tuple[str, ...] = (),
) -> Endpoint:
    """Addresses outside the cluster (``world``, narrowed to ``cidrs`` less ``excepts``), with the DNS
    names the source looked them up under (``names``; None: unknown) and those only other pods used."""
    return Endpoint(
        "", name=name, reserved="world", cidrs=tuple(cidrs), excepts=tuple(excepts), names=names, other_names=tuple(other_names)
    )
