"""Identities outside the pods: which of them a rule's entities, CIDRs and DNS names select.

- Entities (pkg/policy/api/entity.go): ``all`` is everything; ``cluster`` is every pod plus the
  reserved identities inside the cluster; ``world-ipv4``/``world-ipv6`` are halves of ``world``.
- CIDR rules never select pods, nodes or an API server inside the cluster (they have identities of
  their own); an address identity is covered, not covered, or covered in part (then not decided
  offline). An API server outside the cluster (AKS) is an address too: ``world`` and CIDR rules
  covering its address select it, besides ``kube-apiserver``.
- toFQDNs rules select addresses by the DNS names Cilium's DNS proxy saw them under: the names
  the connection's own source looked up (``destination_names`` in a record) decide exactly; a
  name only another pod looked up selects the address too (Cilium's name manager shares every
  endpoint's answers) while that answer is cached, so not exactly; no recorded name at all is
  not decided offline.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from policies.cilium_versions import CiliumFeatures
from policies.verdict import fqdn
from policies.verdict.identity import CLUSTER_ENTITIES, Endpoint


def entity_selects(entities: frozenset[str], ep: Endpoint) -> bool:
    """Whether from/toEntities select a reserved identity (pkg/policy/api/entity.go)."""
    if not entities:
        return False
    return any(_entity_selects(entities, reserved) for reserved in ep.reserved_names)


def _entity_selects(entities: frozenset[str], reserved: str) -> bool:
    if "all" in entities or reserved in entities:
        return True
    if reserved == "world":
        return bool(entities & {"world-ipv4", "world-ipv6"})
    return reserved in CLUSTER_ENTITIES and "cluster" in entities


def cidr_cover(rules: tuple[tuple[str, tuple[str, ...]], ...], ep: Endpoint) -> str:
    """How CIDR rules cover the addresses an identity stands for: "all", "part" or "none".

    ``world`` without CIDRs stands for every address outside the cluster (an API server outside
    without a known address: any of them); CIDR rules never cover pods, nodes or an API server
    inside the cluster (they have identities of their own).
    """
    if "world" not in ep.reserved_names:
        return "none"
    blocks = [ipaddress.ip_network(c) for c in ep.cidrs] or [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    own_excepts = [ipaddress.ip_network(c) for c in ep.excepts]
    covered = [False] * len(blocks)
    touched = False
    for cidr, excepts in rules:
        net = ipaddress.ip_network(cidr)
        holes = [
            e for e in map(ipaddress.ip_network, excepts)
            if not any(o.version == e.version and e.subnet_of(o) for o in own_excepts)
        ]
        for i, b in enumerate(blocks):
            if b.version != net.version or not b.overlaps(net):
                continue
            cut = [h for h in holes if h.version == b.version and h.overlaps(b)]
            if b.subnet_of(net) and not cut:
                covered[i] = True
            # A block that lies wholly in one of this rule's holes is not touched by it.
            touched = touched or not any(b.subnet_of(h) for h in cut)
    if all(covered):
        return "all"
    return "part" if touched else "none"


def fqdn_cover(selectors: Sequence[Mapping[str, Any]], ep: Endpoint, cilium: CiliumFeatures) -> tuple[str, str]:
    """How toFQDNs selectors cover an identity: ("all" | "lookup" | "none" | "part", why).

    ``lookup``: selected only through a name another pod looked up (selected, not exactly).
    """
    if "world" not in ep.reserved_names:
        return "none", ""
    address = ep.address
    if address is None:
        return "part", f"DNS names select some addresses of {ep.display}"
    own = fqdn.any_selects(selectors, ep.names or (), cilium)
    if own:
        return "all", f"{address} is {own[0]}"
    other = fqdn.any_selects(selectors, ep.other_names, cilium)
    if other:
        return "lookup", f"{address} is {other[0]} only through another pod's lookup (selected while that answer is cached)"
    if ep.names:
        return "none", f"{address} is {', '.join(ep.names)}, which no toFQDNs entry names"
    return "part", f"no DNS name was recorded for {address} (no DNS proxy saw the lookup)"
