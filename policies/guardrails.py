"""Guardrails: the rules every stack must keep, as pure functions over plain resources.

A resource here is what Pulumi's policy engine sees: a type token and its
inputs with camelCase keys (``azure-native:containerservice:ManagedCluster``
with ``networkProfile.networkDataplane``; ``kubernetes:cilium.io/v2:
CiliumNetworkPolicy`` with ``metadata``/``spec``). The same rules run

- in the CrossGuard pack (``guardrails/``) under ``pulumi preview``/``up``, and
- in ``python -m zerotrust plan`` over the mock engine's registrations,

so a reviewer without Azure sees the verdicts CI will enforce. Rules hold
for any program, including hand-written policies: nothing here relies on
the names ``render`` gives its objects.

Each violation is one line naming the resource and the fix. A Kubernetes
object may opt out of an *exceptable* rule with the annotation
``zero-trust-aks/exception: "<reason>"``; the reason is shown wherever the
exception is used, and an annotation without a reason does not count.

Enforcement levels follow CrossGuard's policy-pack config format
(``{"all": {"enforcementLevel": ...}, "<rule>": {"enforcementLevel": ...}}``),
read by ``resolve_levels``; ``guardrails/config/<stack>.json`` holds each
stack's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from policies.config import ACNS_POLICY_LEVELS, DEFAULT_CILIUM_VERSION, PROJECT, cilium_version_for
from policies.matrix import POD_TEMPLATE_KINDS, pod_template
from policies.verdict import CCNP, CNP, NS_KEY, NS_LABELS_PREFIX, Endpoint, Engine, PolicyRejected, peer_selector

EXCEPTION_ANNOTATION = f"{PROJECT}/exception"
MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
LEVELS = ("mandatory", "advisory", "disabled")
Level = Literal["mandatory", "advisory", "disabled"]

BROAD_ENTITIES = {
    "all": "every endpoint, in the cluster and outside it",
    "world": "the whole internet",
    "world-ipv4": "the whole IPv4 internet",
    "world-ipv6": "the whole IPv6 internet",
    "cluster": "every pod and node of the cluster",
}
L7_RULES = ("http", "kafka", "l7")  # need ACNS `L7`
FQDN_RULES = ("dns",)  # need ACNS `FQDN` (or `L7`, its superset)


# -- resources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """A resource as the policy engine sees it: type token, name, inputs, URN."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:") and not self.type.startswith("kubernetes:helm")

    @property
    def kind(self) -> str:
        return str(self.props.get("kind") or self.type.rsplit(":", 1)[-1]) if self.is_kubernetes else ""

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.props.get("metadata") or {}

    @property
    def object_name(self) -> str:
        return str(self.metadata.get("name") or self.name)

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")

    @property
    def display(self) -> str:
        """``CiliumNetworkPolicy backend/zt-default-deny``, ``ManagedCluster aks-zero-trust``."""
        if not self.is_kubernetes:
            return f"{self.type.rsplit(':', 1)[-1]} {self.props.get('resourceName') or self.name}"
        if self.kind in ("Namespace", CCNP):
            return f"{self.kind} {self.object_name}"
        return f"{self.kind} {self.namespace}/{self.object_name}"

    def exception(self) -> str | None:
        """The reason of an exception annotation, if any ('' when the annotation has no reason)."""
        if not self.is_kubernetes:
            return None
        value = (self.metadata.get("annotations") or {}).get(EXCEPTION_ANNOTATION)
        return None if value is None else str(value).strip()


@dataclass(frozen=True)
class Violation:
    rule: str
    level: str
    resource: str
    message: str
    urn: str = ""


@dataclass(frozen=True)
class Excepted:
    """A violation waived by an exception annotation, kept so reports can show it."""

    rule: str
    resource: str
    reason: str


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    why: str
    level: Level
    scope: Literal["resource", "stack"]
    check: Callable[..., Iterable[tuple[Resource, str]]]
    """resource scope: ``check(resource)``; stack scope: ``check(resources)``; yields (resource, message)."""
    types: tuple[str, ...] = ()
    """Resource scope: the Kubernetes kinds or Pulumi type tokens the rule looks at."""
    exceptable: bool = False

    def applies_to(self, r: Resource) -> bool:
        return r.type in self.types or (r.is_kubernetes and r.kind in self.types)


# -- helpers ---------------------------------------------------------------------------------


