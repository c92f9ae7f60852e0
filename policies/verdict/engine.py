"""The verdict engine: does this pod reach that pod on this port, and why.

- A connection needs the source's egress AND the destination's ingress
  (docs policy/language: "policy must be configured on both sides").
- A direction is enforced for a pod only if a rule selecting it has a
  non-empty ``ingress``/``ingressDeny`` (``egress``/``egressDeny``) list
  (pkg/policy/repository.go computePolicyEnforcementAndRules). So
  ``ingress: []`` enforces nothing and ``ingress: [{}]`` denies everything.
- ``enableDefaultDeny``: a direction is default-allow only if every rule
  enforcing it sets the flag to false.
- Deny rules beat allows, and a deny-only rule still enforces its direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.cilium_versions import DEFAULT_CILIUM, Version, features
from policies.verdict.compile import CCNP, CNP, WILDCARD, PeerRule, PortEntry, Rule, compile_policy, policy_ref
from policies.verdict import networkpolicy
from policies.verdict.explain import not_enforced
from policies.verdict.identity import Endpoint
from policies.verdict.outside import cidr_cover, entity_selects, fqdn_cover
from policies.verdict.selectors import LABEL_SOURCES, PolicyRejected, Selector

LOCALHOST = PeerRule("allow-localhost", "ingress", False, (), None, None)
"""Cilium's own ingress allow from the local node (``reserved:host``) to every pod it runs: kubelet's
probes depend on it. ``--allow-localhost`` resolves to ``always`` on Kubernetes, and AKS does not let
it change; a deny rule that selects the host still wins (pkg/policy/mapstate.go
``determineAllowLocalhostIngress``, inserted deny-preferred)."""


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


class Engine:
    """Policies compiled once, queried for many (src, dst, port, protocol).

    How it avoids evaluating every policy for every pair:
    - pods are reduced to their security identity (the label set Cilium
      keys policy on) and interned as small ints, so pods that share labels
      share every answer;
    - rules are indexed by namespace (a CNP only ever selects pods of its own
      namespace; CCNPs apply everywhere);
    - each peer selector is resolved once into the set of identities it
      selects, through an inverted index of (key, value) -> identities;
    - for a (pod, direction, port, protocol) the applicable allow and deny
      peer sets are computed once, so one cell of a matrix is two set
      look-ups.
    """

    def __init__(
        self,
        manifests: Iterable[Mapping[str, Any]],
        version: Version = DEFAULT_CILIUM,
        endpoints: Iterable[Endpoint] = (),
    ):
        self.version = version
        self.cilium = features(version)
        self.rejected: list[tuple[str, str]] = []
        self._by_ns: dict[str | None, list[Rule]] = {}
        for m in manifests:
            if m.get("kind") not in (CNP, CCNP, networkpolicy.KIND):
                continue
            try:
                rules = compile_policy(m, self.cilium)
            except PolicyRejected as e:
                self.rejected.append((policy_ref(m), str(e)))
                continue
            for r in rules:
                self._by_ns.setdefault(r.namespace, []).append(r)
        # Whether any rule uses something not decided offline (L7, FQDN, CIDR, named ports...).
        self.has_offline_parts = any(
            pr.offline or pr.authenticated or pr.fqdns or any(e.l7 or e.named for e in pr.ports or ())
            for rules in self._by_ns.values()
            for r in rules
            for section in r.sections.values()
            for pr in section
        )
        self._ids: dict[frozenset, int] = {}
        self._eps: list[Endpoint] = []
        self._index: dict[tuple[str, str, str], set[int]] = {}  # (source or "any", key, value) -> interned ids
        self._keys: dict[tuple[str, str], set[int]] = {}  # (source or "any", key) -> interned ids
        self._reset_caches()
        for ep in endpoints:
            self.intern(ep)

    def _reset_caches(self) -> None:
        self._selected: dict[Selector, frozenset[int]] = {}
        self._views: dict[tuple, _View] = {}
        self._rules: dict[int, list[Rule]] = {}
        self._subjects: dict[int, frozenset[int]] = {}  # id(rule) -> the identities it selects
        self._outside: dict[int, tuple[frozenset[int], tuple[tuple[int, str, bool], ...]]] = {}  # id(peer rule) -> (ids, notes)

    # -- identities ---------------------------------------------------------------------

    def intern(self, ep: Endpoint) -> int:
        """The small int standing for ``ep``'s identity (adding it to the universe)."""
        identity = ep.identity()
        n = self._ids.get(identity)
        if n is None:
            n = len(self._ids)
            self._ids[identity] = n
            self._eps.append(ep)
            for source, key, value in identity:
                if source in LABEL_SOURCES:
                    for s in (source, "any"):
                        self._index.setdefault((s, key, value), set()).add(n)
                        self._keys.setdefault((s, key), set()).add(n)
            self._reset_caches()  # selections over the universe changed
        return n

    def _select(self, sel: Selector) -> frozenset[int]:
        hit = self._selected.get(sel)
        if hit is not None:
            return hit
        out: set[int] = set(range(len(self._ids)))
        for r in sel.requirements:  # as Requirement.matches defines it, through the index
            found = set().union(*(self._index.get((r.source, r.key, v), ()) for v in r.values))
            found_any = self._keys.get((r.source, r.key), set())
            if r.op == "In":
                out &= found
            elif r.op == "NotIn":
                out -= found
            elif r.op == "Exists":
                out &= found_any
            else:
                out -= found_any
        hit = frozenset(out)
        self._selected[sel] = hit
        return hit

    def _outside_peers(self, pr: PeerRule) -> tuple[frozenset[int], tuple[tuple[int, str, bool], ...]]:
        """The reserved and address identities a rule's entities, CIDRs and DNS names select, and notes
        (identity, why, exact): on those it is not known to select exactly (covered in part, or through
        another pod's lookup), and on addresses its DNS names exactly do not select."""
        hit = self._outside.get(id(pr))
        if hit is None:
            ids, notes = set(), []
            for n, ep in enumerate(self._eps):
                if ep.reserved is None:
                    continue
                if entity_selects(pr.entities, ep):
                    ids.add(n)
                    continue
                if pr.fqdns:
                    cover, why = fqdn_cover(pr.fqdns, ep, self.cilium)
                else:
                    cover = cidr_cover(pr.cidrs, ep) if pr.cidrs else "none"
                    why = f"covers {ep.display} only in part" if cover == "part" else ""
                if cover in ("all", "lookup"):
                    ids.add(n)
                if cover in ("lookup", "part") or (cover == "none" and why):
                    notes.append((n, why, cover == "none"))
            hit = self._outside[id(pr)] = (frozenset(ids), tuple(notes))
        return hit

    # -- what the policy-map budget reads (policies.analysis.budget) --------------------------------

    def rules_selecting(self, ep: Endpoint) -> list[Rule]:
        """Every rule that selects ``ep``'s pods, from every policy kind, both directions."""
        return self._rules_for(self.intern(ep))

    def peer_identities(self, pr: PeerRule) -> frozenset[int] | None:
        """The interned identities a peer rule selects (pods, reserved and address identities); None
        for a rule without an L3 restriction (one wildcard-identity entry in Cilium's map)."""
        if pr.selectors == WILDCARD:
            return None
        ids = set().union(*map(self._select, pr.selectors)) if pr.selectors else set()
        if pr.entities or pr.cidrs:
            ids |= self._outside_peers(pr)[0]
        return frozenset(ids)

    def endpoint(self, n: int) -> Endpoint:
        return self._eps[n]

    def all_rules(self) -> list[Rule]:
        """Every compiled rule, of every policy that compiled."""
        return [r for rules in self._by_ns.values() for r in rules]

    def _rules_for(self, n: int) -> list[Rule]:
        """The rules selecting identity ``n`` (both directions); none for identities outside the pods."""
        hit = self._rules.get(n)
        if hit is None and self._eps[n].reserved is not None:
            hit = self._rules[n] = []  # the world, nodes and the API server are not endpoints policies select here
        if hit is None:
            ep = self._eps[n]
            candidates = self._by_ns.get(ep.namespace, []) + self._by_ns.get(None, [])
            hit = [r for r in candidates if r.subject is not None and n in self._subject_set(r)]
            self._rules[n] = hit
        return hit

    def _rejected_in(self, namespace: str) -> tuple[tuple[str, str], ...]:
        return tuple((ref, why) for ref, why in self.rejected if ref.startswith((f"{namespace}/", "ccnp/")))

    def _subject_set(self, r: Rule) -> frozenset[int]:
        """Through the inverted index, once per rule for every identity."""
        hit = self._subjects.get(id(r))
        if hit is None:
            hit = self._subjects[id(r)] = self._select(r.subject)
        return hit

    def _view(self, n: int, direction: str, port: int, protocol: str) -> _View:
        key = (n, direction, port, protocol)
        view = self._views.get(key)
        if view is None:
            view = self._build_view(n, direction, port, protocol)
            self._views[key] = view
        return view

    def _build_view(self, n: int, direction: str, port: int, protocol: str) -> _View:
        rules = self._rules_for(n)
        enforcing = [r for r in rules if r.enforces[direction]]
        view = _View(
            enforced=bool(enforcing),
            default_deny=any(r.default_deny[direction] for r in enforcing),
            enforcing=tuple(enforcing),
            empty_hint=tuple(r.policy for r in rules if direction in r.empty_sections),
        )
        view.rejected = self._rejected_in(self._eps[n].namespace)
        if direction == "ingress":
            view.allow.append((frozenset(self._keys.get(("reserved", "host"), ())), LOCALHOST, True))
        # from/toRequires of every rule selecting the pod, allow and deny apart (pkg/policy/rules.go).
        required = {kind: tuple(req for r in enforcing for pr in r.sections[kind] for req in pr.requires)
                    for kind in (direction, direction + "Deny")}
        for r in enforcing:
            for kind, target in ((direction + "Deny", view.deny), (direction, view.allow)):
                for pr in r.sections[kind]:
                    # Named ports are the destination's: known for an ingress view (the subject is the
                    # destination) when its pods' port names are; never for an egress view.
                    named = self._eps[n].named_ports if direction == "ingress" else None
                    entry = pr.port_entry(port, protocol, named)
                    if entry is None:
                        if named is None and pr.named_port_applies(protocol):
                            view.offline.append((f"{pr.ref} names a port", None))
                        continue
                    if pr.offline:
                        view.offline.append((f"{pr.ref} has {pr.offline} peers", None))
                        continue
                    peers = None if pr.selectors == WILDCARD else frozenset().union(*map(self._select, pr.selectors))
                    if peers is not None and pr.from_endpoints and required[kind]:
                        for requirement in required[kind]:  # appended to each endpoint selector: a conjunction
                            peers &= self._select(requirement)
                    if peers is not None and (pr.entities or pr.cidrs or pr.fqdns):
                        outside, notes = self._outside_peers(pr)
                        peers |= outside
                        for p, why, exact in notes:
                            text = f"{pr.ref}: {why}" if pr.fqdns else f"{pr.ref} {why}"
                            (view.hints if exact else view.offline).append((text, frozenset({p})))
                    if pr.authenticated:
                        view.offline.append((f"{pr.ref} requires mutual authentication", None))
                    target.append((peers, pr, entry))
        return view

    # -- verdicts -----------------------------------------------------------------------------

    def allowed(self, src: int, dst: int, port: int, protocol: str) -> bool:
        """The fast path: interned identities in, a bool out (the same ``_judge`` as ``decide``)."""
        return (
            _judge(self._view(src, "egress", port, protocol), dst)[0]
            and _judge(self._view(dst, "ingress", port, protocol), src)[0]
        )

    def decide(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        protocol = protocol.upper()
        s, d = self.intern(src), self.intern(dst)
        eg = self.side(s, "egress", d, port, protocol)
        ing = self.side(d, "ingress", s, port, protocol)
        allowed = eg.allowed and ing.allowed
        exact = eg.exact and ing.exact
        flow = f"{src.display} -> {dst.display}:{port}/{protocol}"
        if allowed:
            reason = f"allowed {flow}: egress {eg.reason}; ingress {ing.reason}"
        else:
            blocking = [f"{name} {x.reason}" for name, x in (("egress", eg), ("ingress", ing)) if not x.allowed]
            reason = f"denied {flow}: " + "; ".join(blocking)
        if not exact:
            reason += " (not fully decided offline)"
        return Verdict(allowed, reason, eg, ing, exact)

    def enforcement(self, ep: Endpoint, direction: str) -> Side:
        """Whether ``ep`` is in effective default deny for ``direction`` (``allowed`` = it is), and why.

        Port-independent: enforcement and default deny are properties of the
        rules that select the pod, not of any one port.
        """
        rules = self._rules_for(self.intern(ep))
        enforcing = [r for r in rules if r.enforces[direction]]
        what = f"{direction} of {ep.display}"
        if not enforcing:
            view = _View(False, False, (), tuple(r.policy for r in rules if direction in r.empty_sections))
            view.rejected = self._rejected_in(ep.namespace)
            return Side(False, f"{what} is not enforced: {not_enforced(view, direction)}")
        policies = tuple(dict.fromkeys(r.policy for r in enforcing))
        by = tuple(dict.fromkeys(r.policy for r in enforcing if r.default_deny[direction]))
        if not by:
            return Side(
                False, f"{what} is enforced but default-allow: every enforcing rule sets enableDefaultDeny.{direction}: false", policies
            )
        return Side(True, f"{what} is in default deny (by {', '.join(by)})", by)

    def side(self, subject: int, direction: str, peer: int, port: int, protocol: str) -> Side:
        """One direction's verdict with its reason."""
        view = self._view(subject, direction, port, protocol)
        allowed, how, pr, _ = _judge(view, peer)
        what = f"of {self._eps[subject].display}"
        offline = [text for text, only in view.offline if only is None or peer in only]
        if how == "open":
            return Side(True, f"{what} not enforced: {not_enforced(view, direction)}")
        if how == "deny":
            return Side(False, f"{what} denied by {pr.ref}", (pr.policy,), not offline)
        if how == "allow" and pr is LOCALHOST:
            return Side(True, f"{what} allowed: Cilium always lets the local node reach its pods (allow-localhost)")
        if how == "allow":
            http, other, dns = _l7(view, peer)
            l7 = http is not None or other is not None
            note = " (through the L7 proxy: each request is judged by its rules)" if l7 else ""
            return Side(True, f"{what} allowed by {pr.ref}{note}", (pr.policy,), not offline and not l7, http, other, dns)
        exact = not offline
        policies = tuple(dict.fromkeys(r.policy for r in view.enforcing))
        if how == "default-allow":
            return Side(
                True, f"{what} default-allow: every enforcing rule sets enableDefaultDeny.{direction}: false", policies, exact
            )
        by = ", ".join(dict.fromkeys(r.policy for r in view.enforcing if r.default_deny[direction]))
        offline += [text for text, only in view.hints if peer in only]
        undecided = f" ({'; '.join(dict.fromkeys(offline))})" if offline else ""
        return Side(
            False,
            f"{what} is in default deny (by {by}) and no rule allows {self._eps[peer].display} on {port}/{protocol}{undecided}",
            policies,
            exact,
        )


@dataclass
class _View:
    """What applies to one pod identity, in one direction, on one port/protocol."""

    enforced: bool
    default_deny: bool
    enforcing: tuple[Rule, ...]
    empty_hint: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()
    deny: list[tuple[frozenset[int] | None, PeerRule, PortEntry | bool]] = field(default_factory=list)
    allow: list[tuple[frozenset[int] | None, PeerRule, PortEntry | bool]] = field(default_factory=list)
    offline: list[tuple[str, frozenset[int] | None]] = field(default_factory=list)
    """What the engine cannot decide offline, and the peers it concerns (None: every peer)."""
    hints: list[tuple[str, frozenset[int]]] = field(default_factory=list)
    """Why a rule exactly does not select a peer that it might seem to (an address under other DNS names)."""


def _judge(view: _View, peer: int) -> tuple[bool, str, PeerRule | None, PortEntry | bool | None]:
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


def _l7(view: _View, peer: int) -> tuple[tuple[Mapping[str, Any], ...] | None, str | None, tuple[Mapping[str, Any], ...] | None]:
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


def decide(
    manifests: Sequence[Mapping[str, Any]],
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str = "TCP",
    version: Version = DEFAULT_CILIUM,
) -> Verdict:
    """Whether ``src`` may connect to ``dst`` on ``port``/``protocol`` under ``manifests``."""
    return Engine(manifests, version, (src, dst)).decide(src, dst, port, protocol)
