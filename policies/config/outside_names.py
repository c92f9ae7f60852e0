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

from functools import lru_cache

from policies.cilium_versions import DEFAULT_CILIUM, Version, features
from policies.verdict import fqdn

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


def selector(name: str) -> dict[str, str]:
    """A ``toFqdns`` entry as Cilium takes it (in ``toFQDNs`` and in DNS rules): ``matchPattern`` or ``matchName``."""
    return {"matchPattern": name} if name.startswith("*") else {"matchName": name}


def name_matches(pattern: str, name: str, version: Version = DEFAULT_CILIUM) -> bool:
    """Whether a ``toFqdns`` entry admits a DNS name, as the cluster's Cilium matches the selector it is
    rendered as (``policies.verdict.fqdn``)."""
    return fqdn.selects(selector(pattern), name, features(version))


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
