"""Connectivity probes: the live-cluster proof of what the policies enforce.

From the same config and rendered policies as everything else, this builds
one probe per declared flow (it must connect) and, for every probed target
port, deny counterparts that must be dropped:

- an unlabelled pod in each namespace a flow to that port comes from, and
- an unlabelled pod in another managed namespace.

Each probe is a Kubernetes Job running ``curl`` in the source namespace with
the labels of the identity it borrows (the source workload's selector labels,
or none). Its expectation is the verdict engine's, so the live cluster is
checked against the same offline proof ``plan`` prints.

Cilium drops silently, so a drop is a *connect timeout*. The probe tells it
apart from a DNS failure or a refused connection (neither proves a policy
drop); ``OUTCOMES`` is that decision table and ``probe_script`` is generated
from it. Policies apply asynchronously, so a probe retries until it observes
what it expects or runs out of attempts.

The probes open nothing for themselves: their only traffic is DNS (allowed for
every pod by the namespace's default-deny policy) and the probed connection, judged under the
borrowed identity. They never become Service endpoints (a readiness probe that
always fails) and get no service-account token.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from typing import Any, Literal

from policies.config import PROJECT, StackConfig
from policies.render import MANAGED_BY, ROLE_LABEL, Rendered, describe, pod_labels, selector
from policies.cilium_versions import features
from policies.verdict import STRANGER, Endpoint, Engine, compile_policy, stranger, stranger_name

PROBE_LABEL = f"{PROJECT}/probe"
PROBE_ANNOTATION = f"{PROJECT}/probe"
PROBE_UID = 100  # curl_user in curlimages/curl; numeric so runAsNonRoot can be verified

CONNECT_TIMEOUT = 5
MAX_TIME = 10
ATTEMPTS = 6
INTERVAL = 5
DEADLINE = 300

Observed = Literal["connected", "timeout", "dns-failure", "refused", "error"]

# curl exit code -> what it tells about the connection (curl's libcurl-errors list).
OUTCOMES: dict[int, Observed] = {
    0: "connected",  # a response
    52: "connected",  # CURLE_GOT_NOTHING: the server accepted, then closed
    56: "connected",  # CURLE_RECV_ERROR: accepted, then reset
    8: "connected",  # CURLE_WEIRD_SERVER_REPLY: a non-HTTP server answered
    6: "dns-failure",  # CURLE_COULDNT_RESOLVE_HOST
    7: "refused",  # CURLE_COULDNT_CONNECT: refused, or rejected (a Service without endpoints)
    28: "timeout",  # CURLE_OPERATION_TIMEDOUT: a drop, if it never connected
}
EXPECTED_OBSERVATION: dict[str, Observed] = {"allow": "connected", "deny": "timeout"}


def outcome(curl_exit: int, time_connect: str) -> Observed:
    """What one curl run observed. A timeout after connecting is a connection, not a drop."""
    observed = OUTCOMES.get(curl_exit, "error")
    if observed == "timeout" and _connected(time_connect):
        return "connected"
    return observed


def _connected(time_connect: str) -> bool:
    try:
        return float(time_connect.replace(",", ".")) > 0
    except ValueError:
        return False


def agrees(expect: str, observed: str) -> bool:
    return EXPECTED_OBSERVATION[expect] == observed


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

    def __init__(self, rendered: Rendered, version):
        self.rendered = rendered
        self.cilium = features(version)
        self._rules = {
            (n.name, p["metadata"]["name"]): (p, compile_policy(p, self.cilium)) for n in rendered.namespaces for p in n.policies
        }
        self._workloads = {w.name: w for n in rendered.namespaces for w in n.workloads}

    def selecting(self, ep: Endpoint) -> list[tuple[str, str]]:
        """(namespace, name) of every rendered policy whose subject selects ``ep``."""
        identity = ep.identity()
        return [
            key
            for key, (_, rules) in self._rules.items()
            if key[0] == ep.namespace and any(r.subject is not None and r.subject.matches(identity) for r in rules)
        ]

    def digest(self, policies: list[tuple[str, str]], target: str | None, check: str) -> str:
        """A hash of those objects and the check itself: it changes exactly when the verdict's inputs do."""
        parts: list = [check, [self._rules[k][0] for k in sorted(set(policies))]]
        if target is not None:
            w = self._workloads.get(target)
            parts.append([w.deployment, w.service] if w else target)  # deployed elsewhere: only its name is ours
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:DIGEST_LENGTH]


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


