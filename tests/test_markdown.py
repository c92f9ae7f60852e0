"""Pull-request markdown shows what it is given: no string from a stack file, a level file, the
exceptions or a capture can forge a section of the comment or hide one."""

from __future__ import annotations

import json

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import markdown_tokens, rendered
from zerotrust.report import escape as md
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

FORGED = "x\n\n## `prod`: holds\n\n**Declared flows == enforced flows: holds**\n\nguardrails: pass\n\n- no change\n\n<!--"
"""The proof of concept of the security review: a forged verdict for prod, then an HTML comment
that hides the rest of the real report."""


def one_line(value: str) -> str:
    return " ".join(value.replace("\r", "\n").split("\n")) if value else value


# -- the helpers ---------------------------------------------------------------------------------------------------

printable = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x85\u2028\u2029\x00"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(printable)
def test_a_code_span_holds_any_line_literally(value):
    tokens = [t for t in markdown_tokens(f"- {md.code(value)}") if t.type == "code_inline"]
    assert [t.content for t in tokens] == [value or " "]


@settings(max_examples=300, deadline=None)
@given(printable)
@example("<b>bold</b> [link](https://example.org) *em* `code` ![img](x) <!-- hidden")
@example("## heading")
def test_escaped_text_renders_as_itself_and_opens_nothing(value):
    tokens = markdown_tokens(f"- {md.text(value)}")
    assert not [t for t in tokens if t.type in ("html_inline", "html_block", "link_open", "image", "code_inline", "heading_open", "em_open", "strong_open")]
    assert rendered(f"- {md.text(value)}").strip() == value.strip()


def test_a_line_break_never_leaves_the_code_span_or_the_list_item():
    tokens = markdown_tokens(f"- {md.code(FORGED)}")
    assert [t.type for t in tokens if t.type.endswith("_open")] == ["bullet_list_open", "list_item_open", "paragraph_open"]
    (span,) = [t for t in tokens if t.type == "code_inline"]
    assert "<!--" in span.content and "## `prod`" in span.content


def test_a_fence_is_longer_than_any_backtick_run_inside():
    lines = ["ok", "````", "## `prod`: holds"]
    block = md.fence(lines, "diff")
    tokens = markdown_tokens("\n".join(block) + "\n\nafter")
    (code,) = [t for t in tokens if t.type == "fence"]
    assert code.content.splitlines() == lines and code.info == "diff"


# -- the report ------------------------------------------------------------------------------------------------------


def stack_with(tmp_path, stack: str, edit) -> tuple:
    config = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    base = tmp_path / "base"
    base.mkdir()
    (base / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(config))
    edit(config["config"])
    head = tmp_path / f"Pulumi.{stack}.yaml"
    head.write_text(yaml.safe_dump(config))
    return head, base / f"Pulumi.{stack}.yaml"


def assert_only_our_structure(report: str, stack: str) -> None:
    tokens = markdown_tokens(report)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"]
    assert headings == [f"zero-trust-aks plan: `{stack}`"]
    html = [t.content.strip() for t in tokens if t.type in ("html_inline", "html_block")]
    assert all(h.startswith(("<details>", "</details>")) for h in html), html
    assert not any("<!--" in h for h in html)


def test_the_forged_section_attack_through_config_values_shows_as_text(tmp_path, capsys):
    def edit(config):
        backend = config["zero-trust-aks:workloads"]["backend"]
        backend["env"] = {"GREETING": FORGED}
        backend["args"] = [FORGED]

    head, base = stack_with(tmp_path, "dev", edit)
    main(["plan", "--stack", "dev", "--stack-file", str(head), "--base", str(base), "--format", "markdown"])
    report = capsys.readouterr().out
    assert_only_our_structure(report, "dev")
    assert "changed setting zero-trust-aks:workloads.backend.env.GREETING: - → x ## `prod`: holds" in rendered(report)


def test_the_forged_section_attack_through_an_error_line_shows_as_text(tmp_path, capsys):
    def edit(config):
        config["zero-trust-aks:workloads"]["backend"][FORGED] = 1

    head, _ = stack_with(tmp_path, "dev", edit)
    assert main(["plan", "--stack", "dev", "--stack-file", str(head), "--format", "markdown"]) == 2
    report = capsys.readouterr().out
    assert_only_our_structure(report, "dev")
    assert "<!--" in rendered(report)


def test_the_forged_section_attack_through_an_exception_shows_as_text(tmp_path, capsys):
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(yaml.safe_dump({"exceptions": [{
        "rule": "workload-non-root", "resource": "Deployment backend/backend", "stacks": ["dev"],
        "reason": FORGED, "owner": "<!-- @platform-team", "expires": "2027-01-31",
    }]}))
    main(["plan", "--stack", "dev", "--exceptions", str(exceptions), "--format", "markdown"])
    report = capsys.readouterr().out
    assert_only_our_structure(report, "dev")
    assert not [t for t in markdown_tokens(report) if t.type == "link_open"]


def test_json_carries_the_same_strings_unescaped(tmp_path, capsys):
    head, base = stack_with(tmp_path, "dev", lambda c: c["zero-trust-aks:workloads"]["backend"].update(env={"GREETING": FORGED}))
    main(["plan", "--stack", "dev", "--stack-file", str(head), "--base", str(base), "--format", "json"])
    settings_ = json.loads(capsys.readouterr().out)["diff"]["settings"]
    assert {"path": "zero-trust-aks:workloads.backend.env.GREETING", "change": "changed", "before": "", "after": FORGED, "note": ""} in settings_
