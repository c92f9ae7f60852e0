"""The core's memo caches, in one list, so tests and benchmarks can start cold.

Each cache holds results of a pure function of its key: compiled policies (by their JSON), probe sets
(by config and rendering), DNS-pattern and HTTP-path regular expressions, Cilium's label filter, and the
ends of Hubble records. Clearing them changes no answer, only how long the next one takes.
"""

from __future__ import annotations


def clear() -> None:
    """Empty every memo cache of the core."""
    from policies.analysis.probes import checks
    from policies.observed import hubble
    from policies.verdict import compile as compile_
    from policies.verdict import fqdn, http
    from policies.verdict.identity import keep_label

    hubble._ENDS.clear()
    keep_label.cache_clear()
    compile_._COMPILED.clear()
    checks._PROBE_SETS.clear()
    fqdn._pattern.cache_clear()
    http._regex.cache_clear()