def probes(cfg: StackConfig, rendered: Rendered) -> ProbeSet:
    # (source, namespace, labels, target, port policies allow, port clients dial, declared)
    wanted: list[tuple[str, str, dict[str, str], str, int, int, bool]] = []
    skipped: list[str] = []
    targets: dict[tuple[str, int, int], set[str]] = {}  # (target workload, ports) -> source namespaces of flows to it
    for f in cfg.flows:
        if f.source in cfg.peers or f.to in cfg.peers:
            skipped.append(f"{describe(cfg, f)}: flows with a peer are not probed (a peer is not the stack's to run a pod as)")
            continue
        if not f.to:
            skipped.append(f"{describe(cfg, f)}: outside names are not probed (their reachability is not ours to prove)")
            continue
        proto = cfg.flow_protocol(f)
        if proto != "TCP":
            skipped.append(f"{describe(cfg, f)}: {proto} is not probed (a drop and a silent server look the same)")
            continue
        target = cfg.workloads[f.to]
        if not target.deployed and target.service is None:
            skipped.append(f"{describe(cfg, f)}: {f.to} is deployed elsewhere and names no Service to dial (workloads.{f.to}.service)")
            continue
        src, port, dial = cfg.workloads[f.source], cfg.flow_port(f), cfg.flow_service_port(f)
        targets.setdefault((f.to, port, dial), set()).add(src.namespace)
        wanted.append((f.source, src.namespace, selector(cfg, f.source), f.to, port, dial, True))
    managed = cfg.namespaces
    for (target, port, dial), source_namespaces in sorted(targets.items()):
        target_ns = cfg.workloads[target].namespace
        strangers = set(source_namespaces)
        others = [n for n in managed if n not in source_namespaces and n != target_ns]
        others = others or [n for n in managed if n not in source_namespaces]
        if others:
            strangers.add(others[0])
        wanted += [(STRANGER, ns, {}, target, port, dial, False) for ns in sorted(strangers)]

    shaped = [_shape(cfg, *w) for w in wanted]
    # Every identity up front: the engine then resolves each selector once.
    engine = Engine(rendered.policies(), cfg.cilium_version, [e for s in shaped for e in (s[1], s[2])])
    deps = Dependencies(rendered, cfg.cilium_version)
    out = []
    for (who, src, dst, flow, port), (_, namespace, labels, target, _port, dial, declared) in zip(shaped, wanted):
        verdict = engine.decide(src, dst, port, "TCP")
        t = cfg.workloads[target]
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
            )
        )
    out += outside_probes(cfg, deps, engine, skipped)
    return ProbeSet(tuple(out), tuple(skipped))


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
            )
        )
    return out


def _shape(cfg, source, namespace, labels, target, port, dial, declared) -> tuple[str, Endpoint, Endpoint, str, int]:
    """(who, source endpoint, target endpoint, flow text, port) of one probe."""
    t = cfg.workloads[target]
    who = source if source != STRANGER else stranger_name(namespace)
    # The probe's own label is left out: rendered policies never select on it, and
    # without it probes that borrow one identity share one verdict.
    src = Endpoint(namespace, dict(labels), name=who) if source != STRANGER else stranger(namespace)
    dst = Endpoint(t.namespace, pod_labels(target, t), name=target)
    return who, src, dst, f"{who} -> {target}:{port}/TCP", port


