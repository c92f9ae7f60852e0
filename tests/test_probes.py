"""Connectivity probes (policies/probes.py): generated from the flows, valid, safe, and a decision table that tells a drop from the rest."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess

import kubernetes_validate
import pytest

from policies import guardrails as g
from policies.config import PROBE_IMAGE, load_config
from policies.analysis.probes import (
    OUTCOMES,
    PROBE_LABEL,
    agrees,
    job,
    outcome,
    parse_results,
    probe_script,
    probes,
)
from policies.render import render, selector_labels


def probe_set(config):
    cfg = load_config(config)
    return cfg, probes(cfg, render(cfg))


@pytest.fixture
def three_namespaces(dev_config):
    """frontend and api in `web`, backend in `data`, a worker in `jobs`; three flows."""
    c = copy.deepcopy(dev_config)
    w = c["zero-trust-aks:workloads"]
    w["frontend"]["namespace"] = "web"
    w["api"] = {**w["backend"], "namespace": "web", "port": 8080}
    w["worker"] = {**w["backend"], "namespace": "jobs"}
    w["backend"]["namespace"] = "data"
    c["zero-trust-aks:flows"] = [
        {"from": "frontend", "to": "api"},
        {"from": "api", "to": "backend"},
        {"from": "worker", "to": "backend"},
    ]
    return c


# -- which probes ------------------------------------------------------------------------------------


def test_the_dev_stack_probes_the_declared_flow_its_deny_counterparts_the_targets_ingress_and_the_way_out(dev_config):
    _, ps = probe_set(dev_config)
    assert {(p.flow, p.expect, p.namespace, p.proves) for p in ps.probes} == {
        ("frontend -> backend:80/TCP", "allow", "frontend", "both sides"),
        ("stranger@frontend -> backend:80/TCP", "deny", "frontend", "egress of frontend"),
        ("stranger@backend -> backend:80/TCP", "deny", "backend", "egress of backend"),
        ("ingress-prober@zt-probes -> backend:80/TCP", "deny", "zt-probes", "ingress of backend"),
        ("stranger@frontend -> outside 1.1.1.1:443/TCP", "deny", "frontend", "egress of frontend"),
        ("stranger@backend -> outside 1.1.1.1:443/TCP", "deny", "backend", "egress of backend"),
    }


# -- the ingress prober ----------------------------------------------------------------------------------------------


def without_ingress_of(policies: list[dict], target_ns: str) -> list[dict]:
    """The policies as a cluster would enforce them if the target namespace's ingress rules did not apply
    (a pruned field, a policy Cilium refused): ingress sections dropped there."""
    out = []
    for p in policies:
        if p["metadata"].get("namespace") == target_ns:
            p = copy.deepcopy(p)
            p["spec"].pop("ingress", None)
            p["spec"].pop("ingressDeny", None)
            if not any(k in p["spec"] for k in ("egress", "egressDeny")):
                continue
        out.append(p)
    return out


def test_a_target_whose_ingress_is_not_enforced_is_caught_by_the_ingress_prober_and_by_no_other_probe(dev_config):
    from policies.analysis.probes import prober_namespace
    from policies.verdict import Endpoint, decide

    cfg, ps = probe_set(dev_config)
    live = without_ingress_of(render(cfg).policies() + list(prober_namespace(cfg).policies), "backend")

    def observed(p) -> str:
        src = Endpoint(p.namespace, p.labels, name=p.who)
        dst = Endpoint("backend", {"app": "backend"}, name="backend")
        return "allow" if decide(live, src, dst, 80).allowed else "deny"

    to_backend = [p for p in ps.probes if p.target == "backend"]
    caught = [p.who for p in to_backend if observed(p) != p.expect]
    assert caught == ["ingress-prober@zt-probes"]  # every stranger is stopped by its own egress first


def test_the_prober_namespace_allows_egress_to_each_probed_target_on_its_ports_and_nothing_else(dev_config, cnp_schema):
    from policies.analysis.probes import prober_namespace
    from tests.conftest import schema_errors

    cfg = load_config(dev_config)
    ns = prober_namespace(cfg)
    assert ns.name == "zt-probes" and ns.namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deny, allow = ns.policies
    assert deny["spec"]["ingress"] == [{}] and allow["spec"]["endpointSelector"] == {"matchLabels": {"zero-trust-aks/prober": "ingress"}}
    assert allow["spec"]["egress"] == [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "backend", "app": "backend"}}],
                                        "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}]
    assert "ingress" not in allow["spec"] and all(schema_errors(cnp_schema, p) == [] for p in ns.policies)


def test_no_prober_namespace_without_probes(dev_config):
    from policies.analysis.probes import prober_namespace

    dev_config["zero-trust-aks:zeroTrust"] = {"verify": False}
    assert prober_namespace(load_config(dev_config)) is None


def test_the_probe_namespace_must_be_the_stacks_alone(dev_config):
    from tests.conftest import errors_of

    dev_config["zero-trust-aks:zeroTrust"] = {"probeNamespace": "backend"}
    assert errors_of(dev_config) == [
        "zero-trust-aks:zeroTrust.probeNamespace: 'backend' holds workloads or peers; the probe namespace is the stack's alone"
    ]
    dev_config["zero-trust-aks:zeroTrust"] = {"probeNamespace": "kube-system"}
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:zeroTrust.probeNamespace: 'kube-system' is managed by Kubernetes or AKS")


def test_a_stranger_reaching_outside_the_cluster_is_expected_to_time_out_because_of_egress_default_deny(dev_config):
    _, ps = probe_set(dev_config)
    (p,) = [p for p in ps.probes if p.flow == "stranger@backend -> outside 1.1.1.1:443/TCP"]
    assert (p.host, p.port, p.target, p.expect) == ("1.1.1.1", 443, None, "deny")
    assert p.reason.startswith("egress of backend/stranger is in default deny (by backend/zt-default-deny")


def test_the_outside_probe_follows_its_config_and_is_skipped_without_egress_default_deny(dev_config):
    dev_config["zero-trust-aks:zeroTrust"] = {"outsideProbeAddress": "9.9.9.9", "outsideProbePort": 80}
    _, ps = probe_set(dev_config)
    assert {p.host for p in ps.probes if p.target is None} == {"9.9.9.9"}
    dev_config["zero-trust-aks:zeroTrust"] = {"defaultDeny": "ingress", "verify": False}
    _, ps = probe_set(dev_config)
    assert not [p for p in ps.probes if p.target is None]
    assert "outside the cluster: not probed, egress is not in default deny (zeroTrust.defaultDeny: ingress)" in ps.skipped


def test_every_declared_flow_and_every_deny_counterpart_has_a_probe(three_namespaces):
    cfg, ps = probe_set(three_namespaces)
    by_flow = {p.flow: p for p in ps.probes}
    for f in cfg.flows:
        src = cfg.workloads[f.source]
        p = by_flow[f"{f.source} -> {f.to}:{cfg.workloads[f.to].port}/TCP"]
        assert (p.expect, p.declared, p.namespace, p.labels) == ("allow", True, src.namespace, selector_labels(f.source))
        assert p.host == f"{f.to}.{cfg.workloads[f.to].namespace}.svc"
    for target in {f.to for f in cfg.flows}:
        port = cfg.workloads[target].port
        sources = {cfg.workloads[f.source].namespace for f in cfg.flows if f.to == target}
        strangers = {p.namespace for p in ps.probes if p.flow.startswith("stranger@") and p.flow.endswith(f"> {target}:{port}/TCP")}
        assert sources < strangers, target  # each source namespace, plus another managed namespace
        assert all(by_flow[f"stranger@{ns} -> {target}:{port}/TCP"].expect == "deny" for ns in strangers)
        assert all(by_flow[f"stranger@{ns} -> {target}:{port}/TCP"].labels == {} for ns in strangers)


def test_the_other_managed_namespace_is_not_the_targets_own_when_there_is_a_choice(three_namespaces):
    _, ps = probe_set(three_namespaces)
    api = {p.namespace for p in ps.probes if p.flow.startswith("stranger@") and "> api:" in p.flow}
    assert api == {"web", "data"}  # the source namespace, then the first other one that is not api's


def test_udp_flows_are_skipped_with_the_reason(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["protocol"] = "UDP"
    dev_config["zero-trust-aks:flows"][0]["protocol"] = "UDP"
    _, ps = probe_set(dev_config)
    assert [p for p in ps.probes if p.target is not None] == []
    assert ps.skipped == ("frontend -> backend:80/UDP: UDP is not probed (a drop and a silent server look the same)",)


def test_expectations_come_from_the_verdict_engine_not_from_the_flow_list(dev_config, monkeypatch):
    from policies.render import rules as r

    original = r.ingress_rule

    def broken(cfg, f):  # the peer lost its namespace: the declared flow is in fact denied
        rule = original(cfg, f)
        del rule["fromEndpoints"][0]["matchLabels"][r.NS_LABEL]
        return rule

    monkeypatch.setattr(r, "ingress_rule", broken)
    _, ps = probe_set(dev_config)
    (declared,) = [p for p in ps.probes if p.declared]
    assert declared.expect == "deny" and "backend/zt-default-deny" in declared.reason


# -- the Job ---------------------------------------------------------------------------------------------


def test_probe_jobs_validate_against_the_kubernetes_schemas(three_namespaces):
    cfg, ps = probe_set(three_namespaces)
    for grp in ps.groups:
        kubernetes_validate.validate(job(grp, cfg.zero_trust.probe_image), "1.33", strict=True)


def test_one_job_runs_every_check_of_one_source_identity(three_namespaces):
    _, ps = probe_set(three_namespaces)
    by_who = {grp.who: grp for grp in ps.groups}
    assert len(ps.groups) == len({(p.namespace, p.who) for p in ps.probes}) < len(ps.probes)
    web = by_who["stranger@web"]
    assert {p.flow for p in web.probes} == {p.flow for p in ps.probes if p.who == "stranger@web"}
    assert len(web.probes) > 1


def test_a_probe_borrows_only_the_selector_labels_and_gets_no_token_and_no_service_traffic(dev_config):
    cfg, ps = probe_set(dev_config)
    (grp,) = [grp for grp in ps.groups if grp.who == "frontend"]
    j = job(grp, cfg.zero_trust.probe_image)
    pod = j["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "frontend", PROBE_LABEL: grp.name}
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["containers"][0]["readinessProbe"]["exec"]["command"] == ["/bin/false"]
    assert "ttlSecondsAfterFinished" not in j["spec"] and j["spec"]["backoffLimit"] == 0  # no refresh drift
    assert spec["containers"][0]["image"] == PROBE_IMAGE and "@sha256:" in PROBE_IMAGE


def test_probe_jobs_pass_every_guardrail_at_production_levels(dev_config):
    cfg, ps = probe_set(dev_config)
    resources = [g.Resource("kubernetes:batch/v1:Job", grp.name, job(grp, cfg.zero_trust.probe_image)) for grp in ps.groups]
    assert g.evaluate(resources, {r.name: "mandatory" for r in g.RULES}).violations == ()


def test_job_names_are_dns_labels_that_change_when_their_target_workload_changes(dev_config, three_namespaces):
    _, before = probe_set(dev_config)
    _, again = probe_set(copy.deepcopy(dev_config))
    dev_config["zero-trust-aks:workloads"]["backend"]["replicas"] = 2
    _, after = probe_set(dev_config)
    assert [grp.name for grp in before.groups] == [grp.name for grp in again.groups]
    renamed = {grp.who for grp, other in zip(before.groups, after.groups) if grp.name != other.name}
    assert renamed == {grp.who for grp in before.groups if any(p.target == "backend" for p in grp.probes)}
    for grp in before.groups + probe_set(three_namespaces)[1].groups:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", grp.name), grp.name


def test_long_workload_names_still_give_a_63_character_job_name(dev_config):
    long = "a" * 60
    w = dev_config["zero-trust-aks:workloads"]
    w[long] = w.pop("frontend")
    dev_config["zero-trust-aks:flows"][0]["from"] = long
    _, ps = probe_set(dev_config)
    assert all(len(grp.name) <= 63 for grp in ps.groups)


# -- the decision table ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "curl_exit, time_connect, observed",
    [
        (0, "0.002", "connected"),
        (52, "0.002", "connected"),
        (56, "0.002", "connected"),
        (28, "0.000000", "timeout"),
        (28, "0.004", "connected"),  # connected, then the server never answered: not a drop
        (6, "0.000000", "dns-failure"),
        (7, "0.000000", "refused"),
        (35, "0.003", "error"),
    ],
)
def test_a_curl_result_is_classified_by_exit_code_and_whether_it_connected(curl_exit, time_connect, observed):
    assert outcome(curl_exit, time_connect) == observed


@pytest.mark.parametrize("observed, allow, deny", [("connected", True, False), ("timeout", False, True), ("dns-failure", False, False), ("refused", False, False)])
def test_only_a_connection_proves_an_allow_and_only_a_timeout_proves_a_drop(observed, allow, deny):
    assert (agrees("allow", observed), agrees("deny", observed)) == (allow, deny)


def run_script(tmp_path, curl_exit: int, time_connect: str, checks: list[str]) -> tuple[int, dict[str, dict[str, str]]]:
    """The generated script under a real POSIX shell, with a stand-in curl."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "curl"
    fake.write_text(f"#!/bin/sh\nprintf '%s' '{time_connect}'\nexit {curl_exit}\n")
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CHECKS": "\n".join(checks),
        "CONNECT_TIMEOUT": "1",
        "MAX_TIME": "1",
        "ATTEMPTS": "2",
        "INTERVAL": "0",
    }
    out = subprocess.run(["sh", "-c", probe_script()], env=env, capture_output=True, text=True, timeout=30)
    return out.returncode, parse_results(out.stdout)


