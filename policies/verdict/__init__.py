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
- ``explain``: the words of a verdict.

Peers outside the pods are identities of their own: ``entity("world")``,
``entity("kube-apiserver")``... and ``addresses(name, cidrs, excepts)``; entity and
CIDR rules are decided for them (a CIDR rule never selects a pod or a node; one
that covers an address range only in part is not decided offline).

Not decided offline (the verdict says so and ``exact`` is False): FQDN,
service and group peers, ``fromRequires``/``toRequires``, named ports and L7
rules (HTTP, Kafka). DNS rules restrict names, not reachability, so port 53 stays exact.
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
    keep_label,
    stranger,
    stranger_name,
)
from policies.verdict.selectors import PolicyRejected, Requirement, Selector, parse_selector, peer_selector, subject_selector

__all__ = [
    "ENTITIES",
    "addresses",
    "entity",
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
