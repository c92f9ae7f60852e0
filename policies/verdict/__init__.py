"""A Cilium policy verdict engine for pod-to-pod connections (L3/L4).

Given CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy manifests (plain
dicts, as applied), decide whether a pod may open a connection to another pod
on a port and protocol, and say why in one line::

    from policies.verdict import Endpoint, decide
    v = decide(manifests, src=Endpoint("frontend", {"app": "frontend"}),
               dst=Endpoint("backend", {"app": "backend"}), port=80, protocol="TCP")
    v.allowed, v.reason

The semantics follow Cilium 1.14-1.19 (what AKS ships and the next release);
what changes by version is read from ``policies.cilium_versions``. Each module
cites the Cilium doc or code its rules come from:

- ``identity``: a pod's security identity (labels Cilium keeps and adds), the stranger;
- ``selectors``: label selectors and Cilium's namespace scoping;
- ``compile``: manifests -> rules, and what Cilium rejects;
- ``engine``: the verdicts (both directions, default deny, deny before allow);
- ``outside``, ``fqdn``: entities, CIDRs and DNS names (identities outside the pods);
- ``http``: HTTP rules against recorded requests;
- ``explain``: the words of a verdict.

Peers outside the pods are identities of their own: ``entity("world")``,
``entity("kube-apiserver")``... and ``addresses(name, cidrs, excepts, names)``; entity,
CIDR and toFQDNs rules are decided for them (``outside``: a CIDR rule never selects a pod or
a node; one that covers an address range only in part is not decided offline; a toFQDNs
rule selects an address by the DNS names it was looked up under, ``fqdn``). The local node
(``host``) always reaches its pods (Cilium's allow-localhost) unless a deny rule selects it.

An allow through the L7 proxy says which HTTP and DNS rules each request must pass
(``Side.http``, ``Side.dns``; ``http`` judges a recorded request against them).

Not decided offline (the verdict says so and ``exact`` is False): service and group
peers, named egress ports, a toFQDNs rule for an address with no recorded name, L7 rules
until requests are judged against them, selectors on labels a record does not carry
(``Endpoint.unknown_labels``), and host policies where the host firewall is off (AKS:
``policies.agent_settings``). A side is inexact only by a doubt that could change it
(``view.relevant_doubts``). DNS rules restrict names, not reachability, so port 53 stays exact.

- ``crd``: what the API server serves and prunes (Cilium's CRD schemas, vendored in ``crds/``).
"""

from policies.verdict.compile import CCNP, CNP, PeerRule, PortEntry, Rule, compile_policy, policy_ref
from policies.verdict.engine import Engine, Side, Verdict, decide
from policies.verdict.identity import (
    ENTITIES,
    NS_KEY,
    NS_LABELS_PREFIX,
    STRANGER,
    Endpoint,
    addresses,
    entity,
    host_cidr,
    keep_label,
    stranger,
    stranger_name,
)
from policies.verdict.selectors import PolicyRejected, Requirement, Selector, parse_selector, peer_selector, subject_selector

__all__ = [
    "ENTITIES",
    "addresses",
    "entity",
    "host_cidr",
    "CCNP",
    "CNP",
    "NS_KEY",
    "NS_LABELS_PREFIX",
    "STRANGER",
    "Endpoint",
    "Engine",
    "PeerRule",
    "PolicyRejected",
    "PortEntry",
    "Requirement",
    "Rule",
    "Selector",
    "Side",
    "Verdict",
    "compile_policy",
    "decide",
    "keep_label",
    "parse_selector",
    "peer_selector",
    "policy_ref",
    "stranger",
    "stranger_name",
    "subject_selector",
]
