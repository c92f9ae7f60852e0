"""Generated names never collide, and a plan fails where the real engine or API server would."""

from __future__ import annotations

import copy
import json


from tests.test_plan_cli import stack_file
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

LEVELS = PROJECT_DIR / "guardrails" / "config" / "dev.json"


def plan_json(tmp_path, change, capsys) -> tuple[int, dict]:
    """The JSON plan of the dev stack changed by ``change``, at dev's guardrail levels."""
    path = stack_file(tmp_path, change)
    code = main(["plan", "--stack", "test", "--stack-file", str(path), "--format", "json", "--policy-config", str(LEVELS)])
    return code, json.loads(capsys.readouterr().out)


def lookalike_flows(config):
    """Workloads a, a-to, b, to-b in one namespace; flows a-to -> b and a -> to-b read alike with dashes."""
    template = config["zero-trust-aks:workloads"]["backend"]
    config["zero-trust-aks:workloads"] = {n: {**copy.deepcopy(template), "namespace": "shop"} for n in ("a", "a-to", "b", "to-b")}
    config["zero-trust-aks:flows"] = [{"from": "a-to", "to": "b"}, {"from": "a", "to": "to-b"}]


def test_flows_whose_names_read_alike_with_dashes_get_distinct_policies_and_probes(tmp_path, capsys):
    code, doc = plan_json(tmp_path, lookalike_flows, capsys)
    assert code == 0, doc
    jobs = [r["name"] for r in doc["resources"] if r["type"] == "kubernetes:batch/v1:Job"]
    policies = [r["name"] for r in doc["resources"] if r["type"] == "kubernetes:cilium.io/v2:CiliumNetworkPolicy"]
    assert len(jobs) == len(set(jobs)) == 4  # one per source identity: a, a-to, the stranger of shop, the ingress prober
    assert sorted(p for p in policies if not p.startswith("zt-probes-")) == [
        "shop-zt-allow.a", "shop-zt-allow.a-to", "shop-zt-allow.b", "shop-zt-allow.to-b", "shop-zt-default-deny"]


def test_a_workload_named_like_a_namespaces_stranger_gets_its_own_probe(tmp_path, capsys):
    def change(config):
        workloads = config["zero-trust-aks:workloads"]
        workloads["stranger-frontend"] = {**copy.deepcopy(workloads["frontend"]), "namespace": "frontend"}
        config["zero-trust-aks:flows"].append({"from": "stranger-frontend", "to": "backend"})

    code, doc = plan_json(tmp_path, change, capsys)
    assert code == 0, doc
    jobs = [r["name"] for r in doc["resources"] if r["type"] == "kubernetes:batch/v1:Job"]
    assert len(jobs) == len(set(jobs)) and sum("zt-probe-stranger-frontend-" in j for j in jobs) == 2


def test_a_plan_fails_on_two_resources_with_one_urn_as_the_engine_would(tmp_path, capsys, monkeypatch):
    from policies.render import rules as render

    monkeypatch.setattr(render, "policy_name", lambda role, *fields: role)  # a regression: every flow policy one name
    code, doc = plan_json(tmp_path, lookalike_flows, capsys)
    assert code == 2 and doc["ok"] is False
    assert any(line.startswith("duplicate resource URN urn:pulumi:test::zero-trust-aks::") for line in doc["errors"]), doc
    assert any("CiliumNetworkPolicy shop/zt-allow is declared by two resources" in line for line in doc["errors"]), doc


def test_policy_names_split_back_into_their_fields_one_way_only(dev_config):
    from policies.config import load_config
    from policies.render import render

    lookalike_flows(dev_config)
    names = [p["metadata"]["name"] for p in render(load_config(dev_config)).policies() if "." in p["metadata"]["name"]]
    assert sorted(tuple(n.split(".")) for n in names) == [("zt-allow", w) for w in ("a", "a-to", "b", "to-b")]
