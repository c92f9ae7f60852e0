"""``python -m zerotrust plan``: exit codes, written manifests, reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.conftest import rendered
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR


def stack_file(tmp_path: Path, mutate, base: str = "dev") -> Path:
    doc = yaml.safe_load((PROJECT_DIR / f"Pulumi.{base}.yaml").read_text())
    mutate(doc["config"])
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_plan_of_the_dev_stack_holds_and_exits_zero(capsys):
    assert main(["plan", "--stack", "dev", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["findings"] == []
    assert [f for f in doc["allowed"] if "kube-dns" not in f] == ["frontend -> backend:80/TCP"]


def test_the_command_in_its_own_interpreter_prints_and_writes_all_of_what_it_does_in_process(tmp_path, capsys):
    # As a command, the module leaves out the collector's start-up and exit passes: nothing of the output may go with them.
    import subprocess
    import sys

    args = ["plan", "--stack", "dev", "--format", "json"]
    run = subprocess.run([sys.executable, "-m", "zerotrust", *args, "--out", str(tmp_path / "a")], cwd=PROJECT_DIR,
                         capture_output=True, text=True, check=False)
    assert (run.returncode, run.stderr) == (0, "")
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert json.loads(run.stdout) == json.loads(capsys.readouterr().out)
    written = {p.relative_to(tmp_path / "a"): p.read_text() for p in (tmp_path / "a").rglob("*.yaml")}
    assert written and written == {p.relative_to(tmp_path / "b"): p.read_text() for p in (tmp_path / "b").rglob("*.yaml")}
    bad = subprocess.run([sys.executable, "-m", "zerotrust", "plan", "--stack", "nosuch"], cwd=PROJECT_DIR, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("error: ")


def test_plan_writes_one_yaml_file_per_kubernetes_object_in_a_stable_layout(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["plan", "--stack", "dev", "--out", str(out), "--format", "json"]) == 0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert "backend/CiliumNetworkPolicy-zt-allow.backend.yaml" in files
    assert "_cluster/Namespace-frontend.yaml" in files
    first = {f: (out / f).read_text() for f in files}
    assert main(["plan", "--stack", "dev", "--out", str(out), "--format", "json"]) == 0
    assert {f: (out / f).read_text() for f in files} == first
    policy = yaml.safe_load((out / "backend/CiliumNetworkPolicy-zt-default-deny.yaml").read_text())
    assert policy["spec"]["ingress"] == [{}]


def test_a_declared_flow_that_the_policies_deny_fails_the_plan(capsys, monkeypatch):
    from policies.render import rules as render

    original = render.ingress_rule

    def broken(cfg, f):  # a regression that forgets the namespace of the peer
        rule = original(cfg, f)
        del rule["fromEndpoints"][0]["matchLabels"][render.NS_LABEL]
        return rule

    monkeypatch.setattr(render, "ingress_rule", broken)
    assert main(["plan", "--stack", "dev", "--format", "json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["flow"] == "frontend -> backend:80/TCP"
    assert finding["message"].startswith("frontend -> backend:80/TCP is declared but denied: denied frontend/frontend -> backend/backend:80/TCP")
    assert "backend/zt-default-deny" in finding["message"]


def test_a_policy_that_allows_more_than_declared_fails_the_plan(tmp_path, capsys, monkeypatch):
    from policies.render import rules as render

    def too_wide(cfg, workload):  # a regression that drops the workload labels
        return {"matchLabels": {render.NS_LABEL: cfg.workloads[workload].namespace}}

    def ingress_only(config):  # egress is open, so the ingress side alone decides
        config["zero-trust-aks:zeroTrust"] = {"defaultDeny": "ingress"}

    path = stack_file(tmp_path, ingress_only)
    levels = tmp_path / "levels.json"  # ingress-only default deny is an explicit opt-out of the guardrail
    levels.write_text(json.dumps({"namespace-default-deny": "advisory", "aks-production-hardening": "disabled", "aks-api-server-restricted": "disabled"}))
    plan = ["plan", "--stack", "test", "--stack-file", str(path), "--policy-config", str(levels), "--format", "json"]
    assert main(plan) == 0
    capsys.readouterr()
    monkeypatch.setattr(render, "peer", too_wide)
    assert main(plan) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {f["flow"] for f in findings} == {"stranger@frontend -> backend:80/TCP"}
    assert "allowed but not declared" in findings[0]["message"]
    assert "allowed by backend/zt-allow.backend ingress[0]" in findings[0]["message"]


def test_a_broken_stack_file_prints_one_error_line_per_problem_and_exits_two(tmp_path, capsys):
    def break_it(config):
        config["zero-trust-aks:flows"][0]["to"] = "backnd"
        config["zero-trust-aks:flows"].append({"from": "ghost", "to": "backend"})

    out = tmp_path / "out"
    code = main(["plan", "--stack", "test", "--stack-file", str(stack_file(tmp_path, break_it)), "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err == [
        "error: zero-trust-aks:flows[0].to: 'backnd' is neither a workload nor a peer; workloads are: backend, frontend",
        "error: zero-trust-aks:flows[1].from: 'ghost' is neither a workload nor a peer; workloads are: backend, frontend",
    ]
    assert not out.exists()


def test_a_structurally_broken_stack_file_is_reported_before_cross_references(tmp_path, capsys):
    def break_it(config):
        config["zero-trust-aks:cluster"]["nodeCount"] = 0
        config["zero-trust-aks:workloads"]["backend"]["port"] = "eighty"

    assert main(["plan", "--stack", "test", "--stack-file", str(stack_file(tmp_path, break_it))]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: zero-trust-aks:cluster.nodeCount: 0 is too small; at least 1",
        "error: zero-trust-aks:workloads.backend.port: must be a whole number, not a string 'eighty'",
    ]


def test_an_unknown_stack_names_the_stacks_there(capsys):
    assert main(["plan", "--stack", "staging"]) == 2
    assert capsys.readouterr().err.strip() == "error: Pulumi.staging.yaml: no such stack file; stacks here: dev, local, prod"


def test_the_markdown_report_carries_the_verdict_and_a_mermaid_graph(capsys):
    assert main(["plan", "--stack", "dev", "--format", "markdown"]) == 0
    report = capsys.readouterr().out
    assert "**Declared flows == enforced flows: holds**" in report
    assert "```mermaid" in report and '-->|80/TCP|' in report


def test_base_prints_the_connectivity_diff(tmp_path, capsys):
    def add_reverse_flow(config):
        config["zero-trust-aks:flows"].append({"from": "backend", "to": "frontend"})

    head = stack_file(tmp_path, add_reverse_flow)
    base = PROJECT_DIR / "Pulumi.dev.yaml"
    assert main(["plan", "--stack", "dev", "--stack-file", str(head), "--base", str(base), "--format", "json"]) == 0
    diff = json.loads(capsys.readouterr().out)["diff"]
    assert (diff["newlyAllowed"], diff["noLongerAllowed"]) == (["backend -> frontend:80/TCP"], [])
    assert diff["objects"] == [
        "backend/CiliumNetworkPolicy-zt-allow.backend.yaml",
        "frontend/CiliumNetworkPolicy-zt-allow.frontend.yaml",
        "frontend/Service-frontend.yaml",
        "zt-probes/CiliumNetworkPolicy-zt-allow.ingress-prober.yaml",  # the prober now checks frontend's ingress too
    ]
    assert {(c["change"], c["policy"], c["flow"]) for c in diff["rules"]} == {
        ("added", "backend/zt-allow.backend", "backend -> frontend:80/TCP"),
        ("added", "frontend/zt-allow.frontend", "backend -> frontend:80/TCP"),
        ("added", "zt-probes/zt-allow.ingress-prober", "ingress-prober -> frontend:80/TCP"),
    }


def test_the_text_report_shows_the_tree_the_matrix_and_masks_the_kubeconfig(capsys):
    assert main(["plan", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert "zero-trust-aks:azure:AksCluster  aks-zero-trust" in out
    assert "kubeconfig [secret]" in out and "clusterUser" not in out
    assert "declared flows == enforced flows: holds" in out


def test_plan_refuses_to_clear_a_directory_it_did_not_write(tmp_path, capsys):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    assert main(["plan", "--stack", "dev", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --out {tmp_path}: exists and is not the output of an earlier plan; choose a new or empty directory"
    )
    assert keep.read_text() == "mine"


# -- guardrails ------------------------------------------------------------------------------------------


def test_plan_fails_on_a_mandatory_guardrail_naming_the_rule_and_the_resource(tmp_path, capsys):
    def root_backend(config):  # valid config, but prod's levels make workload hardening mandatory
        config["zero-trust-aks:workloads"]["backend"].update(image="nginx:1.27", port=80, securityProfile="baseline")
        for key in ("runAsUser", "runAsGroup"):
            config["zero-trust-aks:workloads"]["backend"].pop(key)

    path = stack_file(tmp_path, root_backend, base="prod")
    assert main(["plan", "--stack", "prod", "--stack-file", str(path)]) == 1
    out = capsys.readouterr().out
    assert "mandatory workload-non-root: Deployment backend/backend: container 'backend' may run as root" in out
    assert "declared flows == enforced flows: holds" in out and "guardrails: FAIL" in out


def test_a_stack_without_a_levels_file_gets_every_rule_at_its_default_level_and_is_told_which_file_to_add(tmp_path, capsys):
    path = stack_file(tmp_path, lambda config: None)
    assert main(["plan", "--stack", "staging", "--stack-file", str(path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)["guardrails"]
    assert doc["levels"] == "the rules' default (production) levels: add guardrails/config/staging.json to set this stack's own"
    assert {v["rule"] for v in doc["violations"] if v["level"] == "mandatory"} == {"aks-production-hardening", "aks-api-server-restricted"}


def test_a_bad_levels_file_prints_one_line_per_problem_and_exits_two(tmp_path, capsys):
    levels = tmp_path / "levels.json"
    levels.write_text(json.dumps({"no-such-rule": "mandatory", "no-broad-peers": "off"}))
    assert main(["plan", "--stack", "dev", "--policy-config", str(levels)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"error: {levels}: no-such-rule: not a guardrail; the guardrails are: all, ")
    assert err[1] == f"error: {levels}: no-broad-peers.enforcementLevel: 'off' is not allowed; allowed: mandatory, advisory, disabled"


def test_the_markdown_report_lists_the_guardrail_verdicts(capsys):
    assert main(["plan", "--stack", "dev", "--format", "markdown"]) == 0
    report = rendered(capsys.readouterr().out)
    assert "Guardrails: pass" in report
    assert "excepted workload-non-root: Deployment backend/backend: the walkthrough's stock nginx image" in report
    assert "(owner platform-team@example.com, until 2027-05-31)" in report


def readme_sample() -> list[str]:
    text = (PROJECT_DIR / "README.md").read_text()
    block = text.split("The end of `make plan`'s output:\n\n```\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def test_the_readme_shows_the_end_of_make_plans_output_as_it_is(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "--stack", "dev", "--out", "out/dev"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\d+ resources; outputs", line))
    assert [line.rstrip() for line in lines[start:]] == [line.rstrip() for line in readme_sample()]


def test_piped_output_is_100_columns_wide_unless_columns_says_otherwise(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    main(["plan", "--stack", "shop", "--stack-file", str(PROJECT_DIR / "examples" / "Pulumi.shop.yaml")])
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 100
    monkeypatch.setenv("COLUMNS", "60")
    main(["plan", "--stack", "shop", "--stack-file", str(PROJECT_DIR / "examples" / "Pulumi.shop.yaml")])
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 60


def test_the_matrix_list_names_each_workloads_namespace(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    main(["plan", "--stack", "shop", "--stack-file", str(PROJECT_DIR / "examples" / "Pulumi.shop.yaml")])
    out = capsys.readouterr().out
    assert "shop-core/worker -> shop-data/redis:6379/TCP, kube-system/kube-dns:53/UDP" in out.replace("\n", " ").replace("  ", " ")


def test_the_text_output_summarises_the_outputs_and_json_carries_them_whole(capsys):
    main(["plan", "--stack", "dev"])
    out = capsys.readouterr().out
    summary = out[out.index("resources; outputs"):out.index("\n      Connectivity (")].replace("\n", " ")
    assert "ciliumPolicies (3 entries)" in summary and "kubeconfig [secret]" in summary and "zt-allow" not in summary
    main(["plan", "--stack", "dev", "--format", "json"])
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert outputs["ciliumPolicies"]["backend"] == ["zt-default-deny", "zt-allow.backend"] and outputs["kubeconfig"] == "[secret]"
