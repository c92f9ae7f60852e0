"""toFQDNs selectors: which DNS names a ``matchName`` or ``matchPattern`` selects, as Cilium matches them.

Read in cilium/cilium ``pkg/fqdn/matchpattern/matchpattern.go`` (``Sanitize``, ``ToAnchoredRegexp``):

- names are compared lower-cased, as fully qualified names (a trailing dot added);
- ``matchName`` selects exactly its name;
- in ``matchPattern``, ``.`` is a literal dot and ``*`` is ``[-a-zA-Z0-9_]*``: any characters of one
  label, so ``*.example.com`` selects ``api.example.com`` but neither ``example.com`` nor
  ``a.b.example.com``; a pattern ``*`` alone selects every name;
- from Cilium 1.19 (``policies.cilium_versions``: ``multi_label_dns_wildcard``) a leading ``**.``
  stands for one or more whole labels, any run of stars is one ``*``, and a pattern of stars alone
  (``**``, ``**.``) selects every name; before, only ``*`` alone does, and ``**`` is two ``*``.
- A pattern with any other character is refused (Cilium rejects the policy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from policies import memo
from policies.cilium_versions import DEFAULT_CILIUM, CiliumFeatures, Version, features
from policies.config import outside_names

_LABEL_CHARS = "[-a-zA-Z0-9_]"
_ALLOWED = re.compile(r"^[-a-zA-Z0-9_.*]+$")
_MATCH_ALL = re.compile(rf"^({_LABEL_CHARS}+[.])+$|^[.]$")


def fqdn(name: str) -> str:
    """A DNS name as Cilium compares it: lower case, with its trailing dot."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def pattern_problem(pattern: str) -> str | None:
    """Why Cilium refuses a ``matchPattern``, or None."""
    if not _ALLOWED.match(pattern.strip()):
        return f"{pattern!r} has characters a matchPattern does not allow (letters, digits, '-', '_', '.' and '*' only)"
    return None


@memo.register
@lru_cache(maxsize=4096)
def _pattern(pattern: str, multi_label: bool) -> re.Pattern[str]:
    pattern = pattern.strip().lower()
    stars_only = pattern.rstrip(".") and not pattern.rstrip(".").strip("*")
    if pattern == "*" or (multi_label and stars_only):
        return _MATCH_ALL
    pattern = fqdn(pattern)
    out, i = [], 0
    leading = len(pattern) - len(pattern.lstrip("*"))
    if multi_label and leading >= 2 and pattern[leading : leading + 1] == ".":
        out.append(rf"({_LABEL_CHARS}+([.]{_LABEL_CHARS}+)*)[.]")
        i = leading + 1
    while i < len(pattern):
        c = pattern[i]
        if c == ".":
            out.append("[.]")
        elif c == "*":
            while multi_label and i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out.append(_LABEL_CHARS + "*")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def selects(selector: Mapping[str, Any], name: str, cilium: CiliumFeatures) -> bool:
    """Whether one toFQDNs entry (``{matchName}`` or ``{matchPattern}``) selects ``name``."""
    target = fqdn(name)
    match_name = selector.get("matchName")
    if match_name and fqdn(str(match_name)) == target:
        return True
    pattern = selector.get("matchPattern")
    return bool(pattern) and _pattern(str(pattern), cilium.multi_label_dns_wildcard).match(target) is not None


def any_selects(selectors: Iterable[Mapping[str, Any]], names: Iterable[str], cilium: CiliumFeatures) -> tuple[str, ...]:
    """The names (of ``names``) that some selector selects."""
    selectors = tuple(selectors)
    return tuple(n for n in names if any(selects(s, n, cilium) for s in selectors))


def name_matches(entry: str, name: str, version: Version = DEFAULT_CILIUM) -> bool:
    """Whether a ``toFqdns`` entry of the config admits a DNS name, as the cluster's Cilium matches the
    selector it is rendered as (``outside_names.selector``)."""
    return selects(outside_names.selector(entry), name, features(version))