def _policies(resources: Iterable[Resource]) -> list[Resource]:
    return [r for r in resources if r.is_kubernetes and r.kind in (CNP, CCNP)]


def _specs(policy: Resource) -> list[tuple[str, Mapping[str, Any]]]:
    out = []
    if isinstance(policy.props.get("spec"), Mapping):
        out.append(("spec", policy.props["spec"]))
    out += [(f"specs[{i}]", s) for i, s in enumerate(policy.props.get("specs") or []) if isinstance(s, Mapping)]
    return out


def _entries(policy: Resource, sections: Sequence[str]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(where, section, entry) for every peer rule of the given sections."""
    for where, spec in _specs(policy):
        for section in sections:
            for i, entry in enumerate(spec.get(section) or []):
                if isinstance(entry, Mapping):
                    yield f"{where}.{section}[{i}]", section, entry


def _clusters(resources: Iterable[Resource]) -> list[Resource]:
    return [r for r in resources if r.type == MANAGED_CLUSTER]


def _cilium_version(resources: Sequence[Resource]) -> tuple[int, int]:
    clusters = _clusters(resources)
    if not clusters:
        return DEFAULT_CILIUM_VERSION
    return cilium_version_for(clusters[0].props.get("kubernetesVersion"))


def _acns_level(cluster: Resource) -> str:
    """The cluster's Advanced Container Networking security level: None, FQDN or L7."""
    adv = (cluster.props.get("networkProfile") or {}).get("advancedNetworking") or {}
    security = adv.get("security") or {}
    if adv.get("enabled") is False or not security.get("enabled"):
        return "None"
    return str(security.get("advancedNetworkPolicies") or "FQDN")  # ARM's default when enabled


def pod_spec(r: Resource) -> Mapping[str, Any] | None:
    template = pod_template(r.props)
    return None if template is None else template.get("spec") or {}


def pod_labels(r: Resource) -> Mapping[str, str]:
    return ((pod_template(r.props) or {}).get("metadata") or {}).get("labels") or {}


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, Mapping)]


# -- AKS rules -------------------------------------------------------------------------------


def check_cilium_dataplane(r: Resource) -> Iterator[tuple[Resource, str]]:
    network = r.props.get("networkProfile") or {}
    for key in ("networkPlugin", "networkDataplane", "networkPolicy"):
        want = "azure" if key == "networkPlugin" else "cilium"
        if network.get(key) != want:
            yield r, (
                f"{r.display}: networkProfile.{key} is {network.get(key)!r}; set it to {want!r} "
                "(Azure CNI powered by Cilium is what enforces the CiliumNetworkPolicies)"
            )


def check_entra_id_only(r: Resource) -> Iterator[tuple[Resource, str]]:
    aad = r.props.get("aadProfile") or {}
    if not r.props.get("disableLocalAccounts"):
        yield r, (
            f"{r.display}: local accounts are enabled (a static admin kubeconfig bypasses Entra ID); "
            "set disableLocalAccounts: true (zero-trust-aks:cluster.disableLocalAccounts)"
        )
    if not aad:
        yield r, f"{r.display}: no Entra ID integration; set aadProfile (zero-trust-aks:cluster.entraId)"
    elif not aad.get("enableAzureRBAC"):
        yield r, (
            f"{r.display}: Kubernetes authorization is not Azure RBAC; set aadProfile.enableAzureRBAC: true "
            "(zero-trust-aks:cluster.entraId.azureRbac)"
        )


def check_api_server_restricted(r: Resource) -> Iterator[tuple[Resource, str]]:
    access = r.props.get("apiServerAccessProfile") or {}
    if access.get("enablePrivateCluster"):
        return
    ranges = [str(x) for x in access.get("authorizedIPRanges") or []]
    if not ranges:
        yield r, (
            f"{r.display}: the API server is open to the internet; set apiServerAccessProfile.authorizedIPRanges "
            "or enablePrivateCluster (zero-trust-aks:cluster.authorizedIpRanges or privateCluster)"
        )
    for cidr in ranges:
        try:
            everyone = ipaddress.ip_network(cidr, strict=False).prefixlen == 0
        except ValueError:
            continue
        if everyone:
            yield r, f"{r.display}: authorizedIPRanges contains {cidr}, which is everyone; list your own ranges"


# -- policy rules ----------------------------------------------------------------------------


