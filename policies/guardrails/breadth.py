"""How much of the internet a set of address ranges covers: public addresses, counted exactly.

An address peer (``toCIDR``/``toCIDRSet``, ``fromCIDR``/``fromCIDRSet``) or an API server's
authorized ranges are judged by the public addresses they hold: the union of the ranges, less
their ``except`` ranges, less every range that is not globally reachable (private, shared,
loopback, link-local, documentation... the IANA special-purpose registries, the same table
Python's ``ipaddress.is_global`` reads). Two /17s count as much as one /16, and
``128.0.0.0/1`` counts as half of IPv4, so splitting a range never hides its breadth.

A stack's limit is a prefix length per family (``"/16"``: no more public addresses than a /16
holds), set per rule in the guardrail level files (``publicIpv4Limit``, ``publicIpv6Limit``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

NOT_GLOBAL: dict[int, tuple[str, ...]] = {
    4: (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
    ),
    6: ("::/128", "::1/128", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10"),
}
"""Ranges no internet peer lives in: the IANA special-purpose ranges that are not globally
reachable. Only whole ranges Python's ``ipaddress.is_global`` also calls not global are here (a
test holds the table to it); ranges with globally reachable holes (192.0.0.0/24), multicast,
IPv4-mapped IPv6 and what older Pythons call global (6to4, 3fff::/20) count as public, which
errs on the strict side."""

SETTINGS = {"publicIpv4Limit": "/16", "publicIpv6Limit": "/48"}
"""The level-file settings of the breadth rules and their defaults: a /16 of IPv4, a /48 of IPv6."""
BITS = {4: 32, 6: 128}
FAMILY = {"publicIpv4Limit": 4, "publicIpv6Limit": 6}


def _interval(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


def _union(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _minus(have: list[tuple[int, int]], cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for lo, hi in have:
        pieces = [(lo, hi)]
        for clo, chi in cut:
            pieces = [p for a, b in pieces for p in ((a, min(b, clo - 1)), (max(a, chi + 1), b)) if p[0] <= p[1]]
        out += pieces
    return out


_NOT_GLOBAL = {v: _union(_interval(ipaddress.ip_network(c)) for c in nets) for v, nets in NOT_GLOBAL.items()}


@dataclass(frozen=True)
class Breadth:
    """The public addresses some ranges hold, per family."""

    ipv4: int
    ipv6: int

    def count(self, version: int) -> int:
        return self.ipv4 if version == 4 else self.ipv6


def public_addresses(ranges: Iterable[tuple[str, Iterable[str]]]) -> Breadth:
    """The public addresses a set of (cidr, excepts) ranges holds: their union, less the excepts
    of each range (an except cuts only its own range), less what is not globally reachable.
    Strings that are no range are skipped (schema checks report them)."""
    held: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for cidr, excepts in ranges:
        try:
            net = ipaddress.ip_network(str(cidr), strict=False)
            holes = [ipaddress.ip_network(str(e), strict=False) for e in excepts]
        except ValueError:
            continue
        own = _minus([_interval(net)], _union(_interval(h) for h in holes if h.version == net.version))
        held[net.version] += own
    counts = {}
    for version, intervals in held.items():
        public = _minus(_union(intervals), _NOT_GLOBAL[version])
        counts[version] = sum(hi - lo + 1 for lo, hi in public)
    return Breadth(counts[4], counts[6])


def parse_limit(value: object, key: str) -> int:
    """A limit setting (``"/16"``) -> the number of addresses it allows; ``ValueError`` in words."""
    version = FAMILY[key]
    text = str(value) if isinstance(value, str) else ""
    digits = text.removeprefix("/")
    if not text.startswith("/") or not digits.isdigit() or not 0 <= int(digits) <= BITS[version]:
        raise ValueError(f"must be a prefix length like \"{SETTINGS[key]}\" (\"/0\" to \"/{BITS[version]}\")")
    return 2 ** (BITS[version] - int(digits))


def limits(settings: dict[str, object] | None) -> dict[int, tuple[str, int]]:
    """Per family: (the setting as written, the addresses it allows), defaults filled in."""
    merged = {**SETTINGS, **(settings or {})}
    return {FAMILY[k]: (str(merged[k]), parse_limit(merged[k], k)) for k in SETTINGS}


def over(breadth: Breadth, settings: dict[str, object] | None) -> list[str]:
    """One phrase per family whose public addresses exceed the limit."""
    out = []
    for version, (written, allowed) in limits(settings).items():
        n = breadth.count(version)
        if n > allowed:
            out.append(f"{n:,} public IPv{version} addresses, more than the {written} this stack allows ({allowed:,})")
    return out