FLOW = "frontend -> backend:80/TCP"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize("curl_exit", sorted(OUTCOMES) + [35])
@pytest.mark.parametrize("time_connect", ["0.000000", "0.004"])
def test_the_probe_script_agrees_with_the_decision_table(tmp_path, curl_exit, time_connect):
    observed = outcome(curl_exit, time_connect)
    for expect in ("allow", "deny"):
        code, results = run_script(tmp_path, curl_exit, time_connect, [f"{FLOW}|{expect}|backend.backend.svc|80"])
        result = results[FLOW]
        assert (result["observed"], result["expect"], result["curl_exit"]) == (observed, expect, str(curl_exit))
        assert code == (0 if agrees(expect, observed) else 1)
        assert result["attempts"] == ("1" if agrees(expect, observed) else "2")  # retries until it sees what it expects


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_one_job_reports_every_check_and_fails_when_any_disagrees(tmp_path):
    checks = ["a -> b:80/TCP|deny|b.b.svc|80", "a -> c:8080/TCP|allow|c.c.svc|8080", "a -> d:443/TCP|deny|d.d.svc|443"]
    code, results = run_script(tmp_path, 28, "0.000000", checks)  # every connection times out
    assert {flow: r["observed"] for flow, r in results.items()} == {
        "a -> b:80/TCP": "timeout", "a -> c:8080/TCP": "timeout", "a -> d:443/TCP": "timeout"
    }
    assert code == 1  # the allow check saw a drop
    code, _ = run_script(tmp_path, 28, "0.000000", [checks[0], checks[2]])
    assert code == 0