def _broad_peer(policy: Resource, section: str, entry: Mapping[str, Any]) -> str | None:
    """What makes an allow rule too broad, or None."""
    ingress = section == "ingress"
    entities = entry.get("fromEntities" if ingress else "toEntities") or []
    for e in entities:
        if e in BROAD_ENTITIES:
            return f"{'fromEntities' if ingress else 'toEntities'}: [{e}] allows {BROAD_ENTITIES[e]}"
    for key in ("fromCIDR", "fromCIDRSet") if ingress else ("toCIDR", "toCIDRSet"):
        for c in entry.get(key) or []:
            cidr = c.get("cidr") if isinstance(c, Mapping) else c
            try:
                if cidr and ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                    return f"{key}: {cidr} allows the whole internet"
            except ValueError:
                continue
    endpoints_key = "fromEndpoints" if ingress else "toEndpoints"
    namespace = None if policy.kind == CCNP else policy.namespace
    for i, raw in enumerate(entry.get(endpoints_key) or []):
        try:
            sel = peer_selector(raw, namespace, f"{endpoints_key}[{i}]")
        except PolicyRejected:
            continue
        scoped = any(
            r.source in ("k8s", "any") and ((r.key == NS_KEY and r.op == "In") or r.key.startswith(NS_LABELS_PREFIX))
            for r in sel.requirements
        ) or any(r.source not in ("k8s", "any") for r in sel.requirements)
        if not scoped:
            return f"{endpoints_key}[{i}] selects pods in every namespace of the cluster"
    l3 = [k for k in entry if k.startswith("from" if ingress else "to") and k not in ("toPorts",)]
    if not l3 and entry.get("toPorts"):
        return "a rule with toPorts and no peer allows every peer, the internet included, on those ports"
    return None


def check_no_broad_peers(r: Resource) -> Iterator[tuple[Resource, str]]:
    for where, section, entry in _entries(r, ("ingress", "egress")):
        why = _broad_peer(r, section, entry)
        if why:
            yield r, (
                f"{r.display} {where}: {why}; name the peers (a namespace and labels), "
                f'or annotate the policy {EXCEPTION_ANNOTATION}: "<reason>"'
            )


def _l7_usage(policy: Resource) -> Iterator[tuple[str, str, str]]:
    """(where, what, needed ACNS level) for every L7 or FQDN feature a policy uses."""
    for where, _section, entry in _entries(policy, ("ingress", "egress", "ingressDeny", "egressDeny")):
        if entry.get("toFQDNs"):
            yield where, "toFQDNs", "FQDN"
        for i, ports in enumerate(entry.get("toPorts") or []):
            rules = (ports.get("rules") or {}) if isinstance(ports, Mapping) else {}
            for key in L7_RULES:
                if rules.get(key):
                    yield f"{where}.toPorts[{i}]", f"rules.{key}", "L7"
            for key in FQDN_RULES:
                if rules.get(key):
                    yield f"{where}.toPorts[{i}]", f"rules.{key}", "FQDN"


