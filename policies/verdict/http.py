"""HTTP rules (``toPorts[].rules.http``), as Envoy enforces them for Cilium: which requests an allow admits.

Read in cilium/cilium ``pkg/envoy/server.go`` ``getHTTPRule``: each field of a rule becomes an Envoy
header matcher, and a request passes a rule when every matcher matches; it passes an allow when
any of its rules does.

- ``path``: an RE2 regular expression matched against the whole ``:path`` header (query included);
- ``method``: RE2 against ``:method``; ``host``: RE2 against ``:authority``;
- ``headers``: ``"Name: value"`` (that exact value) or ``"Name"`` (present);
- ``headerMatches`` (values from secrets, mismatch actions) are not decided from a record.

Hubble's L7 records carry the method, the URL (``http://authority/path?query``) and the headers
(which the agent may redact): what a record cannot show makes the answer ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from policies import memo


@dataclass(frozen=True)
class Request:
    """One HTTP request of a capture."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] | None = None
    """(name, value) as the record has them; None when the record has none."""

    @property
    def path(self) -> str:
        """``:path``: the URL's path and query."""
        parts = urlsplit(self.url)
        path = parts.path or "/"
        return f"{path}?{parts.query}" if parts.query else path

    @property
    def authority(self) -> str | None:
        return urlsplit(self.url).netloc or None

    @property
    def text(self) -> str:
        return f"{self.method} {self.path}"


@memo.register
@lru_cache(maxsize=4096)
def _regex(expression: str):
    import re2

    options = re2.Options()
    options.log_errors = False
    return re2.compile(expression, options)


def _full(expression: str, value: str) -> bool:
    return _regex(expression).fullmatch(value) is not None


def _header(rule: str, headers: tuple[tuple[str, str], ...] | None) -> bool | None:
    name, _, value = rule.strip().partition(" ")
    name = name.removesuffix(":").lower()
    found = [v for k, v in headers or () if k.lower() == name]
    if found:
        return (value.strip() in found) if value.strip() else True
    return None  # absent from the record: missing, or redacted by the agent


def rule_admits(rule: Mapping[str, Any], request: Request) -> bool | None:
    """Whether one HTTP rule admits ``request`` (None: the record cannot tell)."""
    if rule.get("headerMatches"):
        return None
    checks: list[bool | None] = []
    if rule.get("method"):
        checks.append(_full(str(rule["method"]), request.method))
    if rule.get("path"):
        checks.append(_full(str(rule["path"]), request.path))
    if rule.get("host"):
        checks.append(None if request.authority is None else _full(str(rule["host"]), request.authority))
    checks += [_header(str(h), request.headers) for h in rule.get("headers") or ()]
    if False in checks:
        return False
    return None if None in checks else True


def admits(rules: Sequence[Mapping[str, Any]], request: Request) -> bool | None:
    """Whether any of an allow's HTTP rules admits ``request`` (None: the record cannot tell)."""
    answers = [rule_admits(r, request) for r in rules]
    if True in answers:
        return True
    return None if None in answers else False


def rejected(rules: Sequence[Mapping[str, Any]], requests: Iterable[Request]) -> tuple[list[Request], list[Request]]:
    """(requests the rules reject, requests a record cannot decide)."""
    no, unknown = [], []
    for r in requests:
        answer = admits(rules, r)
        if answer is False:
            no.append(r)
        elif answer is None:
            unknown.append(r)
    return no, unknown