def test_result_lines_parse_by_flow_with_the_quoted_flow():
    log = 'noise\nzero-trust-aks probe: flow="a -> b:80/TCP" expect=deny observed=timeout curl_exit=28 attempts=1 seconds=5\n'
    assert parse_results(log) == {
        "a -> b:80/TCP": {"flow": "a -> b:80/TCP", "expect": "deny", "observed": "timeout", "curl_exit": "28", "attempts": "1", "seconds": "5"}
    }
    assert parse_results("no result here") == {}


def test_changing_one_flow_of_the_benchmark_stack_renames_only_the_jobs_it_can_affect():
    from benchmarks.run import stack_config

    def plan(config):
        cfg = load_config(config)
        rendered = render(cfg)
        policies = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in rendered.policies()}
        return {grp.resource_name: grp for grp in probes(cfg, rendered).groups}, policies

    config = stack_config(50, 10)
    before, old = plan(config)
    config["zero-trust-aks:flows"][0]["to"] = "w0011"  # w0000 -> w0001 becomes w0000 -> w0011
    after, new = plan(config)
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    assert changed == {("ns000", "zt-allow.w0000"), ("ns001", "zt-allow.w0001"), ("ns001", "zt-allow.w0011")}
    kept = before.keys() & after.keys()
    renamed = {k for k in kept if before[k].name != after[k].name}
    # renamed exactly when a check's verdict inputs changed: a policy selecting either end, or the checks themselves
    affected = {
        k for k in kept
        if (set(before[k].policies) | set(after[k].policies)) & changed or before[k].probes != after[k].probes
    }
    assert renamed == affected
    assert 0 < len(renamed) < len(kept) / 2  # most Jobs stay as they are


def test_the_plan_lists_each_check_with_the_side_it_proves(capsys):
    from zerotrust.__main__ import main

    main(["plan", "--stack", "dev", "--format", "json"])
    checks = json.loads(capsys.readouterr().out)["probes"]["checks"]
    assert {"flow": "ingress-prober@zt-probes -> backend:80/TCP", "expect": "deny", "proves": "ingress of backend",
            "namespace": "zt-probes"} in checks
    assert {c["proves"] for c in checks if c["flow"].startswith("stranger@")} == {"egress of frontend", "egress of backend"}
