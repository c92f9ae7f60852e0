"""Cross-field rules: what no single key can say, checked on whatever part of the config is valid.

Each function takes the config assembled from the keys that validated
(``Partial``) and returns one line per problem. A rule whose inputs failed
validation is skipped, so one bad key never hides or fakes another problem.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from policies.cilium_versions import features
from policies.config import azure, kubernetes
from policies.config.models import PROJECT, ClusterConfig, StackConfig
from policies.config.pods import pod_labels
from policies.config.pods import selector as pod_selector

P = PROJECT


@dataclass
class Partial:
    """The config as far as it validated."""

    cfg: StackConfig
    failed: set[str] = field(default_factory=set)
    """StackConfig fields that did not validate (their rules are skipped)."""
    broken_workloads: set[str] = field(default_factory=set)
    """Workload names present in the config whose definition did not validate."""
    broken_peers: set[str] = field(default_factory=set)
    """Peer names present in the config whose definition did not validate."""
    broken_flows: set[int] = field(default_factory=set)
    """Indexes of flows that did not validate."""
    flow_index: list[int] = field(default_factory=list)
    """The file index of each flow that validated (``cfg.flows[n]`` is ``flows[flow_index[n]]``)."""

    def ok(self, *fields: str) -> bool:
        return not (set(fields) & self.failed)


def stack_errors(p: Partial) -> list[str]:
    errors: list[str] = []
    cfg = p.cfg
    if p.ok("cluster", "kubernetes") and (cfg.cluster is None) == (cfg.kubernetes is None):
        errors.append(
            f"{P}:cluster: give exactly one of {P}:cluster (an AKS cluster to create) "
            f"or {P}:kubernetes (an existing cluster running Cilium)"
        )
    azure_keys = (("azure-native:location", "location"), (f"{P}:resourceGroupName", "resource_group_name"))
    if p.ok("cluster") and cfg.cluster is not None:
        for key, name in azure_keys:
            if p.ok(name) and getattr(cfg, name) is None:
                errors.append(f"{key}: required with {P}:cluster")
    elif p.ok("kubernetes") and cfg.kubernetes is not None:
        if not cfg.create_resource_group:
            errors.append(f"{P}:createResourceGroup: not used with {P}:kubernetes (no Azure resources are created); remove it")
        for key, name in azure_keys:
            if name not in p.failed and getattr(cfg, name) is not None:
                errors.append(f"{key}: not used with {P}:kubernetes (no Azure resources are created); remove it")
    zt = cfg.zero_trust
    if p.ok("zero_trust") and zt.verify and not zt.allow_dns and zt.default_deny == "ingress-and-egress":
        errors.append(
            f"{P}:zeroTrust.verify: the probes reach their targets by Service DNS name, which needs "
            f"{P}:zeroTrust.allowDns: true; allow DNS or set verify: false"
        )
    if p.ok("zero_trust", "workloads", "peers") and zt.verify:
        probe_ns = zt.probe_namespace
        if probe_ns in {w.namespace for w in cfg.workloads.values()} | {p_.namespace for p_ in cfg.peers.values() if p_.namespace}:
            errors.append(f"{P}:zeroTrust.probeNamespace: {probe_ns!r} holds workloads or peers; the probe namespace is the stack's alone")
        elif kubernetes.reserved_namespace(probe_ns):
            errors.append(f"{P}:zeroTrust.probeNamespace: {probe_ns!r} is managed by Kubernetes or AKS; choose your own namespace")
    if p.ok("cluster") and cfg.cluster is not None:
        errors += cluster_errors(cfg.cluster)
    errors += staging_errors(p)
    errors += workload_errors(p)
    errors += selector_errors(p)
    errors += peer_errors(p)
    errors += flow_errors(p)
    return errors


def cluster_errors(c: ClusterConfig) -> list[str]:
    """What ARM would refuse, or what would lock everyone out, in one cluster's settings."""
    at = f"{P}:cluster"
    errors: list[str] = []
    why = azure.dns_prefix_problem(c.dns_prefix)
    if why:
        errors.append(f"{at}.name: {why}")
    why = azure.dns_service_ip_problem(c.dns_service_ip, c.service_cidr)
    if why:
        errors.append(f"{at}.dnsServiceIp: {why}")
    ranges = [("serviceCidr", c.service_cidr)]
    if c.effective_pod_cidr:
        ranges.append(("podCidr", c.effective_pod_cidr))
    for key, cidr in ranges:
        why = azure.reserved_range_problem(cidr)
        if why:
            errors.append(f"{at}.{key}: {why}")
        if azure.overlaps(cidr, azure.MANAGED_VNET):
            errors.append(f"{at}.{key}: {cidr} overlaps {azure.MANAGED_VNET}, the VNet AKS creates for the nodes")
    if c.effective_pod_cidr and azure.overlaps(c.effective_pod_cidr, c.service_cidr):
        key = "podCidr" if c.pod_cidr else "serviceCidr"
        errors.append(f"{at}.{key}: pod range {c.effective_pod_cidr} overlaps serviceCidr {c.service_cidr}")

    if c.entra_id is None and c.disable_local_accounts:
        errors.append(f"{at}.disableLocalAccounts: needs {at}.entraId (without Entra ID nobody could log in)")
    if c.private_cluster and c.authorized_ip_ranges:
        errors.append(f"{at}.authorizedIpRanges: not allowed with privateCluster: true (AKS rejects the combination)")
    for i, cidr in enumerate(c.authorized_ip_ranges):
        if ipaddress.ip_network(cidr).prefixlen == 0:
            errors.append(f"{at}.authorizedIpRanges[{i}]: {cidr} opens the API server to everyone; list your ranges")
    if c.autoscaling:
        lo, hi = c.autoscaling.min_count, c.autoscaling.max_count
        if lo > hi:
            errors.append(f"{at}.autoscaling.minCount: {lo} is above maxCount {hi}")
        elif not lo <= c.node_count <= hi:
            errors.append(f"{at}.nodeCount: {c.node_count} must lie within autoscaling minCount..maxCount ({lo}..{hi})")
    if c.pod_cidr and c.network_plugin_mode != "overlay":
        errors.append(f"{at}.podCidr: only used with networkPluginMode: overlay (pods take node-subnet IPs)")
    if c.workload_identity and not c.oidc_issuer:
        errors.append(f"{at}.workloadIdentity: needs {at}.oidcIssuer: true (Entra Workload ID trusts the cluster's OIDC issuer)")
    channel = c.auto_upgrade.upgrade_channel
    if c.kubernetes_version and channel in ("rapid", "stable"):
        errors.append(
            f"{at}.autoUpgrade.upgradeChannel: {channel!r} moves the cluster to newer minor versions, which "
            f"kubernetesVersion {c.kubernetes_version!r} pins (it also decides the Cilium semantics); use 'patch', "
            "or drop kubernetesVersion"
        )
    elif c.kubernetes_version and c.kubernetes_version.count(".") == 2 and channel != "none":
        minor = c.kubernetes_version.rsplit(".", 1)[0]
        errors.append(
            f"{at}.kubernetesVersion: {c.kubernetes_version!r} pins a patch that the {channel!r} upgrade channel moves "
            f"past, and the next pulumi up would ask AKS for a downgrade; name the minor version only (\"{minor}\")"
        )
    return errors


