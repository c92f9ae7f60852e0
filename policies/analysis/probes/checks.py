"""Which checks prove the policies on a live cluster, and what each must observe.

From the same config and rendered policies as everything else, this builds one check per
declared flow (it must connect) and, for every probed target port, deny counterparts that
must be dropped:

- an unlabelled pod in each namespace a flow to that port comes from, and in another
  managed namespace: with egress default deny, their own egress stops them first, so they
  prove the sources' side;
- the ingress prober (``policies.analysis.probes.prober``): a pod in the stack's probe namespace whose
  own egress allows the target, so the target's ingress policy is its only obstacle.

Each check says which side it proves (``proves``). Its expectation is the verdict engine's, so
the live cluster is checked against the same offline proof ``plan`` prints. The probes open
nothing for others: the strangers' only traffic is DNS and the probed connection under the
borrowed identity; the prober's egress allow lives in a namespace only the stack deploys to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from policies.cilium_versions import features
from policies.config import StackConfig
from policies.memo import Memo
from policies.analysis.probes.prober import PROBER, PROBER_LABELS, probed_flows, prober_namespace, prober_targets
from policies.render import Rendered, pod_labels, selector
from policies.verdict import STRANGER, Endpoint, Engine, Verdict, compile_policy, stranger, stranger_name


@dataclass(frozen=True)
class Probe:
    """One check: a connection a source identity must make, or must not."""

    who: str
    """The source identity: a workload's name, or ``stranger@<namespace>``."""
    digest: str
    """A hash of what the check's verdict depends on (the policies selecting either end, its target)."""
    policies: tuple[tuple[str, str], ...]
    """(namespace, name) of the policies that select either end: the Job waits for them."""
    namespace: str
    flow: str
    """``frontend -> backend:80/TCP`` or ``stranger@frontend -> backend:80/TCP``."""
    labels: dict[str, str]
    """The pod labels of the identity the probe borrows (none for a stranger)."""
    target: str | None
    """The target workload; None for an address outside the cluster."""
    host: str
    port: int
    """The port the probe dials (the target's Service port; its flow names the port policies allow)."""
    expect: Literal["allow", "deny"]
    reason: str
    """The verdict engine's reason for the expectation."""
    declared: bool
    """True for a declared flow, False for a deny counterpart."""
    proves: str = ""
    """Which side's policy decides what this check observes: ``both sides`` (a declared flow),
    ``egress of <namespace>`` or ``ingress of <target>``."""


@dataclass(frozen=True)
class ProbeGroup:
    """Every check of one source identity, run by one Job (one pod with that identity)."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    """The pod labels the Job borrows (none for a stranger)."""
    who: str
    stem: str
    """The Job's name without its digest: stable across changes."""
    digest: str
    """A hash of its checks' verdict digests: the Job is replaced when one of them changes."""
    probes: tuple[Probe, ...]

    @property
    def name(self) -> str:
        """The Job's name: its stem and digest."""
        return self.named(self.digest)

    def named(self, suffix: str) -> str:
        """The Job's name with another suffix (``verify`` names its Jobs by run id)."""
        return f"{self.stem}-{suffix}"

    @property
    def resource_name(self) -> str:
        """The Pulumi resource name: stable across digests, unique per namespace."""
        return f"{self.namespace}-{self.stem}"

    @property
    def policies(self) -> tuple[tuple[str, str], ...]:
        """(namespace, name) of every policy one of its checks depends on."""
        return tuple(dict.fromkeys(k for p in self.probes for k in p.policies))

    @property
    def targets(self) -> tuple[str, ...]:
        """The workloads its checks reach."""
        return tuple(dict.fromkeys(p.target for p in self.probes if p.target is not None))


@dataclass(frozen=True)
class ProbeSet:
    probes: tuple[Probe, ...]
    skipped: tuple[str, ...]
    """Flows that cannot be probed, and why (UDP, SCTP, outside names)."""

    @property
    def groups(self) -> tuple[ProbeGroup, ...]:
        """The checks grouped by source identity: one Job each."""
        return group(self.probes)


def group(checks: tuple[Probe, ...]) -> tuple[ProbeGroup, ...]:
    by_identity: dict[tuple, list[Probe]] = {}
    for p in checks:
        by_identity.setdefault((p.namespace, tuple(sorted(p.labels.items())), p.who), []).append(p)
    out = []
    for (namespace, labels, who), members in sorted(by_identity.items()):
        members = sorted(members, key=lambda p: p.flow)
        digest = hashlib.sha256("".join(p.digest for p in members).encode()).hexdigest()[:DIGEST_LENGTH]
        out.append(ProbeGroup(namespace, labels, who, job_stem(namespace, who, labels), digest, tuple(members)))
    return tuple(out)