def check_l7_needs_acns(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    clusters = _clusters(resources)
    if not clusters:
        return  # not an AKS stack (e.g. an existing cluster): its Cilium decides
    cluster = clusters[0]
    level = _acns_level(cluster)
    satisfies = {"None": set(), "FQDN": {"FQDN"}, "L7": {"FQDN", "L7"}}.get(level, set())
    setting = {arm: key for key, arm in ACNS_POLICY_LEVELS.items()}
    for p in _policies(resources):
        for where, what, needed in _l7_usage(p):
            if needed not in satisfies:
                yield p, (
                    f"{p.display} {where}: {what} needs Advanced Container Networking security {needed} on "
                    f"{cluster.display} (now {level}), or AKS rejects the policy; set "
                    f"networkProfile.advancedNetworking.security.advancedNetworkPolicies: {needed} "
                    f"(zero-trust-aks:cluster.advancedNetworking.security: {setting[needed]}) or drop the rule"
                )


def check_no_l7_in_ccnp(r: Resource) -> Iterator[tuple[Resource, str]]:
    for where, what, needed in _l7_usage(r):
        if needed == "L7":
            yield r, (
                f"{r.display} {where}: {what} in a CiliumClusterwideNetworkPolicy is not supported on AKS; "
                "move the L7 rule into a namespaced CiliumNetworkPolicy"
            )


def check_cilium_version_fields(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    version = _cilium_version(resources)
    if version >= (1, 16):
        return
    clusters = _clusters(resources)
    k8s = clusters[0].props.get("kubernetesVersion") if clusters else None
    shipped = f"Cilium {version[0]}.{version[1]} (what AKS ships with Kubernetes {k8s})"
    fix = "remove it, or use Kubernetes 1.31 or later (Cilium 1.16+)"
    for p in _policies(resources):
        for where, spec in _specs(p):
            if "enableDefaultDeny" in spec:
                yield p, (
                    f"{p.display} {where}: enableDefaultDeny is dropped by the CRD of {shipped}, so the "
                    f"policy puts its pods in default deny whatever it says; {fix}"
                )
        for where, _section, entry in _entries(p, ("ingress", "egress", "ingressDeny", "egressDeny")):
            for i, ports in enumerate(entry.get("toPorts") or []):
                for j, port in enumerate((ports.get("ports") or []) if isinstance(ports, Mapping) else []):
                    if isinstance(port, Mapping) and "endPort" in port:
                        yield p, (
                            f"{p.display} {where}.toPorts[{i}].ports[{j}]: endPort is dropped by the CRD of "
                            f"{shipped}, so the range shrinks to port {port.get('port')}; {fix}"
                        )


def check_namespace_default_deny(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    """Every managed namespace, for an unlabelled pod and each workload's pods, per the verdict engine."""
    namespaces = [r for r in resources if r.is_kubernetes and r.kind == "Namespace"]
    if not namespaces:
        return
    by_namespace: dict[str, list[Endpoint]] = {}
    for w in resources:
        if w.is_kubernetes and w.kind in POD_TEMPLATE_KINDS:
            spec = pod_spec(w) or {}
            by_namespace.setdefault(w.namespace, []).append(
                Endpoint(
                    w.namespace,
                    pod_labels(w),
                    name=f"{w.kind} {w.object_name}",
                    service_account=str(spec.get("serviceAccountName") or "default"),
                )
            )
    endpoints: dict[str, tuple[Endpoint, list[Endpoint]]] = {}
    for ns in namespaces:
        name, labels = ns.object_name, ns.metadata.get("labels") or {}
        anonymous = Endpoint(name, {}, name="an unlabelled pod", namespace_labels=labels)
        pods = [
            Endpoint(name, e.labels, e.name, e.service_account, namespace_labels=labels) for e in by_namespace.get(name, [])
        ]
        endpoints[name] = (anonymous, pods)
    # Every identity up front: the engine then resolves each selector once.
    engine = Engine(
        [r.props for r in _policies(resources)],
        _cilium_version(resources),
        [e for anonymous, pods in endpoints.values() for e in (anonymous, *pods)],
    )
    for ns in namespaces:
        name = ns.object_name
        anonymous, pods = endpoints[name]
        for direction in ("ingress", "egress"):
            side = engine.enforcement(anonymous, direction)
            if not side.allowed:
                yield ns, f"Namespace {name}: {side.reason}; {_default_deny_fix(direction)}"
                continue
            for ep in pods:
                side = engine.enforcement(ep, direction)
                if not side.allowed:
                    yield ns, f"Namespace {name}: {side.reason}; {_default_deny_fix(direction)}"


def _default_deny_fix(direction: str) -> str:
    return (
        f"add a CiliumNetworkPolicy with endpointSelector: {{}} and {direction}: [{{}}] "
        f"(zero-trust-aks:zeroTrust.defaultDeny: ingress-and-egress)"
    )


# -- workload rules --------------------------------------------------------------------------


def _workload_check(problem: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None], fix: str):
    def check(r: Resource) -> Iterator[tuple[Resource, str]]:
        spec = pod_spec(r)
        if spec is None:
            return
        for c in _containers(spec):
            what = problem(spec, c)
            if what:
                yield r, f"{r.display}: container {c.get('name', '?')!r} {what}; {fix}"

    return check


def _may_run_as_root(pod: Mapping[str, Any], c: Mapping[str, Any]) -> str | None:
    pod_ctx, ctx = pod.get("securityContext") or {}, c.get("securityContext") or {}
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    if non_root is True or (isinstance(user, (int, float)) and user > 0):
        return None
    return "may run as root" if user is None else "runs as root (runAsUser: 0)"


def _may_escalate(pod: Mapping[str, Any], c: Mapping[str, Any]) -> str | None:
    ctx = c.get("securityContext") or {}
    if ctx.get("privileged"):
        return "is privileged"
    if ctx.get("allowPrivilegeEscalation") is not False:
        return "may escalate privileges"
    return None


def _no_limits(pod: Mapping[str, Any], c: Mapping[str, Any]) -> str | None:
    limits = (c.get("resources") or {}).get("limits") or {}
    missing = [k for k in ("cpu", "memory") if not limits.get(k)]
    return f"has no {' or '.join(missing)} limit" if missing else None


def check_no_token(r: Resource) -> Iterator[tuple[Resource, str]]:
    spec = pod_spec(r)
    if spec is not None and spec.get("automountServiceAccountToken") is None:
        yield r, (
            f"{r.display}: its pods get a service-account token they did not ask for (automountServiceAccountToken "
            "is unset, which means true); set it to false, or to true if the pods call the Kubernetes API"
        )


# -- the rules -------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    Rule(
        "aks-cilium-dataplane",
        "The AKS cluster uses Azure CNI powered by Cilium: networkPlugin azure, networkDataplane cilium, networkPolicy cilium.",
        "Any other dataplane ignores CiliumNetworkPolicies: every flow would be open.",
        "mandatory",
        "resource",
        check_cilium_dataplane,
        types=(MANAGED_CLUSTER,),
    ),
    Rule(
        "namespace-default-deny",
        "Every namespace the stack manages is in effective default deny for ingress and egress.",
        "Decided with the verdict engine: `ingress: []` enforces nothing, so name-based checks are not enough.",
        "mandatory",
        "stack",
        check_namespace_default_deny,
        exceptable=True,
    ),
    Rule(
        "no-broad-peers",
        "No policy allows from or to the entities all, world or cluster, 0.0.0.0/0, or pods of every namespace.",
        "One such rule undoes zero trust for everything it selects.",
        "mandatory",
        "resource",
        check_no_broad_peers,
        types=(CNP, CCNP),
        exceptable=True,
    ),
    Rule(
        "l7-needs-acns",
        "L7 (rules.http, rules.kafka) and FQDN (toFQDNs, rules.dns) rules only where the cluster's Advanced Container Networking security allows them.",
        "AKS rejects them otherwise, at `pulumi up` time, after the cluster exists.",
        "mandatory",
        "stack",
        check_l7_needs_acns,
    ),
    Rule(
        "no-l7-in-ccnp",
        "No L7 rules in a CiliumClusterwideNetworkPolicy.",
        "AKS's Cilium does not support L7 rules in clusterwide policies.",
        "mandatory",
        "resource",
        check_no_l7_in_ccnp,
        types=(CCNP,),
    ),
    Rule(
        "cilium-version-fields",
        "No enableDefaultDeny or endPort when the cluster's Kubernetes version ships Cilium 1.14 (AKS 1.29/1.30).",
        "That CRD silently drops both fields, changing what the policy means.",
        "mandatory",
        "stack",
        check_cilium_version_fields,
    ),
    Rule(
        "workload-non-root",
        "Workload containers run as non-root (runAsNonRoot or a non-zero runAsUser).",
        "A root container that escapes owns the node.",
        "advisory",
        "resource",
        _workload_check(_may_run_as_root, "set securityContext.runAsNonRoot: true (securityProfile: restricted, a non-root image)"),
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "workload-no-privilege-escalation",
        "Workload containers set allowPrivilegeEscalation: false and are not privileged.",
        "setuid binaries or a privileged container get past every other control.",
        "advisory",
        "resource",
        _workload_check(_may_escalate, "set securityContext.allowPrivilegeEscalation: false"),
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "workload-resource-limits",
        "Workload containers have CPU and memory limits.",
        "One runaway pod should not starve its node.",
        "advisory",
        "resource",
        _workload_check(_no_limits, "set resources.limits.cpu and .memory (zero-trust-aks:workloads.<name>.resources)"),
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "workload-no-service-account-token",
        "Pods mount a service-account token only when they ask for it (automountServiceAccountToken set explicitly).",
        "A stolen token is an API credential; most workloads never call the API.",
        "advisory",
        "resource",
        check_no_token,
        types=POD_TEMPLATE_KINDS,
        exceptable=True,
    ),
    Rule(
        "aks-entra-id-only",
        "Production clusters: local accounts disabled, Entra ID with Azure RBAC.",
        "A local admin kubeconfig is a shared, unaudited, unrevocable credential.",
        "mandatory",
        "resource",
        check_entra_id_only,
        types=(MANAGED_CLUSTER,),
    ),
    Rule(
        "aks-api-server-restricted",
        "Production clusters: the API server is private or limited to authorized IP ranges.",
        "A public API server is one leaked credential away from the cluster.",
        "mandatory",
        "resource",
        check_api_server_restricted,
        types=(MANAGED_CLUSTER,),
    ),
)
BY_NAME = {r.name: r for r in RULES}


