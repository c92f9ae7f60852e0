"""plan --base: "no change" means no change. Every setting that changes what runs or what is proven
is reported, as widened, narrowed or changed, in text, markdown and JSON."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml

from tests.conftest import rendered
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

P = "zero-trust-aks"
OTHER_IMAGE = "curlimages/curl:8.12.0@sha256:" + "a" * 64


def base_checkout(tmp_path):
    """The base branch as CI checks it out: the stack file, the guardrail levels, the exceptions."""
    base = tmp_path / "base"
    (base / "guardrails" / "config").mkdir(parents=True)
    shutil.copy(PROJECT_DIR / "Pulumi.prod.yaml", base)
    shutil.copy(PROJECT_DIR / "guardrails" / "config" / "prod.json", base / "guardrails" / "config")
    shutil.copy(PROJECT_DIR / "guardrails" / "exceptions.yaml", base / "guardrails")
    return base


def head_files(tmp_path, base, edit_config=None, edit_levels=None, edit_exceptions=None) -> list[str]:
    head = tmp_path / "head"
    head.mkdir()
    stack = yaml.safe_load((base / "Pulumi.prod.yaml").read_text())
    levels = json.loads((base / "guardrails" / "config" / "prod.json").read_text())
    exceptions = yaml.safe_load((base / "guardrails" / "exceptions.yaml").read_text())
    for edit, doc in ((edit_config, stack["config"]), (edit_levels, levels), (edit_exceptions, exceptions)):
        if edit:
            edit(doc)
    (head / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack))
    (head / "prod.json").write_text(json.dumps(levels))
    (head / "exceptions.yaml").write_text(yaml.safe_dump(exceptions))
    return ["--stack-file", str(head / "Pulumi.prod.yaml"), "--policy-config", str(head / "prod.json"),
            "--exceptions", str(head / "exceptions.yaml")]


def settings_diff(tmp_path, capsys, **edits) -> list[dict]:
    base = base_checkout(tmp_path)
    args = ["plan", "--stack", "prod", *head_files(tmp_path, base, **edits), "--base", str(base), "--format", "json"]
    main(args)
    return json.loads(capsys.readouterr().out)["diff"]["settings"]


def cluster(key, value):
    return lambda c: c[f"{P}:cluster"].__setitem__(key, value)


def zero_trust(key, value):
    return lambda c: c.setdefault(f"{P}:zeroTrust", {}).__setitem__(key, value)


CASES = [
    ("probe image", dict(edit_config=zero_trust("probeImage", OTHER_IMAGE)), f"{P}:zeroTrust.probeImage", "changed"),
    ("verify off", dict(edit_config=zero_trust("verify", False)), f"{P}:zeroTrust.verify", "widened"),
    ("default deny ingress only", dict(edit_config=zero_trust("defaultDeny", "ingress")), f"{P}:zeroTrust.defaultDeny", "widened"),
    ("a subscription", dict(edit_config=lambda c: c.__setitem__("azure-native:subscriptionId", "4b2c8f1e-0000-4c6b-8e7f-1a2b3c4d5e6f")),
     "azure-native:subscriptionId", "added"),
    ("a kubernetes provider key", dict(edit_config=lambda c: c.__setitem__("kubernetes:context", "other")), "kubernetes:context", "added"),
    ("a pulumi key", dict(edit_config=lambda c: c.__setitem__("pulumi:disable-default-providers", ["*"])),
     "pulumi:disable-default-providers", "added"),
    ("a wider authorized range", dict(edit_config=cluster("authorizedIpRanges", ["203.0.0.0/16"])), f"{P}:cluster.authorizedIpRanges", "widened"),
    ("a narrower authorized range", dict(edit_config=cluster("authorizedIpRanges", ["203.0.113.0/25"])), f"{P}:cluster.authorizedIpRanges", "narrowed"),
    ("local accounts on", dict(edit_config=cluster("disableLocalAccounts", False)), f"{P}:cluster.disableLocalAccounts", "widened"),
    ("the acns level", dict(edit_config=lambda c: c[f"{P}:cluster"]["advancedNetworking"].__setitem__("security", "fqdn")),
     f"{P}:cluster.advancedNetworking.security", "changed"),
    ("the kubernetes version", dict(edit_config=cluster("kubernetesVersion", "1.34")), f"{P}:cluster.kubernetesVersion", "changed"),
    ("defender off", dict(edit_config=cluster("defender", False)), f"{P}:cluster.defender", "widened"),
    ("run command on", dict(edit_config=cluster("disableRunCommand", False)), f"{P}:cluster.disableRunCommand", "widened"),
    ("a lower guardrail level", dict(edit_levels=lambda d: d.__setitem__("workload-non-root", "advisory")),
     "guardrails/config/prod.json: workload-non-root.enforcementLevel", "widened"),
    ("a rule that now takes exceptions", dict(edit_levels=lambda d: d["no-broad-peers"].pop("exceptable")),
     "guardrails/config/prod.json: no-broad-peers.exceptable", "widened"),
    ("a wider breadth limit", dict(edit_levels=lambda d: d["no-broad-peers"].__setitem__("publicIpv4Limit", "/8")),
     "guardrails/config/prod.json: no-broad-peers.publicIpv4Limit", "widened"),
    ("a new exception", dict(edit_exceptions=lambda d: d["exceptions"].append({
        "rule": "workload-resource-limits", "resource": "Deployment backend/backend", "stacks": ["prod"],
        "reason": "load test", "owner": "someone@example.com", "expires": "2027-01-31"})),
     "guardrails/exceptions.yaml: workload-resource-limits for Deployment backend/backend", "widened"),
]


@pytest.mark.parametrize("edits, path, change", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_base_reports_each_setting_that_changes_what_runs_or_is_proven(tmp_path, capsys, edits, path, change):
    found = {(s["path"], s["change"]) for s in settings_diff(tmp_path, capsys, **edits)}
    assert (path, change) in found


def test_an_unchanged_stack_with_its_base_checkout_is_no_change(tmp_path, capsys):
    assert settings_diff(tmp_path, capsys) == []


def test_writing_a_default_out_is_no_change(tmp_path, capsys):
    assert settings_diff(tmp_path, capsys, edit_config=zero_trust("verify", True)) == []


def test_an_exception_for_another_stack_is_not_this_stacks_change(tmp_path, capsys):
    def add(d):
        d["exceptions"].append({"rule": "workload-resource-limits", "resource": "Deployment backend/backend", "stacks": ["dev"],
                                "reason": "r", "owner": "o@example.com", "expires": "2027-01-31"})

    assert settings_diff(tmp_path, capsys, edit_exceptions=add) == []


def test_a_secret_is_compared_by_its_ciphertext_and_shown_as_secret(tmp_path, capsys):
    found = settings_diff(tmp_path, capsys, edit_config=lambda c: c.__setitem__("azure-native:clientSecret", {"secure": "v1:abc"}))
    assert [(s["path"], s["change"], s["after"]) for s in found] == [("azure-native:clientSecret", "added", "[secret]")]


def test_a_secret_whose_ciphertext_changes_is_reported_without_its_value(tmp_path, capsys):
    base = base_checkout(tmp_path)
    doc = yaml.safe_load((base / "Pulumi.prod.yaml").read_text())
    doc["config"]["azure-native:clientSecret"] = {"secure": "v1:old"}
    (base / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    files = head_files(tmp_path, base, edit_config=lambda c: c.__setitem__("azure-native:clientSecret", {"secure": "v1:new"}))
    main(["plan", "--stack", "prod", *files, "--base", str(base), "--format", "json"])
    found = json.loads(capsys.readouterr().out)["diff"]["settings"]
    assert [(s["path"], s["change"], s["before"], s["after"]) for s in found] == [("azure-native:clientSecret", "changed", "[secret]", "[secret]")]


def test_the_markdown_and_the_text_report_name_each_setting_and_never_say_no_change(tmp_path, capsys):
    base = base_checkout(tmp_path)
    files = head_files(tmp_path, base, edit_config=zero_trust("probeImage", OTHER_IMAGE))
    main(["plan", "--stack", "prod", *files, "--base", str(base), "--format", "markdown"])
    seen = rendered(capsys.readouterr().out)
    assert f"changed setting {P}:zeroTrust.probeImage:" in seen and "no change" not in seen
    assert "the probes run with each source workload's labels" in seen
    main(["plan", "--stack", "prod", *files, "--base", str(base)])
    out = capsys.readouterr().out
    assert f"! changed {P}:zeroTrust.probeImage:" in out and "unchanged against the base" not in out


def test_a_base_checkout_without_the_stack_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plan", "--stack", "prod", "--base", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --base {empty}: no Pulumi.prod.yaml there (a new stack has no base to compare with)"


def test_a_base_stack_file_alone_compares_the_config_with_the_heads_own_levels(tmp_path, capsys):
    base = tmp_path / "Pulumi.prod.yaml"
    doc = copy.deepcopy(yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text()))
    doc["config"][f"{P}:cluster"]["defender"] = False
    base.write_text(yaml.safe_dump(doc))
    main(["plan", "--stack", "prod", "--base", str(base), "--format", "json"])
    found = json.loads(capsys.readouterr().out)["diff"]["settings"]
    assert [(s["path"], s["change"]) for s in found] == [(f"{P}:cluster.defender", "narrowed")]


def test_a_pull_requests_checkout_is_planned_with_its_own_levels_and_exceptions_against_the_base(tmp_path, capsys):
    base = base_checkout(tmp_path)
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    (pr / "guardrails" / "config" / "prod.json").unlink()  # the pull request deletes prod's levels
    main(["plan", "--stack", "prod", "--checkout", str(pr), "--base", str(base), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["guardrails"]["levels"].startswith("the rules' default (production) levels")
    assert ("guardrails/config/prod.json: no-broad-peers.exceptable", "widened") in {(s["path"], s["change"]) for s in doc["diff"]["settings"]}


def test_a_checkout_with_its_own_files_is_not_mixed_with_single_files(tmp_path, capsys):
    assert main(["plan", "--stack", "prod", "--checkout", str(tmp_path), "--exceptions", str(PROJECT_DIR / "guardrails" / "exceptions.yaml")]) == 2
    assert capsys.readouterr().err.strip() == "error: --checkout: not with --exceptions (the checkout has its own)"


def test_a_project_level_value_in_the_pull_requests_pulumi_yaml_is_a_setting_change(tmp_path, capsys):
    base = base_checkout(tmp_path)
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", base)
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    project = yaml.safe_load((pr / "Pulumi.yaml").read_text())
    project.setdefault("config", {})["zeroTrust"] = {"default": {"verify": False}}
    (pr / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    doc = yaml.safe_load((pr / "Pulumi.prod.yaml").read_text())
    doc["config"].pop(f"{P}:zeroTrust")  # so the project-level value applies
    (pr / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    main(["plan", "--stack", "prod", "--checkout", str(pr), "--base", str(base), "--format", "json"])
    found = {(s["path"], s["change"]) for s in json.loads(capsys.readouterr().out)["diff"]["settings"]}
    assert (f"{P}:zeroTrust.verify", "widened") in found
