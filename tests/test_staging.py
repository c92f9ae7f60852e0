"""Staged enforcement: a namespace's policies with default deny off, judged as enforced, reported as staged."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from policies import guardrails as g
from policies.analysis import probes as probes_
from policies.analysis import staging
from policies.analysis.review import settings as settings_
from policies.config import PROJECT, load_config
from policies.render import DEFAULT_ALLOW, ENFORCEMENT_LABEL, as_enforced, pod_labels, render
from policies.verdict import Endpoint, Engine, stranger
from tests.capture import SHOP, stack_config
from tests.conftest import errors_of, schema_errors
from zerotrust.plan import make_plan

SHOP_CONFIG = stack_config(SHOP)


def staged(config: dict, *namespaces: str, default: str | None = None) -> dict:
    out = copy.deepcopy(config)
    settings = out.setdefault(f"{PROJECT}:namespaces", {})
    for ns in namespaces:
        settings[ns] = {**settings.get(ns, {}), "enforcement": "staged"}
    if default is not None:
        out[f"{PROJECT}:zeroTrust"] = {**out.get(f"{PROJECT}:zeroTrust", {}), "enforcement": default}
    return out


def write_stack(tmp_path: Path, config: dict, stack: str = "shop") -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


# -- config ------------------------------------------------------------------------------------------


def test_a_namespace_takes_the_stacks_enforcement_unless_it_sets_its_own():
    cfg = load_config(staged(SHOP_CONFIG, "shop-web", default="staged") | {
        f"{PROJECT}:namespaces": {"shop-web": {"enforcement": "enforced"}}})
    assert "shop-web" not in cfg.staged_namespaces and set(cfg.staged_namespaces) == set(cfg.namespaces) - {"shop-web"}
    assert load_config(SHOP_CONFIG).staged_namespaces == ()


def test_staging_where_cilium_has_no_enable_default_deny_is_one_error_per_key(dev_config):
    dev_config[f"{PROJECT}:cluster"]["kubernetesVersion"] = "1.30"
    config = staged(dev_config, "backend", default="staged")
    assert errors_of(config) == [
        f"{PROJECT}:{key}: 'staged' needs Cilium 1.16 or later (its policies' enableDefaultDeny), and this stack's Cilium is 1.14: "
        "use 'enforced', or a newer kubernetesVersion"
        for key in ("zeroTrust.enforcement", "namespaces.backend.enforcement")
    ]


def test_an_enforcement_that_is_neither_staged_nor_enforced_names_both(dev_config):
    dev_config[f"{PROJECT}:namespaces"] = {"backend": {"enforcement": "audit"}}
    (line,) = errors_of(dev_config)
    assert line.startswith(f"{PROJECT}:namespaces.backend.enforcement:") and "'enforced'" in line and "'staged'" in line


# -- rendering ---------------------------------------------------------------------------------------


def test_a_staged_namespaces_policies_validate_against_the_cilium_crd(cnp_schema):
    policies = render(load_config(staged(SHOP_CONFIG, "shop-core", "shop-web"))).policies()
    assert any(p["spec"].get("enableDefaultDeny") for p in policies)
    assert [schema_errors(cnp_schema, p) for p in policies] == [[] for _ in policies]


def test_a_staged_namespace_has_the_same_rules_with_default_deny_off_in_both_directions():
    enforced, staging = render(load_config(SHOP_CONFIG)), render(load_config(staged(SHOP_CONFIG, "shop-core")))
    for before, after in zip(enforced.policies(), staging.policies(), strict=True):
        if after["metadata"]["namespace"] == "shop-core":
            assert after["spec"] == {**before["spec"], "enableDefaultDeny": DEFAULT_ALLOW}
        else:
            assert after == before


def test_enforcing_a_staged_namespace_restores_exactly_the_enforced_objects():
    cfg = load_config(staged(SHOP_CONFIG, "shop-core", "shop-data"))
    assert as_enforced(render(cfg).policies(), cfg.staged_namespaces) == render(load_config(SHOP_CONFIG)).policies()
    assert render(cfg.enforced_everywhere()).all() == render(load_config(SHOP_CONFIG)).all()


def test_a_staged_namespace_is_labelled_so_and_an_enforced_one_enforced():
    rendered = render(load_config(staged(SHOP_CONFIG, "shop-core")))
    labels = {n.name: n.namespace["metadata"]["labels"][ENFORCEMENT_LABEL] for n in rendered.namespaces}
    assert labels["shop-core"] == "staged" and {v for k, v in labels.items() if k != "shop-core"} == {"enforced"}


def test_cilium_drops_nothing_in_a_staged_namespace_yet_every_pod_there_stays_enforced_so_verdicts_are_emitted(dev_config):
    cfg = load_config(staged(dev_config, "backend"))
    policies = render(cfg).policies()
    backend = Endpoint("backend", {"app": "backend"}, name="backend")
    engine = Engine(policies, cfg.cilium_version, [backend, stranger("backend")])
    verdict = engine.decide(stranger("backend"), backend, 80)
    assert verdict.allowed and "default-allow" in verdict.ingress.reason
    for direction in ("ingress", "egress"):
        side = engine.enforcement(backend, direction)
        assert not side.allowed and side.reason.endswith(f"enforced but default-allow: every enforcing rule sets enableDefaultDeny.{direction}: false")
    assert not Engine(as_enforced(policies, ["backend"]), cfg.cilium_version).decide(stranger("backend"), backend, 80).allowed


# -- plan ------------------------------------------------------------------------------------------


def test_the_plan_judges_a_staged_namespace_as_enforced_and_lists_what_enforcing_it_would_deny(tmp_path, dev_config):
    plan = make_plan("dev", write_stack(tmp_path, staged(dev_config, "backend"), "dev"))
    assert plan.matrix.ok and plan.matrix.staging.namespaces == ("backend",)
    assert plan.matrix.enforcing_denies == [("backend", "backend", 80, "TCP"), ("stranger@backend", "backend", 80, "TCP")]
    enforced = make_plan("dev", write_stack(tmp_path, dev_config, "dev"))
    assert plan.matrix.allowed == enforced.matrix.allowed and enforced.matrix.staging is None


def test_staging_is_advisory_in_dev_and_fails_the_plan_under_the_production_levels(tmp_path, dev_config):
    stack = write_stack(tmp_path, staged(dev_config, "backend"), "dev")
    dev = make_plan("dev", stack)
    assert [(v.rule, v.level) for v in dev.guardrails.violations if v.rule.startswith("namespace-")] == [("namespace-staged", "advisory")]
    prod = make_plan("dev", stack, policy_config=Path(__file__).parents[1] / "guardrails" / "config" / "prod.json")
    assert [(v.rule, v.level) for v in prod.guardrails.violations if v.rule.startswith("namespace-")] == [("namespace-staged", "mandatory")]
    assert not prod.ok


def test_policies_with_default_deny_off_in_a_namespace_not_labelled_staged_fail_namespace_default_deny(tmp_path, dev_config):
    from zerotrust.plan import policy_resources

    plan = make_plan("dev", write_stack(tmp_path, staged(dev_config, "backend"), "dev"))
    resources = policy_resources(plan.run)
    for r in resources:  # the label removed: as if someone set enableDefaultDeny off by hand to slip past
        if r.is_kubernetes and r.kind == "Namespace" and r.object_name == "backend":
            r.props["metadata"]["labels"][ENFORCEMENT_LABEL] = "enforced"
    report = g.evaluate(resources)
    rules = {v.rule for v in report.violations}
    assert "namespace-default-deny" in rules and "namespace-staged" not in rules


def test_staging_a_namespace_is_a_widening_the_base_diff_shows_and_enforcing_it_a_narrowing(dev_config):
    base, head = load_config(dev_config), load_config(staged(dev_config, "backend"))

    levels = g.stack_levels(None, "")

    def change(b, h):
        return [(c.path, c.change, c.before, c.after) for c in settings_.setting_changes(
            settings_.StackSettings(b, {}, {}, levels, ""), settings_.StackSettings(h, {}, {}, levels, "")) if c.path.endswith("enforcement")]

    assert change(base, head) == [(f"{PROJECT}:namespaces.backend.enforcement", "widened", "enforced", "staged")]
    assert change(head, base) == [(f"{PROJECT}:namespaces.backend.enforcement", "narrowed", "staged", "enforced")]
    everywhere = load_config(staged(dev_config, default="staged"))
    assert [c[:2] for c in change(base, everywhere)] == [
        (f"{PROJECT}:namespaces.backend.enforcement", "widened"), (f"{PROJECT}:namespaces.frontend.enforcement", "widened"),
        (f"{PROJECT}:zeroTrust.enforcement", "widened")]


def test_probes_in_a_staged_namespace_check_the_allow_side_only_and_say_why(dev_config):
    cfg = load_config(staged(dev_config, "backend"))
    ps = probes_.probes(cfg, render(cfg))
    assert [(p.flow, p.expect) for p in ps.probes if "backend" in p.flow] == [("frontend -> backend:80/TCP", "allow")]
    assert sum("backend is staged: default deny is off there, so a probe that must be refused proves nothing" in s for s in ps.skipped) == 4
    enforced = probes_.probes(load_config(dev_config), render(load_config(dev_config)))
    assert len(enforced.probes) - len(ps.probes) == 4


# -- the pre-flight ------------------------------------------------------------------------------------

SAFE_IMAGE = "mcr.microsoft.com/containernetworking/cilium/cilium:v1.17.7-250927"


def preflight(config: dict, image: str | None = SAFE_IMAGE, cilium_config: dict | None = None, cluster: tuple = (), *namespaces: str):
    cfg = load_config(staged(config, *namespaces))
    rendered = render(cfg)
    facts = staging.ClusterFacts({"enable-policy": "default"} if cilium_config is None else cilium_config, image, cluster)
    return staging.problems(staging.staged(cfg, rendered), rendered.policies(), facts)


def netpol(ns: str, **spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "team", "namespace": ns}, "spec": spec}


def test_staging_on_a_cilium_that_honours_it_with_no_other_policy_passes_the_preflight(dev_config):
    assert preflight(dev_config, SAFE_IMAGE, None, (), "backend") == []
    assert preflight(SHOP_CONFIG, "quay.io/cilium/cilium:v1.17.4@sha256:" + "a" * 64, None, (), "shop-core") == []


@pytest.mark.parametrize("image, cilium_config, says", [
    (SAFE_IMAGE, {}, None),
    (SAFE_IMAGE, {"enable-policy": "always"}, "cilium-config enable-policy is 'always': every pod is in default deny"),
    (SAFE_IMAGE, {"enable-non-default-deny-policies": "false"}, "enable-non-default-deny-policies is 'false': Cilium forces default deny on"),
    (SAFE_IMAGE, {"enable-non-default-deny-policies": "False"}, "enable-non-default-deny-policies is 'false'"),
    (None, {}, "the Cilium agent's image None names no version"),
    ("quay.io/cilium/cilium:latest", {}, "the Cilium agent's image 'quay.io/cilium/cilium:latest' names no version"),
    ("mcr.microsoft.com/oss/cilium/cilium:1.15.6-1", {}, "the cluster runs Cilium 1.15.6, whose policies have no enableDefaultDeny"),
    ("mcr.microsoft.com/oss/cilium/cilium:1.13.4", {}, "the cluster runs Cilium 1.13.4, which this tool does not know"),
], ids=["default enable-policy", "enable-policy always", "flag false", "flag False", "no agent", "no version", "1.15", "unknown"])
def test_the_preflight_refuses_staging_where_cilium_would_enforce_it_anyway(dev_config, image, cilium_config, says):
    found = preflight(dev_config, image, cilium_config, (), "backend")
    assert found == [] if says is None else (len(found) == 1 and found[0].startswith(says) or says in found[0]), found


def test_without_cilium_config_staging_is_refused_for_want_of_knowing(dev_config):
    cfg = load_config(staged(dev_config, "backend"))
    found = staging.problems(staging.staged(cfg, render(cfg)), render(cfg).policies(), staging.ClusterFacts(None, SAFE_IMAGE))
    assert found == ["kube-system/cilium-config: not found, so how Cilium enforces cannot be read; staging backend is refused"]


@pytest.mark.parametrize("version, refused", [
    ("1.16.9", "needs 1.16.10 or later"), ("1.16.10", None), ("1.17.3", "needs 1.17.4 or later"), ("1.17.4", None), ("1.18.0", None),
])
def test_a_namespace_with_l7_or_dns_rules_is_staged_only_on_a_cilium_whose_l7_rules_then_drop_nothing(version, refused):
    found = preflight(SHOP_CONFIG, f"quay.io/cilium/cilium:v{version}", None, (), "shop-core")
    if refused is None:
        assert found == []
    else:
        assert found == [f"the cluster runs Cilium {version}, whose L7 rules still refuse the requests they do not match with default deny off "
                         f"(cilium/cilium#38676): staging shop-core (L7 or DNS rules) {refused}"]


def test_the_shops_namespaces_with_http_or_dns_rules_are_the_ones_the_l7_check_concerns():
    cfg = load_config(staged(SHOP_CONFIG, default="staged"))
    by_name = {n.name: n for n in staging.staged(cfg, render(cfg))}
    assert set(by_name) == set(cfg.namespaces) and all(n.l7 for n in by_name.values())  # the shop's ACNS FQDN proxy: DNS rules everywhere
    dev = load_config(staged(stack_config(Path(__file__).parents[1] / "Pulumi.dev.yaml"), "backend"))
    (backend,) = staging.staged(dev, render(dev))
    assert not backend.l7 and backend.pods == (("backend", pod_labels("backend", dev.workloads["backend"])),)


def test_another_policy_that_puts_staged_pods_in_default_deny_refuses_staging_and_one_elsewhere_does_not(dev_config):
    team = netpol("backend", podSelector={}, policyTypes=["Ingress"])
    found = preflight(dev_config, SAFE_IMAGE, None, (team,), "backend")
    assert found == [f"backend: ingress of backend/{who} is in default deny (by backend/networkpolicy/team): that still drops what it does not "
                     "allow while backend is staged; remove it or keep backend enforced" for who in ("stranger", "backend")]
    assert preflight(dev_config, SAFE_IMAGE, None, (netpol("frontend", podSelector={}, policyTypes=["Ingress"]),), "backend") == []


def test_the_clusters_copy_of_the_stacks_own_enforced_policies_does_not_refuse_the_staging_that_replaces_it(dev_config):
    live = render(load_config(dev_config)).policies()  # what the cluster holds before this update
    assert preflight(dev_config, SAFE_IMAGE, None, tuple(live), "backend") == []


def test_every_reason_is_reported_at_once(dev_config):
    found = preflight(dev_config, "mcr.microsoft.com/oss/cilium/cilium:1.15.6", {"enable-policy": "always"},
                      (netpol("backend", podSelector={}, policyTypes=["Egress"]),), "backend")
    # on 1.15 the staged policies themselves enforce (the field is pruned): both directions of both identities
    assert [line.split(":")[0] for line in found] == [
        "cilium-config enable-policy is 'always'", "the cluster runs Cilium 1.15.6, whose policies have no enableDefaultDeny (1.16 and later)",
        *["backend"] * 4]
    assert "(by backend/zt-default-deny, backend/networkpolicy/team)" in found[3]


def test_the_gate_raises_every_problem_as_one_error_and_returns_the_namespaces_it_cleared(dev_config):
    from components.staging_gate import StagingRefused, check

    cfg = load_config(staged(dev_config, "backend"))
    namespaces = [n.as_dict() for n in staging.staged(cfg, render(cfg))]
    assert check(lambda: staging.ClusterFacts({}, SAFE_IMAGE), namespaces, render(cfg).policies()) == ["backend"]
    with pytest.raises(StagingRefused, match=r"staging refused:\n  cilium-config enable-non-default-deny-policies is 'false'"):
        check(lambda: staging.ClusterFacts({"enable-non-default-deny-policies": "false"}, SAFE_IMAGE), namespaces, render(cfg).policies())


@pytest.mark.parametrize("image, version", [
    ("mcr.microsoft.com/containernetworking/cilium/cilium:v1.17.7-250927", (1, 17, 7)),
    ("mcr.microsoft.com/oss/cilium/cilium:1.14.19-1", (1, 14, 19)),
    ("quay.io/cilium/cilium:v1.18.2@sha256:" + "0" * 64, (1, 18, 2)),
    ("quay.io/cilium/cilium@sha256:" + "0" * 64, None),
])
def test_the_agents_version_is_read_from_its_image_tag(image, version):
    assert staging.image_version(image) == version


def test_a_staged_namespaces_policies_wait_for_the_staging_gate_and_the_others_do_not(dev_stack):
    from tests.conftest import with_config
    from zerotrust.mockrun import run_program

    run = run_program(with_config(dev_stack, **{f"{PROJECT}__namespaces": {"backend": {"enforcement": "staged"}}}))
    (gate,) = run.of_type("pulumi-python:dynamic/zero-trust-aks:CiliumStagingGate")
    (crd_gate,) = run.of_type("pulumi-python:dynamic/zero-trust-aks:CiliumCrdGate")
    policies = run.of_type("kubernetes:cilium.io/v2:CiliumNetworkPolicy")
    assert crd_gate.urn in gate.dependencies and [n["name"] for n in gate.inputs["staged"]] == ["backend"]
    assert {p.inputs["metadata"]["namespace"] for p in policies if gate.urn in p.dependencies} == {"backend"}
    assert not run_program(dev_stack).of_type("pulumi-python:dynamic/zero-trust-aks:CiliumStagingGate")


def test_the_gate_checks_again_whenever_the_staged_namespaces_their_rules_or_the_cluster_change():
    from components.staging_gate import _StagingGateProvider

    props = {"staged": [{"name": "backend"}], "policies": [{"kind": "CiliumNetworkPolicy"}], "kubeconfig": "a", "checked": ["backend"]}
    diff = _StagingGateProvider().diff
    assert not diff("id", props, {**props, "checked": None}).changes
    for key, value in (("staged", []), ("policies", []), ("kubeconfig", "b"), ("context", "kind")):
        result = diff("id", props, {**props, key: value})
        assert result.changes and result.replaces == [key]


def read_through_api(answers: dict, status: int = 404) -> tuple[list[str], staging.ClusterFacts]:
    """The gate's reader, the real Kubernetes client, against a stand-in API server answering ``answers`` by path
    (``status`` for any other): the paths asked, and what the reader made of the answers."""
    import http.server
    import json
    import threading

    from components.staging_gate import kube_reader

    asked: list[str] = []

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the handler's name)
            path = self.path.split("?")[0]
            asked.append(path)
            body = json.dumps(answers.get(path, {"kind": "Status", "code": status})).encode()
            self.send_response(200 if path in answers else status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kubeconfig = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}], "users": [{"name": "u", "user": {"token": "t"}}],
        })
        return asked, kube_reader(kubeconfig)()
    finally:
        server.shutdown()


def test_the_gate_reads_the_cluster_through_the_kubernetes_api_as_the_pre_flight_needs_it():
    team = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "team", "namespace": "backend"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    answers = {
        "/api/v1/namespaces/kube-system/configmaps/cilium-config": {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config"}, "data": {"enable-policy": "default"}},
        "/apis/apps/v1/namespaces/kube-system/daemonsets/cilium": {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "cilium"},
            "spec": {"selector": {"matchLabels": {"k8s-app": "cilium"}}, "template": {"spec": {"containers": [
                {"name": "mount-cgroup", "image": "busybox:1"}, {"name": "cilium-agent", "image": SAFE_IMAGE}]}}}},
        "/apis/cilium.io/v2/ciliumnetworkpolicies": {"items": []},
        "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies": {"items": [{"metadata": {"name": "c"}, "spec": {"endpointSelector": {}}}]},
        "/apis/networking.k8s.io/v1/networkpolicies": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicyList", "metadata": {},
                                                        "items": [team]},
    }
    asked, facts = read_through_api(answers)
    assert sorted(asked) == sorted(answers)
    assert (facts.cilium_config, facts.cilium_image) == ({"enable-policy": "default"}, SAFE_IMAGE)
    assert [(p["kind"], p["metadata"]["name"]) for p in facts.policies] == [("CiliumClusterwideNetworkPolicy", "c"), ("NetworkPolicy", "team")]
    assert facts.policies[1]["spec"] == team["spec"]


def test_a_cluster_without_cilium_reads_as_nothing_and_a_forbidden_read_is_one_line_naming_the_rights():
    from components.staging_gate import StagingRefused

    _, facts = read_through_api({})
    assert (facts.cilium_config, facts.cilium_image, facts.policies) == (None, None, ())
    with pytest.raises(StagingRefused, match=r"^staging refused: reading kube-system/cilium-config: the API server answered 403 .*needs get on "
                                             r"configmaps and daemonsets in kube-system and list on ciliumnetworkpolicies"):
        read_through_api({}, 403)