def probe_script() -> str:
    """The probe's shell program (POSIX sh + curl), generated from ``OUTCOMES``.

    ``CHECKS`` holds one check per line, ``flow|expect|host|port``; the checks run in parallel
    (each in its own subshell), each prints one result line, and the Job fails when any check
    observed something other than its expectation. No file is written (the root file system
    is read-only).
    """
    cases = "\n".join(
        f"      {code}) observed={obs} ;;" for code, obs in sorted(OUTCOMES.items()) if obs != "timeout"
    )
    expected = " ".join(f"{k}={v}" for k, v in EXPECTED_OBSERVATION.items())
    return f"""set -u
set -f
# expectations: {expected}
check() {{
  flow=$1 expect=$2 host=$3 port=$4
  case "$expect" in allow) want=connected ;; deny) want=timeout ;; *) echo "bad expectation $expect"; return 2 ;; esac
  start=$(date +%s)
  n=0
  while :; do
    n=$((n + 1))
    tc=$(curl -s -o /dev/null -w '%{{time_connect}}' --connect-timeout "$CONNECT_TIMEOUT" --max-time "$MAX_TIME" "http://$host:$port/")
    code=$?
    case "$code" in
{cases}
      28) case "$tc" in ""|0|0.000000|0,000000) observed=timeout ;; *) observed=connected ;; esac ;;
      *) observed=error ;;
    esac
    if [ "$observed" = "$want" ] || [ "$n" -ge "$ATTEMPTS" ]; then break; fi
    sleep "$INTERVAL"
  done
  secs=$(( $(date +%s) - start ))
  echo "zero-trust-aks probe: flow=\\"$flow\\" expect=$expect observed=$observed curl_exit=$code attempts=$n seconds=$secs"
  [ "$observed" = "$want" ]
}}
newline='
'
pids=""
IFS=$newline
for line in $CHECKS; do
  IFS='|'
  set -- $line
  IFS=$newline
  [ "$#" -eq 4 ] || continue
  check "$1" "$2" "$3" "$4" &
  pids="$pids $!"
done
IFS=' '
status=0
for pid in $pids; do wait "$pid" || status=1; done
exit "$status"
"""


def checks_env(g: ProbeGroup) -> str:
    """The group's checks, one per line: ``flow|expect|host|port``."""
    return "\n".join(f"{p.flow}|{p.expect}|{p.host}|{p.port}" for p in g.probes)


def job(g: ProbeGroup, image: str) -> dict[str, Any]:
    """The Job of one source identity: one pod with its labels, running all its checks."""
    env = {
        "CHECKS": checks_env(g),
        "CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
        "MAX_TIME": str(MAX_TIME),
        "ATTEMPTS": str(ATTEMPTS),
        "INTERVAL": str(INTERVAL),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": g.name,
            "namespace": g.namespace,
            "labels": {**MANAGED_BY, ROLE_LABEL: "probe"},
            "annotations": {PROBE_ANNOTATION: f"{len(g.probes)} checks as {g.who}"},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": DEADLINE,
            "template": {
                "metadata": {"labels": {**dict(g.labels), PROBE_LABEL: g.name}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": PROBE_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "command": ["/bin/sh", "-c", probe_script()],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"cpu": "100m", "memory": "32Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                            },
                            # Never Ready, so a probe borrowing a Service's labels never receives its traffic.
                            "readinessProbe": {"exec": {"command": ["/bin/false"]}, "periodSeconds": 3600},
                        }
                    ],
                },
            },
        },
    }


def parse_results(log: str) -> dict[str, dict[str, str]]:
    """Every result line of a probe Job's log, by flow (``observed``, ``seconds``...)."""
    out = {}
    for line in log.splitlines():
        if line.startswith("zero-trust-aks probe: "):
            fields = {k: v.strip('"') for k, v in (w.split("=", 1) for w in shlex.split(line.split(": ", 1)[1]))}
            out[fields.get("flow", "")] = fields
    return out
