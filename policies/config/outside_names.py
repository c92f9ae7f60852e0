"""Outside names (``toFqdns``) and HTTP rules: what Cilium accepts, and what would be too wide.

- A name is a DNS name; a pattern starts with ``*.`` and Cilium's ``*``
  matches within one DNS label only (``**.`` for several labels is Cilium
  1.19; see ``policies.cilium_versions``).
- A wildcard directly on a public suffix or a shared domain (``*.co.uk``,
  ``*.blob.core.windows.net``) would let a pod reach every tenant's host
  there: the Public Suffix List (ICANN and private sections, the
  ``publicsuffixlist`` package) decides, plus Azure service domains it does
  not list.
- HTTP paths are regular expressions that Envoy matches with RE2 (the
  ``google-re2`` package compiles them exactly as RE2 does); methods are
  the HTTP methods.
"""

from __future__ import annotations

import re
from functools import lru_cache



FQDN = r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")

SHARED_DOMAINS = frozenset(
    {
        # Azure service domains shared by every customer that the Public Suffix List does not list.
        "vault.azure.net",
        "database.windows.net",
        "documents.azure.com",
        "azurecr.io",
        "azure-api.net",
        "redis.cache.windows.net",
        "openai.azure.com",
        "cognitiveservices.azure.com",
        "privatelink.blob.core.windows.net",
    }
)


_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def fqdn_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS name (or a ``*.`` pattern) Cilium takes in ``toFQDNs``, in words; or None."""
    labels = name.removesuffix(".").split(".")
    wildcard = labels[0] == "*"
    rest = labels[1:] if wildcard else labels
    if "*" in name and (not wildcard or "*" in ".".join(rest)):
        return f"{name!r}: a wildcard is a whole first label only ('*.example.com')"
    if "" in rest:
        return f"{name!r} has an empty label (two dots in a row, or a dot at the start)"
    for label in rest:
        if len(label) > 63:
            return f"{name!r}: the label {label[:20]!r}... is longer than 63 characters"
        if not _LABEL.match(label):
            return f"{name!r}: the label {label!r} may hold only letters, digits and inner hyphens"
    if len(rest) == 1 and wildcard:
        return f"{name!r} would match every name under the top-level domain {rest[0]!r}; name your own domain ('*.<yours>.{rest[0]}')"
    if len(rest) == 1:
        return f"{name!r} is a single label; give the full name (api.example.com)"
    if not rest[-1].isalpha():
        return f"{name!r} ends in {rest[-1]!r}, which is no top-level domain (an address? use a peer with cidrs)"
    return None


def selector(name: str) -> dict[str, str]:
    """A ``toFqdns`` entry as Cilium takes it (in ``toFQDNs`` and in DNS rules): ``matchPattern`` or ``matchName``."""
    return {"matchPattern": name} if name.startswith("*") else {"matchName": name}


@lru_cache(maxsize=1)
def _psl():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def wildcard_problem(pattern: str) -> str | None:
    """Why ``*.<domain>`` is too wide, or None."""
    if not pattern.startswith("*."):
        return None
    domain = pattern[2:].rstrip(".")
    if domain in SHARED_DOMAINS or _psl().is_public(domain):
        return (
            f"would match every tenant's host under the shared suffix {domain!r}; "
            f"name your own host or a pattern under it (e.g. '*.<yours>.{domain}')"
        )
    return None


def re2_problem(expression: str) -> str | None:
    """Why RE2 (Envoy's regex engine) refuses ``expression``, or None."""
    import re2

    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(expression, options)
    except re2.error as e:
        detail = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        return f"{expression!r} is not an RE2 regular expression ({detail})"
    return None
