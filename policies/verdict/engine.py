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
from typing import Any

from policies.agent_settings import AKS, AgentSettings
from policies.cilium_versions import DEFAULT_CILIUM, Version, features
from policies.verdict.compile import CCNP, CNP, WILDCARD, PeerRule, Rule, compile_policy, policy_ref
from policies.verdict import networkpolicy
from policies.verdict.explain import not_enforced
from policies.verdict.identity import ENDPOINT_ENTITIES, NODE_ENTITIES, NODE_LABELS, Endpoint, label_families
from policies.verdict.outside import cidr_cover, entity_selects, fqdn_cover
from policies.verdict.selectors import LABEL_SOURCES, PolicyRejected, Selector
from policies.verdict.view import Side, Verdict, View, judge, l7_rules, relevant_doubts

LOCALHOST = PeerRule("allow-localhost", "ingress", False, (), None, None)
"""Cilium's own ingress allow from the local node (``reserved:host``) to every pod it runs: kubelet's
probes depend on it. ``--allow-localhost`` resolves to ``always`` on Kubernetes, and AKS does not let
it change; a deny rule that selects the host still wins (pkg/policy/mapstate.go
``determineAllowLocalhostIngress``, inserted deny-preferred)."""


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
        settings: AgentSettings = AKS,
    ):
        self.version = version
        self.cilium = features(version)
        self.settings = settings
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
            nodes = next((pr for r in rules for section in r.sections.values() for pr in section if pr.nodes), None)
            if nodes is not None and not settings.node_selector_labels:
                self.rejected.append((policy_ref(m), f"{nodes.ref}: fromNodes/toNodes rules need enable-node-selector-labels, "
                                                     "which this cluster does not set (Cilium refuses the policy)"))
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
        self._unknown: dict[frozenset[str], set[int]] = {}  # label families a record lacked -> interned ids
        self._reset_caches()
        for ep in endpoints:
            self.intern(ep)

    def _reset_caches(self) -> None:
        self._selected: dict[Selector, frozenset[int]] = {}
        self._views: dict[tuple, View] = {}
        self._rules: dict[int, list[Rule]] = {}
        self._subjects: dict[int, frozenset[int]] = {}  # id(rule) -> the identities it selects
        self._outside: dict[int, tuple[frozenset[int], tuple[tuple[int, str, bool], ...]]] = {}  # id(peer rule) -> (ids, notes)
        self._undecided: dict[tuple[Selector, bool], tuple[tuple[frozenset[int], str], ...]] = {}

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
            unknown = frozenset(key for source, key, _ in identity if source == "unknown")
            if unknown:
                self._unknown.setdefault(unknown, set()).add(n)
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

    def _undecided_by(self, sel: Selector, node_labels: bool = False) -> tuple[tuple[frozenset[int], str], ...]:
        """(identities, label): those a selector might select but for labels their records do not carry:
        the selector without its requirements on those labels selects them. Node labels count only where
        node identities carry them (``node_labels``: a host policy's nodeSelector, or peers with
        enable-node-selector-labels)."""
        hit = self._undecided.get((sel, node_labels))
        if hit is None:
            out = []
            for families, ids in self._unknown.items():
                if not node_labels:
                    families = families - {NODE_LABELS}
                blind = [r for r in sel.requirements if label_families(r.source, r.key) & families]
                if blind:
                    relaxed = self._select(Selector(sel.requirements - frozenset(blind)))
                    if relaxed & ids:
                        out.append((frozenset(relaxed & ids), min(r.key for r in blind)))
            hit = self._undecided[(sel, node_labels)] = tuple(out)
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
                    cover = cidr_cover(pr.cidrs, ep)
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
        ids = set().union(*map(self._select, pr.selectors))
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
        reserved = self._eps[n].reserved
        if hit is None and reserved in NODE_ENTITIES:  # host policies, enforced only with the host firewall
            ccnps = self._by_ns.get(None, []) if self.settings.host_firewall else []
            hit = self._rules[n] = [r for r in ccnps if r.node_subject is not None and n in self._select(r.node_subject)]
        elif hit is None and reserved in ENDPOINT_ENTITIES:  # health, init, ingress: a CCNP's endpointSelector
            hit = self._rules[n] = [r for r in self._by_ns.get(None, []) if r.subject is not None and n in self._subject_set(r)]
        elif hit is None and reserved is not None:
            hit = self._rules[n] = []  # the world and the API server are not endpoints policies select
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

    def _view(self, n: int, direction: str, port: int, protocol: str) -> View:
        key = (n, direction, port, protocol)
        view = self._views.get(key)
        if view is None:
            view = self._build_view(n, direction, port, protocol)
            self._views[key] = view
        return view

    def _build_view(self, n: int, direction: str, port: int, protocol: str) -> View:
        rules = self._rules_for(n)
        enforcing = [r for r in rules if r.enforces[direction]]
        view = View(
            enforced=bool(enforcing),
            default_deny=any(r.default_deny[direction] for r in enforcing),
            enforcing=tuple(enforcing),
            empty_hint=tuple(r.policy for r in rules if direction in r.empty_sections),
            rejected=self._rejected_in(self._eps[n].namespace),
            offline=self._subject_unknowns(n, direction),
        )
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
                            view.offline.append((f"{pr.ref} names a port", None, pr))
                        continue
                    if pr.offline:
                        view.offline.append((f"{pr.ref} has {pr.offline} peers", None, pr))
                        continue
                    peers = None if pr.selectors == WILDCARD else frozenset().union(*map(self._select, pr.selectors))
                    if peers is not None and pr.nodes:
                        peers &= self._nodes()
                    for sel in (() if peers is None else pr.selectors + (required[kind] if pr.from_endpoints else ())):
                        for ids, label in self._undecided_by(sel, self.settings.node_selector_labels):
                            view.offline.append((f"{pr.ref} selects peers on {label}, which their records do not carry", ids, pr))
                    if peers is not None and pr.from_endpoints and required[kind]:
                        for requirement in required[kind]:  # appended to each endpoint selector: a conjunction
                            peers &= self._select(requirement)
                    if peers is not None and (pr.entities or pr.cidrs or pr.fqdns):
                        outside, notes = self._outside_peers(pr)
                        peers |= outside
                        for p, why, exact in notes:
                            text = f"{pr.ref}: {why}" if pr.fqdns else f"{pr.ref} {why}"
                            if exact:
                                view.hints.append((text, frozenset({p})))
                            else:
                                view.offline.append((text, frozenset({p}), pr))
                    if pr.authenticated:  # required of every peer this rule matches, whichever rule allows it
                        view.offline.append((f"{pr.ref} requires mutual authentication", peers, None))
                    target.append((peers, pr, entry))
        return view

    def _nodes(self) -> frozenset[int]:
        return frozenset(self._keys.get(("reserved", "host"), set()) | self._keys.get(("reserved", "remote-node"), set()))

    def _subject_unknowns(self, n: int, direction: str) -> list[tuple[str, None, None]]:
        """Why the rules selecting identity ``n`` are not known: labels its record lacks, or host policies
        where the host firewall is off."""
        ep, out = self._eps[n], []
        for r in self._by_ns.get(None, []) if ep.reserved in NODE_ENTITIES else ():
            if r.node_subject is None or not r.enforces[direction]:
                continue
            doubts = [label for ids, label in self._undecided_by(r.node_subject, True) if n in ids]
            if not doubts and n not in self._select(r.node_subject):
                continue  # a host policy for other nodes
            if not self.settings.host_firewall:
                out.append((f"{r.policy} is a host policy (nodeSelector) that may select {ep.display}; Cilium enforces host "
                            "policies only with its host firewall (enable-host-firewall), which AKS does not enable", None, None))
            else:
                out += [(f"{r.policy} selects nodes on {label}, which the record of {ep.display} does not carry", None, None)
                        for label in doubts]
        candidates = self._by_ns.get(ep.namespace, []) + self._by_ns.get(None, []) if ep.unknown_labels else []
        for r in candidates:
            if r.subject is not None and r.enforces[direction]:
                out += [(f"{r.policy} selects on {label}, which the record of {ep.display} does not carry", None, None)
                        for ids, label in self._undecided_by(r.subject) if n in ids]
        return out

    # -- verdicts -----------------------------------------------------------------------------

    def allowed(self, src: int, dst: int, port: int, protocol: str) -> bool:
        """The fast path: interned identities in, a bool out (the same ``judge`` as ``decide``, without the doubts)."""
        return (
            judge(self._view(src, "egress", port, protocol), dst)[0]
            and judge(self._view(dst, "ingress", port, protocol), src)[0]
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
            empty = tuple(r.policy for r in rules if direction in r.empty_sections)
            return Side(False, f"{what} is not enforced: {not_enforced(direction, empty, self._rejected_in(ep.namespace))}")
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
        allowed, how, pr, _ = judge(view, peer)
        what = f"of {self._eps[subject].display}"
        offline = relevant_doubts(view, peer, how, pr)
        undecided = f" (not decided: {'; '.join(dict.fromkeys(offline))})" if offline else ""
        if how == "open":
            return Side(True, f"{what} not enforced: {not_enforced(direction, view.empty_hint, view.rejected)}{undecided}", exact=not offline)
        if how == "deny":
            return Side(False, f"{what} denied by {pr.ref}{undecided}", (pr.policy,), not offline)
        if how == "allow" and pr is LOCALHOST and not offline:
            return Side(True, f"{what} allowed: Cilium always lets the local node reach its pods (allow-localhost)")
        if how == "allow":
            http, other, dns = l7_rules(view, peer)
            l7 = http is not None or other is not None
            note = " (through the L7 proxy: each request is judged by its rules)" if l7 else ""
            note += undecided
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


def decide(
    manifests: Sequence[Mapping[str, Any]],
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str = "TCP",
    version: Version = DEFAULT_CILIUM,
    settings: AgentSettings = AKS,
) -> Verdict:
    """Whether ``src`` may connect to ``dst`` on ``port``/``protocol`` under ``manifests``."""
    return Engine(manifests, version, (src, dst), settings).decide(src, dst, port, protocol)