class Dependencies:
    """Which rendered objects a check's verdict depends on: the policies whose subject selects
    either end (decided with Cilium's own selector semantics), and the target workload."""

    def __init__(self, rendered: Rendered, version, extra: tuple = ()):
        self.rendered = rendered
        self.cilium = features(version)
        namespaces = (*rendered.namespaces, *extra)
        self._rules = {
            (n.name, p["metadata"]["name"]): (p, compile_policy(p, self.cilium)) for n in namespaces for p in n.policies
        }
        self._by_namespace: dict[str, list[tuple[str, str]]] = {}
        for key in self._rules:
            self._by_namespace.setdefault(key[0], []).append(key)
        self._canonical: dict[tuple[str, str], str] = {}  # each policy's JSON, written once
        self._workloads = {w.name: w for n in rendered.namespaces for w in n.workloads}

    def selecting(self, ep: Endpoint) -> list[tuple[str, str]]:
        """(namespace, name) of every rendered policy whose subject selects ``ep``."""
        identity = ep.identity()
        return [
            key
            for key in self._by_namespace.get(ep.namespace, ())
            if any(r.subject is not None and r.subject.matches(identity) for r in self._rules[key][1])
        ]

    def _json(self, key: tuple[str, str]) -> str:
        hit = self._canonical.get(key)
        if hit is None:
            hit = self._canonical[key] = json.dumps(self._rules[key][0], sort_keys=True)
        return hit

    def digest(self, policies: list[tuple[str, str]], target: str | None, check: str) -> str:
        """A hash of those objects and the check itself: it changes exactly when the verdict's inputs do."""
        parts = [json.dumps(check), *(self._json(k) for k in sorted(set(policies)))]
        if target is not None:
            w = self._workloads.get(target)
            parts.append(json.dumps([w.deployment, w.service] if w else target, sort_keys=True))  # deployed elsewhere: its name
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:DIGEST_LENGTH]


PROBER_SOURCE = "@prober"
"""How ``probes`` marks the ingress prober among the sources (no workload name has an ``@``)."""
DIGEST_LENGTH = 8
OUTSIDE = "outside"
"""How probes and reports name the world outside the cluster."""
TAG_LENGTH = 6


def job_stem(namespace: str, who: str, labels: tuple[tuple[str, str], ...]) -> str:
    """A Job name without its 8-character suffix; with it, a DNS-1123 label of at most 63 characters
    (Job names become pod label values).

    A readable part (``zt-probe-frontend``, ``@`` as ``-``) and a tag hashed from the identity
    (namespace, who, labels): readable parts can coincide (the stranger of ``frontend`` and a
    workload named ``stranger-frontend``), the tags do not.
    """
    readable = f"zt-probe-{who}".lower().replace("@", "-")
    tag = hashlib.sha256(f"{namespace}/{who}/{labels}".encode()).hexdigest()[:TAG_LENGTH]
    readable = readable[: 63 - 1 - DIGEST_LENGTH - 1 - TAG_LENGTH].rstrip("-")
    return f"{readable}-{tag}"


def proves(v: Verdict, declared: bool, namespace: str, target: str) -> str:
    """Which side's policy a check proves: both for a declared flow; for a deny, the side that stops it
    first (the source's egress when it denies, else the target's ingress)."""
    if declared:
        return "both sides"
    return f"egress of {namespace}" if not v.egress.allowed else f"ingress of {target}"


_PROBE_SETS: Memo[ProbeSet] = Memo(16)
"""Probe sets computed before, by what they depend on (the config and the rendered objects): the program
and the plan that runs it compute the same one."""


def probes(cfg: StackConfig, rendered: Rendered) -> ProbeSet:
    """Every check of the stack (see the module's docstring), computed once per config and rendering."""
    key = hashlib.sha256(json.dumps([cfg.model_dump(mode="json", by_alias=True), rendered.all()], sort_keys=True).encode()).hexdigest()
    return _PROBE_SETS.get(key, lambda: _probes(cfg, rendered))