DEPLOYED_ONLY = (
    ("labels", "labels"), ("env", "env"), ("args", "args"), ("command", "command"),
    ("service_account_name", "serviceAccountName"), ("run_as_user", "runAsUser"), ("run_as_group", "runAsGroup"),
    ("health_check", "healthCheck"), ("replicas", "replicas"), ("resources", "resources"),
    ("security_profile", "securityProfile"), ("service_account_token", "serviceAccountToken"), ("expose", "expose"),
)
"""Keys that shape what the stack deploys: meaningless for pods deployed elsewhere."""


def workload_errors(p: Partial) -> list[str]:
    errors: list[str] = []
    targets = p.cfg.flow_targets
    for name, w in p.cfg.workloads.items():
        at = f"{P}:workloads.{name}"
        if (w.image is None) == (w.selector is None):
            errors.append(
                f"{at}: give image (a workload this stack deploys) or selector (the labels of pods deployed elsewhere, "
                "by Helm, Argo CD or another stack), not both" if w.image else f"{at}: give image (a workload this stack "
                "deploys) or selector (the labels of pods deployed elsewhere, by Helm, Argo CD or another stack)"
            )
        if w.selector is not None:
            for field_name, key in DEPLOYED_ONLY:
                if field_name in w.model_fields_set:
                    errors.append(f"{at}.{key}: only for a workload this stack deploys (image); {name!r} is deployed elsewhere (selector)")
        elif w.service is not None:
            errors.append(f"{at}.service: only with selector; the Service of a workload this stack deploys is named after it ({name!r})")
        if "app" in w.labels:
            errors.append(f"{at}.labels.app: reserved; it is always the workload's name ({name!r})")
        if kubernetes.reserved_namespace(w.namespace):
            errors.append(f"{at}.namespace: {w.namespace!r} is managed by Kubernetes or AKS; choose your own namespace")
        if w.port is not None and w.ports is not None:
            errors.append(f"{at}: give port (one port) or ports (several, named), not both")
        if w.target_port is not None and w.port is None:
            errors.append(f"{at}.targetPort: only with port" + (" (with ports, give targetPort in each entry)" if w.ports else ""))
        if w.security_profile == "restricted" and w.run_as_user == 0:
            errors.append(f"{at}.runAsUser: 0 is root, which securityProfile restricted refuses; use a non-root user or securityProfile: baseline")
        for var, value in (w.env or {}).items():
            if not isinstance(value, str) and (value.secret_key_ref is None) == (value.config_map_key_ref is None):
                errors.append(f"{at}.env.{var}: give exactly one of secretKeyRef or configMapKeyRef (or a plain string value)")
        check = w.health_check
        if check is not None:
            tcp = [s for s in w.served if s.protocol == "TCP"]
            spec = w.find_port(check.port, "TCP") if check.port is not None else (tcp[0] if tcp else None)
            if spec is None:
                ports = ", ".join(f"{s.name} ({s.port}/{s.protocol})" for s in w.served) or "none"
                errors.append(f"{at}.healthCheck.port: an HTTP check needs a TCP port the workload serves; it serves: {ports}")
        names = [spec.name for spec in w.ports or ()]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            errors.append(f"{at}.ports: the name {dup!r} is used twice")
        numbers = [(spec.port, spec.protocol) for spec in w.ports or ()]
        for port, proto in sorted({x for x in numbers if numbers.count(x) > 1}):
            errors.append(f"{at}.ports: {port}/{proto} is listed twice")
        if w.expose == "loadBalancer" and not w.served:
            errors.append(f"{at}.expose: a load balancer needs a port; give port or ports")
        if (name in targets or w.expose == "loadBalancer") and not kubernetes.DNS1035_LABEL.match(name):
            errors.append(
                f"{at}: {name!r} names the workload's Service, and Service names must start with a letter "
                "(DNS-1035); rename the workload"
            )
        r = w.resources
        for what, request, limit in (("cpu", r.cpu_request, r.cpu_limit), ("memory", r.memory_request, r.memory_limit)):
            if kubernetes.quantity(request) > kubernetes.quantity(limit):
                errors.append(
                    f"{at}.resources.{what}Request: {request} is above {what}Limit {limit}; "
                    "the API server rejects a request above its limit"
                )
    return errors