# -- running rules ---------------------------------------------------------------------------


def _judge(rule: Rule, level: str, found: Iterable[tuple[Resource, str]]) -> tuple[list[Violation], list[Excepted]]:
    violations, excepted = [], []
    for resource, message in found:
        reason = resource.exception() if rule.exceptable else None
        if reason:
            excepted.append(Excepted(rule.name, resource.display, reason))
            continue
        if reason == "":
            message += f" (its {EXCEPTION_ANNOTATION} annotation has no reason, so it does not count)"
        violations.append(Violation(rule.name, level, resource.display, message, resource.urn))
    return violations, excepted


def check_resource(rule: Rule, resource: Resource, level: str | None = None) -> list[Violation]:
    """A resource-scoped rule on one resource (what a CrossGuard resource validation does)."""
    if rule.scope != "resource" or not rule.applies_to(resource):
        return []
    return _judge(rule, level or rule.level, rule.check(resource))[0]


def check_stack(rule: Rule, resources: Sequence[Resource], level: str | None = None) -> list[Violation]:
    """A stack-scoped rule on all resources (what a CrossGuard stack validation does)."""
    if rule.scope != "stack":
        return []
    return _judge(rule, level or rule.level, rule.check(resources))[0]


@dataclass(frozen=True)
class Report:
    violations: tuple[Violation, ...]
    excepted: tuple[Excepted, ...]

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def ok(self) -> bool:
        return not self.mandatory