def _probes(cfg: StackConfig, rendered: Rendered) -> ProbeSet:
    # (source, namespace, labels, target, port policies allow, port clients dial, declared)
    wanted: list[tuple[str, str, dict[str, str], str, int, int, bool]] = []
    flows, skipped = probed_flows(cfg)
    targets: dict[tuple[str, int, int], set[str]] = {}  # (target workload, ports) -> source namespaces of flows to it
    for f in flows:
        src, port, dial = cfg.workloads[f.source], cfg.flow_port(f), cfg.flow_service_port(f)
        targets.setdefault((str(f.to), port, dial), set()).add(src.namespace)
        wanted.append((f.source, src.namespace, selector(cfg, f.source), str(f.to), port, dial, True))
    managed = cfg.namespaces
    for (target, port, dial), source_namespaces in sorted(targets.items()):
        target_ns = cfg.workloads[target].namespace
        strangers = set(source_namespaces)
        others = [n for n in managed if n not in source_namespaces and n != target_ns]
        others = others or [n for n in managed if n not in source_namespaces]
        if others:
            strangers.add(others[0])
        wanted += [(STRANGER, ns, {}, target, port, dial, False) for ns in sorted(strangers)]
    prober = prober_namespace(cfg)
    if prober is not None:
        wanted += [(PROBER_SOURCE, prober.name, dict(PROBER_LABELS), t, port, dial, False) for t, port, dial in prober_targets(cfg)]

    shaped = [_shape(cfg, *w) for w in wanted]
    extra = (prober,) if prober is not None else ()
    # Every identity up front: the engine then resolves each selector once.
    policies = rendered.policies() + [p for n in extra for p in n.policies]
    engine = Engine(policies, cfg.cilium_version, [e for s in shaped for e in (s[1], s[2])])
    deps = Dependencies(rendered, cfg.cilium_version, extra)
    out = []
    staged = set(cfg.staged_namespaces)
    for (who, src, dst, flow, port), (_, namespace, labels, target, _port, dial, declared) in zip(shaped, wanted):
        t = cfg.workloads[target]
        if not declared and staged & {namespace, t.namespace}:
            skipped.append(f"{flow}: not probed, {STAGED_NOTE.format(', '.join(sorted(staged & {namespace, t.namespace})))}")
            continue
        verdict = engine.decide(src, dst, port, "TCP")
        selecting = deps.selecting(src) + deps.selecting(dst)
        out.append(
            Probe(
                who=who,
                digest=deps.digest(selecting, target, flow),
                policies=tuple(dict.fromkeys(selecting)),
                namespace=namespace,
                flow=flow,
                labels=dict(labels),
                target=target,
                host=f"{target if t.deployed else t.service}.{dst.namespace}.svc",
                port=dial,
                expect="allow" if verdict.allowed else "deny",
                reason=verdict.reason,
                declared=declared,
                proves=proves(verdict, declared, namespace, target),
            )
        )
    out += outside_probes(cfg, deps, engine, skipped)
    return ProbeSet(tuple(out), tuple(skipped))


STAGED_NOTE = "{} is staged: default deny is off there, so a probe that must be refused proves nothing until it is enforced"


def outside_probes(cfg: StackConfig, deps: Dependencies, engine: Engine, skipped: list[str]) -> list[Probe]:
    """One probe per managed namespace: its stranger connects to an address outside the cluster.

    With egress default deny the connection must time out. An address the cluster cannot reach
    anyway (a firewall that drops it) also times out: the probe then proves nothing, so pick an
    address the cluster's own egress allows (``zeroTrust.outsideProbeAddress``).
    """
    zt = cfg.zero_trust
    if zt.outside_probe_address is None:
        return []
    if zt.default_deny != "ingress-and-egress":
        skipped.append("outside the cluster: not probed, egress is not in default deny (zeroTrust.defaultDeny: ingress)")
        return []
    out = []
    for ns in cfg.namespaces:
        who = stranger_name(ns)
        if cfg.enforcement(ns) == "staged":
            skipped.append(f"{who} -> {OUTSIDE} {zt.outside_probe_address}:{zt.outside_probe_port}/TCP: not probed, {STAGED_NOTE.format(ns)}")
            continue
        side = engine.enforcement(stranger(ns), "egress")
        selecting = deps.selecting(stranger(ns))
        check = f"{who} -> {OUTSIDE} {zt.outside_probe_address}:{zt.outside_probe_port}"
        out.append(
            Probe(
                who=who,
                digest=deps.digest(selecting, None, check),
                policies=tuple(selecting),
                namespace=ns,
                flow=f"{who} -> {OUTSIDE} {zt.outside_probe_address}:{zt.outside_probe_port}/TCP",
                labels={},
                target=None,
                host=zt.outside_probe_address,
                port=zt.outside_probe_port,
                expect="deny" if side.allowed else "allow",
                reason=side.reason,
                declared=False,
                proves=f"egress of {ns}",
            )
        )
    return out


def _shape(cfg, source, namespace, labels, target, port, dial, declared) -> tuple[str, Endpoint, Endpoint, str, int]:
    """(who, source endpoint, target endpoint, flow text, port) of one probe."""
    t = cfg.workloads[target]
    if source == PROBER_SOURCE:
        who = f"{PROBER}@{namespace}"
    else:
        who = source if source != STRANGER else stranger_name(namespace)
    # The probe's own label is left out: rendered policies never select on it, and
    # without it probes that borrow one identity share one verdict.
    src = Endpoint(namespace, dict(labels), name=who) if source != STRANGER else stranger(namespace)
    dst = Endpoint(t.namespace, pod_labels(target, t), name=target)
    return who, src, dst, f"{who} -> {target}:{port}/TCP", port


