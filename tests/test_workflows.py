"""The GitHub Actions workflows: actionlint-clean, covering every Azure stack, least privilege, pinned actions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from zerotrust.mockrun import PROJECT_DIR

GITHUB = PROJECT_DIR / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def load(name: str) -> dict:
    doc = yaml.safe_load((GITHUB / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def azure_stacks() -> set[str]:
    out = set()
    for path in PROJECT_DIR.glob("Pulumi.*.yaml"):
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        if "zero-trust-aks:cluster" in config:
            out.add(path.name.removeprefix("Pulumi.").removesuffix(".yaml"))
    return out


def actionlint(*paths: Path, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
    exe = shutil.which("actionlint", path=str(BIN))
    assert exe, "actionlint is not installed: pip install -r requirements-dev.txt"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # and the venv's shellcheck
    return subprocess.run([exe, "-no-color", "-oneline", *map(str, paths)], cwd=cwd, env=env, capture_output=True, text=True)


def test_actionlint_and_shellcheck_find_nothing_in_the_workflows():
    assert shutil.which("shellcheck", path=str(BIN)), "shellcheck is not installed: pip install -r requirements-dev.txt"
    out = actionlint(*WORKFLOWS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\npermissions:\n  id-tokens: write\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo $HOME_DIR/${{ github.event.pull_request.title }}\n"
    )
    out = actionlint(broken, cwd=tmp_path)
    assert out.returncode == 1
    assert "id-tokens" in out.stdout  # an unknown permission
    assert "github.event.pull_request.title" in out.stdout  # untrusted input in a script
    assert "SC2086" in out.stdout  # shellcheck ran


def test_every_azure_stack_is_deployed_from_main_and_only_the_stacks_access_yaml_lets_pull_requests_preview_are():
    stacks = azure_stacks()
    assert stacks  # read from the Pulumi.<stack>.yaml files, so a new stack must join the workflows
    access = yaml.safe_load((GITHUB / "access.yaml").read_text())
    assert set(access["stacks"]) == stacks
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert set(preview["strategy"]["matrix"]["stack"]) == set(access["environments"]["preview"]["previews"]) == {"dev"}
    deploy = load("deploy.yml")["jobs"]
    assert {job["with"]["stack"] for job in deploy.values() if job["uses"].endswith("pulumi-up.yml")} == stacks
    for stack in stacks:
        assert (PROJECT_DIR / "guardrails" / "config" / f"{stack}.json").exists(), stack


def test_the_local_stack_is_planned_but_never_previewed_or_deployed():
    assert "local" not in azure_stacks() and (PROJECT_DIR / "Pulumi.local.yaml").exists()
    plan = load("pull-request.yml")["jobs"]["plan"]
    script = next(s["run"] for s in plan["steps"] if "zerotrust plan" in s.get("run", ""))
    assert "for file in Pulumi.*.yaml" in script and "--format markdown" in script and "--base" in script


def test_prod_waits_for_dev_and_each_stack_deploys_in_its_own_environment_and_concurrency_group():
    deploy = load("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert (deploy["jobs"]["dev"]["needs"], deploy["jobs"]["prod"]["needs"]) == ("test", "dev")
    assert deploy["jobs"]["test"]["uses"] == load("pull-request.yml")["jobs"]["test"]["uses"] == "./.github/workflows/tests.yml"
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-${{ inputs.stack }}", "cancel-in-progress": False}


def pulumi_steps(name: str, job: str) -> list[dict]:
    """The steps of a job that run the Pulumi CLI."""
    return [s for s in load(name)["jobs"][job]["steps"] if re.search(r"^\s*pulumi (preview|up|stack|login)", s.get("run", ""), re.M)]


def test_both_pulumi_runs_enforce_the_guardrails_with_the_stacks_levels():
    for name, job, command in (("pull-request.yml", "preview", "pulumi preview"), ("pulumi-up.yml", "up", "pulumi up")):
        (run,) = [s["run"] for s in pulumi_steps(name, job) if re.search(rf"^\s*{command} ", s["run"], re.M)]
        assert "--policy-pack guardrails --policy-pack-config \"guardrails/config/$STACK.json\"" in run, name
        assert 'pulumi login "$CLOUD_URL"' in run and "--non-interactive" in run, name


def test_no_workflow_holds_a_secret_the_stacks_secrets_are_their_key_vault_keys():
    for path in WORKFLOWS:
        assert "secrets." not in path.read_text(), path.name  # no passphrase, no token beyond github.token
    for stack in azure_stacks():
        assert f"key:{stack}" in (GITHUB / "access.yaml").read_text()


def test_deploys_run_only_from_main_each_in_its_stacks_environment():
    up = load("pulumi-up.yml")["jobs"]["up"]
    assert up["if"] == "github.ref == 'refs/heads/main'" and up["environment"] == "${{ inputs.stack }}"
    assert "azblob://pulumi-state-${{ inputs.stack }}" in up["env"]["CLOUD_URL"]


def test_the_preview_waits_for_a_reviewer_in_the_preview_environment_and_cannot_comment():
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert preview["environment"] == "preview"
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}


def test_the_pull_request_comment_is_computed_by_the_base_branchs_code_over_the_pull_requests_files_read_by_its_commit():
    pr = load("pull-request.yml")
    assert "upload-artifact" not in str(pr) and "plan-input" not in str(pr)  # nothing is handed over
    workflow = load("pull-request-comment.yml")
    comment = workflow["jobs"]["comment"]
    assert "github.event.workflow_run.path == '.github/workflows/pull-request.yml'" in comment["if"]  # the file, not the name
    assert "github.event.workflow_run.repository.full_name == github.repository" in comment["if"]
    assert comment["permissions"] == {"contents": "read", "pull-requests": "write"}  # no actions: read, no artifact
    assert "download-artifact" not in str(workflow)
    checkout = next(s for s in comment["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert "ref" not in checkout.get("with", {})  # the default branch, never the pull request's head
    steps = {s.get("name", ""): s.get("run", "") for s in comment["steps"]}
    find = next(run for name, run in steps.items() if name.startswith("Find the open pull requests"))
    assert 'select(.head.sha == \\"$HEAD_SHA\\"' in find  # the number comes from GitHub, bound to the commit
    read = next(run for name, run in steps.items() if name.startswith("Read the pull request's"))
    assert 'contents/$1?ref=$HEAD_SHA' in read and 'git/trees/$HEAD_SHA' in read
    assert '\\\\APulumi\\\\.[a-z0-9-]+\\\\.yaml\\\\z' in read  # whole-name match: no newline in a name gets through
    plan = next(run for name, run in steps.items() if "zerotrust plan" in run)
    assert "--checkout pr" in plan and "--base ." in plan
    post = next(run for run in steps.values() if "gh api -X PATCH" in run)
    assert 'select(.user.login == \\"github-actions[bot]\\"' in post and "done < prs.txt" in post


def test_pull_requests_replay_the_base_branchs_captured_traffic_never_their_own():
    plan = next(s["run"] for s in load("pull-request.yml")["jobs"]["plan"]["steps"] if "zerotrust plan" in s.get("run", ""))
    assert 'git archive "$BASE_SHA" "observed/$stack"' in plan and '"${observed_args[@]}"' in plan
    assert 'find "observed/' not in plan  # the pull request's own checkout is never read for captures
    comment = next(s["run"] for s in load("pull-request-comment.yml")["jobs"]["comment"]["steps"] if "zerotrust plan" in s.get("run", ""))
    assert 'find "observed/$stack"' in comment and '"${observed_args[@]}"' in comment  # that checkout is the base branch
    assert "pr/observed" not in comment


def test_the_cli_tools_are_pinned_and_checked_against_their_checksums_and_python_needs_hashes():
    action = (GITHUB / "actions" / "pulumi-setup" / "action.yml").read_text()
    doc = yaml.safe_load(action)
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["inputs"]["pulumi-version"]["default"])
    assert re.fullmatch(r"v\d+\.\d+\.\d+", doc["inputs"]["kubelogin-version"]["default"])
    assert action.count("sha256sum --check --strict") == 2
    assert action.count("--require-hashes -r") == 2


def test_every_workflow_grants_nothing_by_default_and_each_job_only_what_it_needs():
    for path in WORKFLOWS:
        doc = load(path.name)
        assert doc["permissions"] == {}, path.name
        for name, job in doc["jobs"].items():
            perms = job.get("permissions")
            assert perms is not None, f"{path.name}: {name} sets no permissions"
            assert not any(v == "write" for k, v in perms.items() if k not in ("id-token", "pull-requests")), (path.name, name)
    assert "pull_request_target" not in "".join(p.read_text() for p in WORKFLOWS)


def test_only_jobs_that_log_in_to_azure_get_an_oidc_token():
    for path in WORKFLOWS:
        for name, job in load(path.name)["jobs"].items():
            logs_in = any(s.get("uses", "") == "./.github/actions/azure-login" for s in job.get("steps", []))
            calls_up = job.get("uses", "").endswith("pulumi-up.yml")
            assert (job["permissions"].get("id-token") == "write") == (logs_in or calls_up), (path.name, name)


def test_the_preview_never_runs_for_forks():
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def test_every_action_is_pinned_to_a_commit():
    files = WORKFLOWS + sorted((GITHUB / "actions").rglob("action.yml"))
    uses = [u for f in files for u in re.findall(r"uses:\s*(\S+)", f.read_text())]
    remote = [u for u in uses if not u.startswith("./")]
    assert remote
    for u in remote:
        assert re.fullmatch(r"[0-9a-f]{40}", u.split("@", 1)[1]), u


def test_the_deploy_summary_drops_the_kubeconfig():
    steps = load("pulumi-up.yml")["jobs"]["up"]["steps"]
    (summary,) = [s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", "")]
    assert "jq 'del(.kubeconfig)'" in summary["run"] and "--show-secrets" not in summary["run"]
    (up,) = [s for s in steps if re.search(r"^\s*pulumi up ", s.get("run", ""), re.M)]
    assert "--suppress-outputs" in up["run"]


def test_every_python_set_up_caches_pip_downloads():
    files = WORKFLOWS + sorted((GITHUB / "actions").rglob("action.yml"))
    blocks = [b for f in files for b in re.findall(r"uses: actions/setup-python@.*?(?=\n\s+- |\Z)", f.read_text(), re.S)]
    assert len(blocks) == 4  # the tests, the plan, the comment, and the composite set-up of the Pulumi jobs
    assert all("cache: pip" in b and "cache-dependency-path" in b for b in blocks)


def test_the_provider_plugins_are_installed_at_the_sdk_versions_with_their_checksums_where_pinned():
    lock = GITHUB / "actions" / "pulumi-setup" / "plugins.lock"
    rows = [line.split() for line in lock.read_text().splitlines() if line.strip() and not line.startswith("#")]
    requirements = (PROJECT_DIR / "requirements.txt").read_text()
    pinned = {name: re.search(rf"^pulumi-{name}==(\S+)", requirements, re.M).group(1) for _, name, _, _ in rows}
    assert {name: version for _, name, version, _ in rows} == pinned == {"azure-native": pinned["azure-native"], "kubernetes": pinned["kubernetes"]}
    assert all(sha == "-" or re.fullmatch(r"[0-9a-f]{64}", sha) for *_, sha in rows)
    action = (GITHUB / "actions" / "pulumi-setup" / "action.yml").read_text()
    assert 'pulumi plugin install "$kind" "$name" "$version" --exact --checksum "$sha"' in action