def selector_errors(p: Partial) -> list[str]:
    """Two workloads must never select the same pods: refused wherever that is decidable offline (one's
    selector is part of the other's labels); a namespace's settings name a namespace the stack manages."""
    errors: list[str] = []
    cfg = p.cfg
    by_ns: dict[str, list[str]] = {}
    for name, w in sorted(cfg.workloads.items()):
        by_ns.setdefault(w.namespace, []).append(name)
    for ns, names in by_ns.items():
        for name in names:
            w = cfg.workloads[name]
            if w.selector is None:
                continue
            for other in names:
                if other == name:
                    continue
                o = cfg.workloads[other]
                labels = pod_labels(other, o) if o.selector is None else o.selector
                mine = w.selector.items()
                if mine <= labels.items() and (o.selector is None or o.selector != w.selector or other > name):
                    errors.append(
                        f"{P}:workloads.{name}.selector: {_text(w.selector)} also selects the pods of {other!r} "
                        f"({_text(pod_selector(cfg, other) if o.selector is None else o.selector)}); add a label that tells them apart"
                    )
    if p.ok("namespace_settings", "workloads") and not p.broken_workloads:
        managed = sorted({w.namespace for w in cfg.workloads.values()})
        for ns in cfg.namespace_settings:
            if ns not in managed:
                errors.append(
                    f"{P}:namespaces.{ns}: no workload lives in {ns!r}; the stack's namespaces are: {', '.join(managed)}"
                )
    return errors


