"""A verdict and its two sides; what applies to one identity in one direction on one port, and how a side
is decided from it.

``judge`` is the one place a side's verdict is made (the engine's fast path and its explained path
both call it); ``l7_rules`` merges the L7 rules of the allows that match a peer, as Cilium does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.verdict.compile import PeerRule, PortEntry, Rule


@dataclass(frozen=True)
class Side:
    allowed: bool
    reason: str
    policies: tuple[str, ...] = ()
    exact: bool = True
    http: tuple[Mapping[str, Any], ...] | None = None
    """Allowed through the L7 proxy: the HTTP rules every request must pass (None: no HTTP rules apply)."""
    other_l7: str | None = None
    """Allowed through the L7 proxy by rules no record decides (Kafka, generic L7, TLS): which."""
    dns: tuple[Mapping[str, Any], ...] | None = None
    """Allowed through the DNS proxy: the DNS rules every lookup must pass (None: no DNS rules apply)."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    egress: Side
    ingress: Side
    exact: bool = True
    """False when something the engine does not decide offline (L7, FQDN, CIDR...) could change it."""


@dataclass
class View:
    """What applies to one pod identity, in one direction, on one port/protocol."""

    enforced: bool
    default_deny: bool
    enforcing: tuple[Rule, ...]
    empty_hint: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()
    deny: list[tuple[frozenset[int] | None, PeerRule, PortEntry | bool]] = field(default_factory=list)
    allow: list[tuple[frozenset[int] | None, PeerRule, PortEntry | bool]] = field(default_factory=list)
    offline: list[tuple[str, frozenset[int] | None, PeerRule | None]] = field(default_factory=list)
    """What the engine cannot decide offline, the peers it concerns (None: every peer) and the rule whose
    match it leaves open (None: it concerns the subject, whichever rule decides)."""
    hints: list[tuple[str, frozenset[int]]] = field(default_factory=list)
    """Why a rule exactly does not select a peer that it might seem to (an address under other DNS names)."""


def judge(view: View, peer: int) -> tuple[bool, str, PeerRule | None, PortEntry | bool | None]:
    """(allowed, how, deciding rule, its port entry): the one place a side is decided."""
    if not view.enforced:
        return True, "open", None, None
    for peers, pr, _ in view.deny:
        if peers is None or peer in peers:
            return False, "deny", pr, None
    for peers, pr, entry in view.allow:
        if peers is None or peer in peers:
            return True, "allow", pr, entry
    if not view.default_deny:
        return True, "default-allow", None, None
    return False, "default-deny", None, None


def l7_rules(view: View, peer: int) -> tuple[tuple[Mapping[str, Any], ...] | None, str | None, tuple[Mapping[str, Any], ...] | None]:
    """The L7 rules an allowed peer's requests pass: Cilium merges every allow that matches the peer on
    the port, and one without L7 rules lets every request through (pkg/policy/l4.go wildcardL3L4Rules).

    Returns (HTTP rules or None, what other L7 rules apply or None, DNS rules or None).
    """
    entries = [e for peers, _, e in view.allow if peers is None or peer in peers]
    ports = [e for e in entries if isinstance(e, PortEntry)]
    dns = tuple(rule for e in ports for rule in e.dns or ()) if len(ports) == len(entries) and all(e.dns is not None for e in ports) else None
    if not all(isinstance(e, PortEntry) and e.l7 for e in entries):
        return None, None, dns
    other = next((e.other_l7 for e in ports if e.other_l7), None)
    http = tuple(rule for e in ports for rule in e.http or ())
    return (http if any(e.http is not None for e in ports) else None), other, dns


def relevant_doubts(view: View, peer: int, how: str, by: PeerRule | None) -> list[str]:
    """What the records cannot show that could change this side's verdict: what concerns the subject
    always; a deny that might match, unless already denied; an allow that might match, unless already
    denied or allowed by a rule that matches exactly; the deciding rule's own doubt."""
    notes = [(text, pr) for text, only, pr in view.offline if only is None or peer in only]
    noted = {id(pr) for _, pr in notes if pr is not None}
    exact_allow = any((peers is None or peer in peers) and id(pr) not in noted for peers, pr, _ in view.allow)
    keep = {
        "open": lambda pr: False,
        "deny": lambda pr: pr is by,
        "allow": lambda pr: pr.deny or not exact_allow,
        "default-allow": lambda pr: pr.deny,
        "default-deny": lambda pr: not pr.deny,
    }[how]
    return [text for text, pr in notes if pr is None or keep(pr)]
