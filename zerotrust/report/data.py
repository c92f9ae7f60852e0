"""``--format json``: the plan as data, for machines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policies.analysis import matrix as mx
from zerotrust.plan import Plan, resource_rows
from zerotrust.report.sections import budget_json, flow_object, observed_json, outputs_json, probes_json, staging_json

if TYPE_CHECKING:  # the diff is imported only by a plan against a base
    from zerotrust.diff import BaseDiff


def as_json(plan: Plan, base_diff: BaseDiff | None) -> dict[str, Any]:
    m = plan.matrix
    doc: dict[str, Any] = {
        "stack": plan.stack.stack,
        "ok": plan.ok,
        "ciliumVersion": ".".join(map(str, plan.config.cilium_version)),
        "resources": [{"type": t, "name": n, "depth": d} for d, t, n in resource_rows(plan.run)],
        "outputs": outputs_json(plan.run),
        "flows": [flow_object(plan.config, f) for f in plan.config.flows],
        "budget": budget_json(plan.budget),
        "probes": probes_json(plan.probes),
        "staging": staging_json(m),
        "observed": observed_json(plan),
        "declared": [mx.fmt(k) for k in sorted(m.expected)],
        "allowed": [mx.fmt(k) for k in sorted(m.allowed)],
        "findings": [{"kind": f.kind, "flow": f.flow, "message": f.message} for f in m.findings],
        "notes": m.notes,
        "cells": m.cells,
        "guardrails": {
            "levels": plan.levels_source,
            "violations": [
                {"rule": v.rule, "level": v.level, "resource": v.resource, "message": v.message}
                for v in plan.guardrails.violations
            ],
            "excepted": [
                {"rule": e.rule, "resource": e.resource, "reason": e.reason, "owner": e.owner, "expires": e.expires}
                for e in plan.guardrails.excepted
            ],
        },
    }
    if base_diff is not None:
        doc["diff"] = {
            "newlyAllowed": base_diff.newly_allowed,
            "noLongerAllowed": base_diff.no_longer_allowed,
            "rules": [
                {"change": c.change, "what": c.what, "policy": c.policy, "flow": c.flow, "before": c.before, "after": c.after}
                for c in base_diff.rules
            ],
            "objects": sorted(base_diff.objects),
            "settings": [
                {"path": s.path, "change": s.change, "before": s.before, "after": s.after, "note": s.note} for s in base_diff.settings
            ],
        }
    return doc


def errors_json(stack: str, lines: list[str]) -> dict[str, Any]:
    """What ``--format json`` prints when the stack cannot be planned: the problems, one per item."""
    return {"stack": stack, "ok": False, "errors": lines}