def staging_errors(p: Partial) -> list[str]:
    """``staged`` needs a Cilium whose policies take ``enableDefaultDeny`` (older CRDs prune it, and the
    policies would enforce)."""
    cfg = p.cfg
    if not p.ok("zero_trust", "namespace_settings", "cluster", "kubernetes") or (cfg.cluster is None) == (cfg.kubernetes is None):
        return []
    version = features(cfg.cilium_version)
    if version.enable_default_deny:
        return []
    keys = [f"{P}:zeroTrust.enforcement"] if cfg.zero_trust.enforcement == "staged" else []
    keys += [f"{P}:namespaces.{ns}.enforcement" for ns, s in sorted(cfg.namespace_settings.items()) if s.enforcement == "staged"]
    where = "kubernetesVersion" if cfg.cluster is not None else "kubernetes.ciliumVersion"
    return [
        f"{key}: 'staged' needs Cilium 1.16 or later (its policies' enableDefaultDeny), and this stack's Cilium is "
        f"{version.text}: use 'enforced', or a newer {where}"
        for key in keys
    ]


def _text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels.items())) + "}"


def peer_errors(p: Partial) -> list[str]:
    """Peers: exactly one kind, outside what the stack manages, one name space with the workloads."""
    if not p.ok("peers"):
        return []
    cfg = p.cfg
    errors: list[str] = []
    managed = {w.namespace for w in cfg.workloads.values()}
    for name, peer in cfg.peers.items():
        at = f"{P}:peers.{name}"
        if name in cfg.workloads or name in p.broken_workloads:
            errors.append(f"{at}: {name!r} names a workload too; flows name both in one name space, so rename one")
        if peer.kind is None:
            errors.append(f"{at}: give exactly one of namespace (pods the stack does not manage), cidrs (addresses outside the cluster) or entity")
        if peer.labels and peer.namespace is None:
            errors.append(f"{at}.labels: only with namespace")
        if peer.except_ and peer.cidrs is None:
            errors.append(f"{at}.except: only with cidrs")
        if peer.namespace is not None and peer.namespace in managed:
            errors.append(
                f"{at}.namespace: {peer.namespace!r} is managed by this stack; name its workloads in flows instead"
            )
        for i, e in enumerate(peer.except_):
            net = ipaddress.ip_network(e)
            if peer.cidrs and not any(net.version == c.version and net.subnet_of(c) for c in map(ipaddress.ip_network, peer.cidrs)):
                errors.append(f"{at}.except[{i}]: {e} lies in none of the peer's cidrs")
        if peer.cidrs and p.ok("cluster") and cfg.cluster is not None:
            c = cfg.cluster
            inside = [("serviceCidr", c.service_cidr), ("the node VNet", str(azure.MANAGED_VNET))]
            if c.effective_pod_cidr:
                inside.append(("podCidr", c.effective_pod_cidr))
            for i, cidr in enumerate(peer.cidrs):
                for what, net in inside:
                    if azure.overlaps(cidr, net):
                        errors.append(
                            f"{at}.cidrs[{i}]: {cidr} overlaps {what} {net}; Cilium never selects pods, Services or nodes "
                            "by address (AKS documents it): name workloads, or an entity (host, remote-node)"
                        )
    return errors


