"""Stack files as the Pulumi CLI reads them: no YAML surprise turns into a traceback or a silent change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies.config.stackfile import StackFileError, read_stack
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def stack_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.test.yaml").write_text(text)
    return tmp_path


def read_errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(StackFileError) as e:
        read_stack(stack_dir(tmp_path, text), "test")
    return e.value.lines


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_plans_and_holds(stack, capsys):
    assert main(["plan", "--stack", stack, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def problems(tmp_path: Path, text: str) -> list[str]:
    return list(read_stack(stack_dir(tmp_path, text), "test").problems)


def test_a_key_defined_twice_is_refused_with_both_lines_instead_of_the_last_silently_winning(tmp_path):
    text = "config:\n  zero-trust-aks:flows:\n    - from: a\n      to: b\n  zero-trust-aks:flows: []\n"
    assert problems(tmp_path, text) == [
        "Pulumi.test.yaml line 5: the key 'zero-trust-aks:flows' is defined twice (first on line 2); "
        "the second would silently replace the first"
    ]


def test_every_duplicate_is_reported_at_once_at_any_depth(tmp_path):
    text = "config:\n  zero-trust-aks:workloads:\n    web: {port: 80, port: 81}\n    api: {}\n    api: {}\n"
    assert [line.split(":")[0] for line in problems(tmp_path, text)] == ["Pulumi.test.yaml line 3", "Pulumi.test.yaml line 5"]


def test_a_duplicate_key_is_reported_with_the_configs_own_problems(tmp_path, capsys):
    text = (PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("nodeCount: 3", "nodeCount: 0\n    nodeCount: 0")
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(text)
    assert main(["plan", "--stack", "broken", "--stack-file", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "is defined twice" in err[0] and err[1] == "error: zero-trust-aks:cluster.nodeCount: 0 is too small; at least 1"


@pytest.mark.parametrize("key", ["zero-trust-aks:flows", "azure-native:location"])
def test_a_config_key_outside_config_is_one_line_not_silently_ignored(tmp_path, key):
    assert problems(tmp_path, f"config:\n  zero-trust-aks:flows: []\n{key}: []\n") == [
        f"Pulumi.test.yaml: {key!r} is at the top level, outside config:, where Pulumi ignores it; indent it under config:"
    ]


def test_a_stack_file_keeps_its_own_settings_keys_and_refuses_others(tmp_path):
    text = "secretsprovider: passphrase\nencryptionsalt: v1:abc\nenvironment: [dev]\nconfg:\n  a: b\nconfig: {}\n"
    assert problems(tmp_path, text) == [
        "Pulumi.test.yaml: 'confg' is not a stack settings key; a stack file has config, environment, secretsprovider, encryptedkey, encryptionsalt"
    ]


def test_a_config_section_that_is_not_a_mapping_is_one_line(tmp_path):
    assert read_errors(tmp_path, "config:\n  - a\n  - b\n") == [
        "Pulumi.test.yaml: config: must be a mapping of config keys to values, not list"
    ]


def test_a_non_string_config_key_is_one_line(tmp_path):
    assert read_errors(tmp_path, "config:\n  1: x\n") == [
        "Pulumi.test.yaml: config: the key 1 must be a string like zero-trust-aks:workloads"
    ]


def test_yaml_nested_beyond_what_config_reads_is_one_line_and_no_traceback(tmp_path, capsys):
    stack_dir(tmp_path, "config:\n  zero-trust-aks:flows: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["plan", "--stack", "test", "--stack-file", str(tmp_path / "Pulumi.test.yaml")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: zero-trust-aks:flows") and "nested too deeply" in line


def test_a_number_too_long_to_convert_is_one_line(tmp_path):
    (line,) = read_errors(tmp_path, "config:\n  zero-trust-aks:flows: " + "9" * 5000 + "\n")
    assert line == "Pulumi.test.yaml: a value cannot be read (Exceeds the limit (4300 digits) for integer string conversion)"


@pytest.mark.parametrize(
    "text, where, words",
    [
        ("config:\n  zero-trust-aks:flows: [\n", "line 3, column 1", "a [...] or {...} that is never closed"),
        ("config:\n  zero-trust-aks:workloads:\n    web:\n      namespace: a\n    - port: 80\n", "line 5, column 5",
         "a list item ('-') where the lines above expect a key: indent it under its key"),
        ("config:\n  zero-trust-aks:cluster:\n    name: a: b\n", "line 3, column 12", "a ':' where a value was expected"),
        ("config:\n\tzero-trust-aks:flows: []\n", "line 2, column 1", "YAML indents with spaces only"),
        ("config:\n  zero-trust-aks:resourceGroupName: 'rg\n", "line 3, column 1", "a quote that is never closed"),
    ],
    ids=["an unclosed list", "a mis-indented list item", "a colon in a value", "a tab", "an unclosed quote"],
)
def test_invalid_yaml_is_one_line_in_our_words_with_the_line_and_column(tmp_path, text, where, words):
    (line,) = read_errors(tmp_path, text)
    assert line.startswith(f"Pulumi.test.yaml: not valid YAML at {where}: ") and words in line, line


def test_the_plan_of_an_invalid_stack_prints_the_errors_as_json_for_machines(tmp_path, capsys):
    text = (PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("nodeCount: 3", "nodeCount: 0")
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(text)
    assert main(["plan", "--stack", "broken", "--stack-file", str(path), "--format", "json"]) == 2
    out = capsys.readouterr()
    assert json.loads(out.out) == {"stack": "broken", "ok": False, "errors": ["zero-trust-aks:cluster.nodeCount: 0 is too small; at least 1"]}
    assert "Traceback" not in out.err


def test_the_plan_of_an_invalid_stack_prints_the_errors_as_markdown_for_a_pull_request_comment(tmp_path, capsys):
    text = (PROJECT_DIR / "Pulumi.dev.yaml").read_text().replace("to: backend", "to: backnd")
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(text)
    assert main(["plan", "--stack", "broken", "--stack-file", str(path), "--format", "markdown"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("## zero-trust-aks plan: `broken`\n\n**The stack cannot be planned:**")
    assert "- `zero-trust-aks:flows[0].to: 'backnd' is neither a workload nor a peer; workloads are: backend, frontend`" in out
