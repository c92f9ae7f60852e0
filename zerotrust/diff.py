"""What changes against the base branch's plan: the cells, the rules, the objects and the settings."""

from __future__ import annotations

import difflib
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import yaml

from policies.analysis import matrix as mx
from policies import guardrails as g
from policies.analysis import review
from zerotrust.mockrun import Run, unwrap_secrets
from zerotrust.plan import Plan, levels_file, object_path


@dataclass(frozen=True)
class BaseDiff:
    """What changes against the base branch's plan: cells, rules and objects."""

    newly_allowed: list[str]
    no_longer_allowed: list[str]
    rules: list[review.RuleChange]
    objects: dict[str, str]
    """object path -> unified diff of its YAML, for every object that changed."""
    settings: list[review.SettingChange] = field(default_factory=list)
    """Settings, guardrail levels and exceptions that differ (what renders no policy)."""

    @property
    def unchanged(self) -> bool:
        return not (self.newly_allowed or self.no_longer_allowed or self.rules or self.objects or self.settings)


def stack_settings(plan: Plan) -> review.StackSettings:
    """What the settings diff compares of one side: its config, provider keys, secrets, levels and exceptions."""
    return review.StackSettings(
        plan.config, plan.stack.config, plan.stack.ciphertexts, plan.levels or g.stack_levels(None, ""),
        levels_file(Path("."), plan.stack.stack).as_posix(), plan.exceptions, plan.stack.stack,
    )


def cilium_policies(run: Run) -> list[dict[str, Any]]:
    return [o for o in run.kubernetes_objects() if str(o.get("apiVersion", "")).startswith("cilium.io/")]


def base_diff(base: Plan, head: Plan) -> BaseDiff:
    added, removed = mx.diff(base.matrix, head.matrix)
    rules = review.rule_changes(cilium_policies(base.run), cilium_policies(head.run))

    def by_path(run: Run) -> dict[str, str]:
        return {
            object_path(o): yaml.safe_dump(o, sort_keys=True)
            for o in (unwrap_secrets(x, mask=True) for x in run.kubernetes_objects())
            if o.get("kind") != "Job"  # probe Jobs change name with every policy change; their verdicts are in the matrix
        }

    old, new = by_path(base.run), by_path(head.run)
    objects = {}
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            objects[path] = "".join(
                difflib.unified_diff(
                    (old.get(path) or "").splitlines(keepends=True),
                    (new.get(path) or "").splitlines(keepends=True),
                    fromfile=f"base/{path}",
                    tofile=f"head/{path}",
                )
            )
    settings = review.setting_changes(stack_settings(base), stack_settings(head))
    return BaseDiff(added, removed, rules, objects, settings)