def flow_errors(p: Partial) -> list[str]:
    """Flows against the workloads, the peers and the cluster's ACNS level."""
    if not p.ok("flows"):
        return []
    cfg = p.cfg
    errors: list[str] = []
    workloads = set(cfg.workloads) | p.broken_workloads
    peers = (set(cfg.peers) | p.broken_peers) - workloads  # a name clash is reported once, by peer_errors
    known = workloads | peers
    names = f"workloads are: {', '.join(sorted(workloads))}" + (f"; peers are: {', '.join(sorted(peers))}" if peers else "")
    judge_names = p.ok("workloads") and p.ok("peers")
    level = cfg.acns_level if p.ok("cluster") else None
    check_level = level is not None
    seen: dict[tuple, int] = {}
    for i, f in zip(p.flow_index or range(len(cfg.flows)), cfg.flows):
        at = f"{P}:flows[{i}]"
        if f.source not in known and judge_names:
            errors.append(f"{at}.from: {f.source!r} is neither a workload nor a peer; {names}")
        if (f.to is None) == (f.to_fqdns is None):
            errors.append(f"{at}: give exactly one of 'to' (a workload or a peer) or 'toFqdns' (outside names)")
            continue
        if f.source in peers:
            if f.to is None or f.to in peers:
                errors.append(f"{at}: a flow between two peers, or from a peer to outside names, is not this stack's to enforce")
                continue
            peer = cfg.peers.get(f.source)
            if peer is not None and peer.kind == "entity" and peer.entity == "world" and f.to in cfg.workloads and f.to not in cfg.exposed:
                errors.append(
                    f"{at}.from: traffic from the internet reaches a workload only through a LoadBalancer Service; "
                    f"set {P}:workloads.{f.to}.expose: loadBalancer"
                )
            if peer is not None and peer.entity == "kube-apiserver" and p.ok("cluster", "kubernetes") and cfg.api_server_outside:
                errors.append(
                    f"{at}.from: on AKS the API server reaches pods (webhooks, kubectl exec, logs and port-forward) "
                    "through the konnectivity tunnel and the nodes, so Cilium never sees that traffic as "
                    "kube-apiserver and a rule from it admits nothing; allow it from a peer {entity: remote-node} "
                    "(and {entity: host}) on that port instead"
                )
        if f.to is not None and f.to in peers:
            if f.port is None:
                errors.append(f"{at}.port: required for a flow to a peer (a peer has no ports of its own)")
            elif isinstance(f.port, str):
                errors.append(f"{at}.port: {f.port!r} names no port of {f.to!r}; a peer's port is a number")
            if f.http is not None:
                errors.append(f"{at}.http: HTTP rules apply to flows to a workload")
        elif f.to is not None:
            if f.to not in known:
                if judge_names:
                    errors.append(f"{at}.to: {f.to!r} is neither a workload nor a peer; {names}")
                continue
            if f.to in p.broken_workloads:
                continue
            target = cfg.workloads[f.to]
            served = ", ".join(f"{s.name} ({s.port}/{s.protocol})" for s in target.served)
            if not target.served:
                errors.append(f"{at}.to: {f.to!r} serves no port, so nothing can connect to it; give it port or ports")
                continue
            if cfg.flow_target_port(f) is None:
                listening = next((s for s in target.served if s.container_port == f.port and s.port != f.port), None)
                if f.port is None and len(target.served) == 1:
                    errors.append(f"{at}.protocol: {f.to!r} serves {served} only")
                elif f.port is None:
                    errors.append(f"{at}.port: required: {f.to!r} serves several ports: {served}")
                elif target.find_port(f.port) is not None:
                    protocols = sorted({s.protocol for s in target.served if s.port == f.port or s.name == f.port})
                    errors.append(f"{at}.protocol: {f.to!r} serves {f.port} over {' and '.join(protocols)} only")
                elif listening is not None:
                    errors.append(
                        f"{at}.port: {f.port} is where {f.to!r}'s pods listen (the targetPort of {listening.name!r}); "
                        f"a flow names the port clients dial ({listening.port}) or its name ({listening.name!r})"
                    )
                else:
                    errors.append(f"{at}.port: {f.to!r} has no port {f.port!r}; it serves: {served}")
                continue
            if f.http is not None:
                if check_level and "l7" not in level.allows:
                    errors.append(
                        f"{at}.http: L7 rules need {P}:cluster.advancedNetworking.security: l7 "
                        f"(now {level.setting!r}); AKS rejects them otherwise"
                    )
                if cfg.flow_protocol(f) != "TCP":
                    errors.append(f"{at}.http: HTTP rules need protocol TCP")
        else:
            if f.port is None:
                errors.append(f"{at}.port: required with toFqdns (the port on the outside host)")
            elif isinstance(f.port, str):
                errors.append(f"{at}.port: {f.port!r}: outside names take a port number")
            if check_level and "fqdn" not in level.allows:
                errors.append(
                    f"{at}.toFqdns: FQDN rules need {P}:cluster.advancedNetworking.security: fqdn or l7 "
                    f"(now {level.setting!r}); AKS rejects them otherwise"
                )
            if f.http is not None:
                errors.append(f"{at}.http: HTTP rules apply to flows between workloads only")
            if p.ok("zero_trust") and cfg.zero_trust.default_deny != "ingress-and-egress":
                errors.append(
                    f"{at}.toFqdns: needs {P}:zeroTrust.defaultDeny: ingress-and-egress "
                    "(an egress rule would put the pod in egress default deny)"
                )
        key = (f.source, f.to, f.to_fqdns, cfg.flow_port(f), cfg.flow_protocol(f))
        if key in seen:
            errors.append(f"{at}: the same flow as {P}:flows[{seen[key]}]")
        seen.setdefault(key, i)
    return errors
