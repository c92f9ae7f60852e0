"""CrossGuard policies over ``policies.guardrails``: an adapter, no rules of its own.

Each rule becomes one policy of the same name: a resource validation where
one resource suffices, a stack validation where the rule needs several. The
enforcement level is the rule's default; per-stack levels come from
``guardrails/config/<stack>.json`` through ``--policy-pack-config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
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


def _resource_validation(rule: g.Rule):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for v in g.check_resource(rule, resource_of(args)):
            report_violation(v.message, None)

    return validate


def _stack_validation(rule: g.Rule):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for v in g.check_stack(rule, [resource_of(r) for r in args.resources]):
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
            )
        )
    return out