def evaluate(resources: Sequence[Resource], levels: Mapping[str, str] | None = None) -> Report:
    """Every rule not disabled, on every resource it applies to."""
    levels = levels or default_levels()
    violations: list[Violation] = []
    excepted: list[Excepted] = []
    for rule in RULES:
        level = levels.get(rule.name, rule.level)
        if level == "disabled":
            continue
        if rule.scope == "stack":
            found: Iterable[tuple[Resource, str]] = rule.check(resources)
        else:
            found = [x for r in resources if rule.applies_to(r) for x in rule.check(r)]
        v, e = _judge(rule, level, found)
        violations += sorted(v, key=lambda x: (x.resource, x.message))  # registration order varies
        excepted += sorted(e, key=lambda x: (x.resource, x.reason))
    return Report(tuple(violations), tuple(excepted))


# -- enforcement levels (CrossGuard's policy-pack config format) -------------------------------------


class LevelConfigError(ValueError):
    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def default_levels() -> dict[str, str]:
    return {r.name: r.level for r in RULES}


def resolve_levels(doc: Any, source: str) -> dict[str, str]:
    """Levels from a policy-pack config document, as ``--policy-pack-config`` reads it.

    ``all`` sets every rule; a rule's own entry wins over ``all``. Entries are
    ``"<level>"`` or ``{"enforcementLevel": "<level>"}``.
    """
    if not isinstance(doc, Mapping):
        raise LevelConfigError([f"{source}: must be a JSON object of rule name -> enforcement level"])
    levels = default_levels()
    errors: list[str] = []
    parsed: dict[str, str] = {}
    for key, value in doc.items():
        if key != "all" and key not in BY_NAME:
            errors.append(f"{source}: {key}: not a guardrail; the guardrails are: all, {', '.join(BY_NAME)}")
            continue
        level = value.get("enforcementLevel") if isinstance(value, Mapping) else value
        extra = sorted(set(value) - {"enforcementLevel"}) if isinstance(value, Mapping) else []
        if extra:
            errors.append(f"{source}: {key}.{extra[0]}: unknown setting; only enforcementLevel is configurable")
        if level not in LEVELS:
            errors.append(f"{source}: {key}.enforcementLevel: {level!r} is not allowed; allowed: {', '.join(LEVELS)}")
            continue
        parsed[key] = level
    if errors:
        raise LevelConfigError(errors)
    if "all" in parsed:
        levels = {name: parsed["all"] for name in levels}
    levels.update({k: v for k, v in parsed.items() if k != "all"})
    return levels
