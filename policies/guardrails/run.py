"""Running the guardrails: violations, exceptions, and enforcement levels in CrossGuard's format."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import datetime

from policies.guardrails.exceptions import RuleException
from policies.guardrails.resources import LEVELS, Excepted, Resource, Rule, Violation
from policies.guardrails.rules import BY_NAME, RULES

EXCEPTIONS_FILE = "guardrails/exceptions.yaml"


@dataclass(frozen=True)
class Waivers:
    """What may waive a violation on one stack: the reviewed exceptions, the date, the rules that refuse them."""

    exceptions: tuple[RuleException, ...] = ()
    stack: str = ""
    today: datetime.date = datetime.date.min
    unexceptable: frozenset[str] = frozenset()


def _judge(rule: Rule, level: str, found: Iterable[tuple[Resource, str]], waivers: Waivers) -> tuple[list[Violation], list[Excepted]]:
    violations, excepted = [], []
    for resource, message in found:
        waiver = next((e for e in waivers.exceptions if e.applies(rule.name, resource.display, waivers.stack)), None)
        if waiver is not None and rule.name in waivers.unexceptable:
            message += f" (its exception in {EXCEPTIONS_FILE} does not count: this stack accepts none for {rule.name})"
        elif waiver is not None and waiver.expired(waivers.today):
            message += f" (its exception, owned by {waiver.owner}, expired on {waiver.expires.isoformat()}; renew or remove it in {EXCEPTIONS_FILE})"
        elif waiver is not None:
            excepted.append(Excepted(rule.name, resource.display, waiver.reason, waiver.owner, waiver.expires.isoformat()))
            continue
        violations.append(Violation(rule.name, level, resource.display, message, resource.urn))
    return violations, excepted


def check_resource(
    rule: Rule, resource: Resource, level: str | None = None, waivers: Waivers = Waivers(), settings: Mapping[str, Any] | None = None
) -> list[Violation]:
    """A resource-scoped rule on one resource (what a CrossGuard resource validation does)."""
    if rule.scope != "resource" or not rule.applies_to(resource):
        return []
    return _judge(rule, level or rule.level, rule.run(resource, settings), waivers)[0]


def check_stack(
    rule: Rule, resources: Sequence[Resource], level: str | None = None, waivers: Waivers = Waivers(), settings: Mapping[str, Any] | None = None
) -> list[Violation]:
    """A stack-scoped rule on all resources (what a CrossGuard stack validation does)."""
    if rule.scope != "stack":
        return []
    return _judge(rule, level or rule.level, rule.run(resources, settings), waivers)[0]


@dataclass(frozen=True)
class Report:
    violations: tuple[Violation, ...]
    excepted: tuple[Excepted, ...]

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def ok(self) -> bool:
        return not self.mandatory


def evaluate(
    resources: Sequence[Resource],
    levels: Mapping[str, str] | None = None,
    waivers: Waivers = Waivers(),
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> Report:
    """Every rule not disabled, on every resource it applies to (``settings``: per rule, from the level file)."""
    levels = levels or default_levels()
    settings = settings or {}
    violations: list[Violation] = []
    excepted: list[Excepted] = []
    for rule in RULES:
        level = levels.get(rule.name, rule.level)
        if level == "disabled":
            continue
        own = settings.get(rule.name)
        if rule.scope == "stack":
            found: Iterable[tuple[Resource, str]] = rule.run(resources, own)
        else:
            found = [x for r in resources if rule.applies_to(r) for x in rule.run(r, own)]
        v, e = _judge(rule, level, found, waivers)
        violations += sorted(v, key=lambda x: (x.resource, x.message))  # registration order varies
        excepted += sorted(e, key=lambda x: (x.resource, x.reason))
    return Report(tuple(violations), tuple(excepted))


# -- enforcement levels (CrossGuard's policy-pack config format) -------------------------------------


class LevelConfigError(ValueError):
    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def default_levels() -> dict[str, str]:
    return {r.name: r.level for r in RULES}


SETTINGS = ("enforcementLevel", "exceptable")
"""What a level file may set for every rule (CrossGuard's policy-pack config format); a rule may
take settings of its own (``Rule.settings``)."""


def unexceptable(doc: Mapping[str, Any]) -> frozenset[str]:
    """The rules a level file marks ``"exceptable": false`` (checked by ``resolve_levels``)."""
    return frozenset(k for k, v in doc.items() if isinstance(v, Mapping) and v.get("exceptable") is False)


def rule_settings(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The rules' own settings a level file gives (checked by ``resolve_levels``), per rule."""
    return {
        k: {key: v[key] for key in BY_NAME[k].settings if key in v}
        for k, v in doc.items()
        if k in BY_NAME and isinstance(v, Mapping) and any(key in v for key in BY_NAME[k].settings)
    }


def setting_problems(rule: Rule, given: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(setting, what is wrong) for each of a rule's own settings the level file gets wrong."""
    out = []
    for name in rule.settings:
        if name in given:
            try:
                rule.check_setting(name, given[name])
            except ValueError as e:
                out.append((name, str(e)))
    return out


def resolve_levels(doc: Any, source: str) -> dict[str, str]:
    """Levels from a policy-pack config document, as ``--policy-pack-config`` reads it.

    ``all`` sets every rule; a rule's own entry wins over ``all``. Entries are
    ``"<level>"`` or ``{"enforcementLevel": "<level>", "exceptable": false}``.
    """
    if not isinstance(doc, Mapping):
        raise LevelConfigError([f"{source}: must be a JSON object of rule name -> enforcement level"])
    levels = default_levels()
    errors: list[str] = []
    parsed: dict[str, str] = {}
    for key, value in doc.items():
        if key != "all" and key not in BY_NAME:
            errors.append(f"{source}: {key}: not a guardrail; the guardrails are: all, {', '.join(BY_NAME)}")
            continue
        level = value.get("enforcementLevel") if isinstance(value, Mapping) else value
        allowed = (*SETTINGS, *(BY_NAME[key].settings if key in BY_NAME else ()))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, Mapping) else []
        if extra:
            errors.append(f"{source}: {key}.{extra[0]}: unknown setting; the settings are: {', '.join(allowed)}")
        if isinstance(value, Mapping) and key in BY_NAME:
            errors += [f"{source}: {key}.{name}: {why}" for name, why in setting_problems(BY_NAME[key], value)]
        if isinstance(value, Mapping) and "exceptable" in value and not isinstance(value["exceptable"], bool):
            errors.append(f"{source}: {key}.exceptable: must be true or false")
        if level not in LEVELS:
            errors.append(f"{source}: {key}.enforcementLevel: {level!r} is not allowed; allowed: {', '.join(LEVELS)}")
            continue
        parsed[key] = level
    if errors:
        raise LevelConfigError(errors)
    if "all" in parsed:
        levels = {name: parsed["all"] for name in levels}
    levels.update({k: v for k, v in parsed.items() if k != "all"})
    return levels


@dataclass(frozen=True)
class StackLevels:
    """What one level file (``guardrails/config/<stack>.json``) says: per rule its level, whether it
    takes exceptions, and its own settings."""

    levels: dict[str, str]
    unexceptable: frozenset[str] = frozenset()
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)


def stack_levels(doc: Any, source: str) -> StackLevels:
    """A level file's document, checked (``LevelConfigError`` with every problem); ``None``: the defaults."""
    if doc is None:
        return StackLevels(default_levels())
    return StackLevels(resolve_levels(doc, source), unexceptable(doc), rule_settings(doc))

