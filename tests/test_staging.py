"""Staged enforcement: a namespace's policies with default deny off, judged as enforced, reported as staged."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from policies import guardrails as g
from policies.analysis import probes as probes_
from policies.analysis.review import settings as settings_
from policies.config import PROJECT, load_config
from policies.render import DEFAULT_ALLOW, ENFORCEMENT_LABEL, as_enforced, render
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
