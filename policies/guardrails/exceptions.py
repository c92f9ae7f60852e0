"""Exceptions to the guardrails: one reviewed file, each with a reason, an owner and an expiry date.

``guardrails/exceptions.yaml`` (covered by CODEOWNERS) lists them::

    exceptions:
      - rule: workload-non-root
        resource: Deployment backend/backend     # as the reports name it
        stacks: [dev]                            # optional; every stack when absent
        reason: the stock nginx image starts as root to bind port 80
        owner: platform-team@example.com
        expires: 2027-05-31

An exception waives one rule for one resource until its expiry date; after it,
the violation is back, saying the exception expired. Nothing in the stack's own
files (no annotation, no config key) can waive a rule: a pull request that
widens what a stack allows cannot also hide it. A stack's level file can make a
rule unwaivable (``"exceptable": false``), as prod does for ``no-broad-peers``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIELDS = ("rule", "resource", "reason", "owner", "expires", "stacks")
REQUIRED = ("rule", "resource", "reason", "owner", "expires")


@dataclass(frozen=True)
class RuleException:
    rule: str
    resource: str
    reason: str
    owner: str
    expires: datetime.date
    stacks: tuple[str, ...] = ()
    """The stacks it applies to; every stack when empty."""

    def applies(self, rule: str, resource: str, stack: str) -> bool:
        return self.rule == rule and self.resource == resource and (not self.stacks or stack in self.stacks)

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires


class ExceptionsFileError(ValueError):
    """A bad exceptions file: one line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def parse_exceptions(doc: Any, source: str, rules: Mapping[str, Any]) -> tuple[RuleException, ...]:
    """The exceptions of a parsed YAML document, every problem at once.

    ``rules`` maps rule names to rules (``exceptable`` says which may be waived at all).
    """
    if doc is None:
        return ()
    if not isinstance(doc, Mapping) or set(doc) - {"exceptions"}:
        raise ExceptionsFileError([f"{source}: must be a mapping with one key, exceptions (a list)"])
    entries = doc.get("exceptions") or []
    if not isinstance(entries, list):
        raise ExceptionsFileError([f"{source}: exceptions: must be a list"])
    out, errors = [], []
    for i, e in enumerate(entries):
        at = f"{source}: exceptions[{i}]"
        if not isinstance(e, Mapping):
            errors.append(f"{at}: must be a mapping with {', '.join(REQUIRED)}")
            continue
        problems = [f"{at}.{k}: unknown key; allowed: {', '.join(FIELDS)}" for k in e if k not in FIELDS]
        problems += [f"{at}.{k}: required" for k in REQUIRED if k not in e]
        for k in ("resource", "reason", "owner"):
            if k in e and (not isinstance(e[k], str) or not e[k].strip()):
                problems.append(f"{at}.{k}: must be a non-empty string")
        rule = e.get("rule")
        if "rule" in e and rule not in rules:
            problems.append(f"{at}.rule: {rule!r} is not a guardrail; the guardrails are: {', '.join(rules)}")
        elif "rule" in e and not rules[rule].exceptable:
            problems.append(f"{at}.rule: {rule} cannot be waived; fix the resource instead")
        expires = e.get("expires")
        if "expires" in e and not (isinstance(expires, datetime.date) and not isinstance(expires, datetime.datetime)):
            try:
                expires = datetime.date.fromisoformat(str(expires))
            except ValueError:
                problems.append(f"{at}.expires: {expires!r} is not a date (YYYY-MM-DD)")
        stacks = e.get("stacks", [])
        if not isinstance(stacks, list) or not all(isinstance(s, str) and s for s in stacks):
            problems.append(f"{at}.stacks: must be a list of stack names")
        if problems:
            errors += problems
            continue
        out.append(RuleException(rule, e["resource"].strip(), e["reason"].strip(), e["owner"].strip(), expires, tuple(stacks)))
    if errors:
        raise ExceptionsFileError(errors)
    return tuple(out)
