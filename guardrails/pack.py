"""CrossGuard policies over ``policies.guardrails``: an adapter, no rules of its own.

Each rule becomes one policy of the same name: a resource validation where
one resource suffices, a stack validation where the rule needs several. The
enforcement level is the rule's default; per-stack levels (and ``"exceptable": false``)
come from ``guardrails/config/<stack>.json`` through ``--policy-pack-config``;
exceptions from ``guardrails/exceptions.yaml`` beside the pack.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.secret import Secret

from policies import guardrails as g

PACK_NAME = "zero-trust-aks-guardrails"
LEVEL = {
    "mandatory": EnforcementLevel.MANDATORY,
    "advisory": EnforcementLevel.ADVISORY,
    "disabled": EnforcementLevel.DISABLED,
}


def plain(value: Any) -> Any:
    """Props with pulumi-policy's wrappers (secrets) replaced by plain values."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def resource_of(args: Any) -> g.Resource:
    """``ResourceValidationArgs`` or ``PolicyResource`` -> the core's ``Resource``."""
    return g.Resource(args.resource_type, args.name, plain(args.props), args.urn)


EXCEPTIONS = Path(__file__).resolve().parent / "exceptions.yaml"
"""The reviewed exceptions, beside the pack (``guardrails/exceptions.yaml``)."""
EXCEPTABLE = {"exceptable": {"type": "boolean"}}
"""Per-stack setting of an exceptable rule: ``"exceptable": false`` refuses every exception."""


def config_schema(rule: g.Rule) -> PolicyConfigSchema | None:
    """What ``--policy-pack-config`` may set for a rule besides its level: ``exceptable`` and the rule's own settings."""
    properties = dict(EXCEPTABLE) if rule.exceptable else {}
    properties |= {name: {"type": "string", "pattern": r"^/[0-9]{1,3}$", "default": default} for name, default in rule.settings.items()}
    return PolicyConfigSchema(properties) if properties else None


def settings_of(rule: g.Rule, args: Any) -> dict[str, Any]:
    """The rule's own settings from the stack's policy-pack config (unchecked values fail the rule loudly)."""
    config = (args.get_config() or {}) if rule.settings else {}
    for name in rule.settings:
        if name in config:
            rule.check_setting(name, config[name])
    return {k: config[k] for k in rule.settings if k in config}


def read_exceptions(path: Path = EXCEPTIONS) -> tuple[g.RuleException, ...]:
    """The exceptions file, or none; a bad file fails the policy with its lines (never a silent pass)."""
    if not path.exists():
        return ()
    return g.parse_exceptions(yaml.safe_load(path.read_text()), g.EXCEPTIONS_FILE, g.BY_NAME)


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::...`` -> ``<stack>``."""
    return urn.split("::", 1)[0].removeprefix("urn:pulumi:") if urn.startswith("urn:pulumi:") else ""


def waivers(rule: g.Rule, args: Any, urn: str) -> g.Waivers:
    config = args.get_config() if rule.exceptable else {}
    refused = frozenset({rule.name}) if (config or {}).get("exceptable") is False else frozenset()
    return g.Waivers(read_exceptions(), stack_of(urn), datetime.date.today(), refused)


def _resource_validation(rule: g.Rule):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for v in g.check_resource(rule, resource_of(args), waivers=waivers(rule, args, args.urn), settings=settings_of(rule, args)):
            report_violation(v.message, None)

    return validate


def _stack_validation(rule: g.Rule):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [resource_of(r) for r in args.resources]
        urn = next((r.urn for r in resources if r.urn), "")
        for v in g.check_stack(rule, resources, waivers=waivers(rule, args, urn), settings=settings_of(rule, args)):
            report_violation(v.message, v.urn or None)

    return validate


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    out: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for rule in g.RULES:
        if rule.scope == "resource":
            kind, validate = ResourceValidationPolicy, _resource_validation(rule)
        else:
            kind, validate = StackValidationPolicy, _stack_validation(rule)
        out.append(
            kind(
                name=rule.name,
                description=f"{rule.description} Why: {rule.why}",
                enforcement_level=LEVEL[rule.level],
                validate=validate,
                config_schema=config_schema(rule),
            )
        )
    return out
