"""Shared fixtures: stack runs under the mock engine (cached per session) and the Cilium CRD schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from policies.config.stackfile import StackFiles, read_stack
from zerotrust.mockrun import PROJECT_DIR, Run, run_program

CRD_DIR = PROJECT_DIR / "policies" / "verdict" / "crds"
"""The Cilium 1.17.5 policy CRDs, vendored with their licence (the project's CI has no ../shared)."""

_runs: dict[str, Run] = {}


def stack_run(name: str) -> Run:
    """The program run of a committed stack (each stack runs once per test session)."""
    if name not in _runs:
        _runs[name] = run_program(read_stack(PROJECT_DIR, name))
    return _runs[name]


@pytest.fixture
def dev_stack() -> StackFiles:
    return read_stack(PROJECT_DIR, "dev")


@pytest.fixture
def dev_config(dev_stack) -> dict[str, Any]:
    """The dev stack's config, deep-copied so a test may break it."""
    return copy.deepcopy(dev_stack.config)


def errors_of(config: Any) -> list[str]:
    """The lines of the ConfigErrors that loading ``config`` raises (the test fails if it loads)."""
    from policies.config import ConfigErrors, load_config

    with pytest.raises(ConfigErrors) as e:
        load_config(config)
    return e.value.lines


def with_config(stack: StackFiles, **overrides: Any) -> StackFiles:
    config = copy.deepcopy(stack.config)
    for key, value in overrides.items():
        full = key.replace("__", ":", 1)
        config[full] = value
    return StackFiles(stack.project, stack.stack, config, stack.secret_keys)


_COMBINATORS = ("anyOf", "oneOf", "allOf", "not")


def _strict(schema: Any, in_combinator: bool = False) -> Any:
    """The CRD schema with unknown properties forbidden (the API server would silently prune them).

    Branches of anyOf/oneOf only state which keys are required, so they stay open.
    """
    if isinstance(schema, dict):
        out = {k: _strict(v, k in _COMBINATORS) for k, v in schema.items()}
        open_ = in_combinator or out.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in out and "additionalProperties" not in out and not open_:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v, in_combinator) for v in schema]
    return schema


def _crd_validator(filename: str):
    import jsonschema

    crd = yaml.safe_load((CRD_DIR / filename).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v2")
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


@pytest.fixture(scope="session")
def cnp_schema():
    return _crd_validator("ciliumnetworkpolicies.yaml")


@pytest.fixture(scope="session")
def ccnp_schema():
    return _crd_validator("ciliumclusterwidenetworkpolicies.yaml")


def schema_errors(validator, manifest: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def markdown_tokens(markdown: str):
    """The block and inline tokens GitHub-flavoured CommonMark makes of ``markdown`` (raw HTML on, as in comments)."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = parser.parse(markdown)
    return tokens + [child for t in tokens for child in t.children or ()]


def rendered(markdown: str) -> str:
    """The text a reader sees of ``markdown``: rendered, tags dropped, entities decoded."""
    import html
    import re

    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)
    return html.unescape(re.sub(r"<[^>]+>", "", out))


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test starts with the core's memo caches empty, so it exercises the code it calls rather than answers
    an earlier test left behind (a mutation tester forks tests from a warm process)."""
    from policies import memo

    memo.clear()
    yield
