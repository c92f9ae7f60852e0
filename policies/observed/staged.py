"""Connections of staged namespaces, decided by Cilium itself where the capture holds its policy verdicts.

A staged namespace runs its rules with default deny off: Cilium still evaluates them on every new
connection and says in a policy-verdict event whether a rule matched (``matched``) or the connection passed
only because default deny is off (``default-allow``: enforced, it drops). Where a capture holds such an event
for a staged side of a connection, that side's L3/L4 verdict is Cilium's, not the replay's; where it holds
none (older Cilium, an aggregated Log Analytics row, a lost event), the replay judges the side offline, as
it would be enforced, and says so. L7 and DNS rules are judged offline either way: with default deny off
Cilium adds an L7 allow-all beside them, so its verdicts cannot show what they would refuse.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from policies.verdict import Endpoint, Verdict

DIRECTIONS = (("egress", 0), ("ingress", 1))
"""Each side of a connection: the source's egress, the destination's ingress."""


@dataclass
class StagedTally:
    """How the staged namespaces' connections were decided."""

    by_cilium: int = 0
    """Connections whose staged sides Cilium's policy verdicts decided."""
    offline: int = 0
    """Connections with a staged side the capture holds no usable verdict for: judged offline."""
    disagreements: list[str] = field(default_factory=list)
    """Where Cilium's verdict and the offline judgement of the same side differ (the verdict wins)."""


def decide(
    ends: tuple[Endpoint, Endpoint], names: tuple[str, str], v: Verdict, said: Mapping[str, str | None], staged: Collection[str],
    tally: StagedTally, what: str,
) -> tuple[bool, str, bool, str] | None:
    """(allowed, why, exact, decided by) of a connection with an end in a staged namespace; None otherwise."""
    sides = [(d, i) for d, i in DIRECTIONS if ends[i].reserved is None and ends[i].namespace in staged]
    if not sides:
        return None
    by_cilium = [d for d, _ in sides if said.get(d) in ("matched", "default-allow", "denied")]
    if len(by_cilium) < len(sides):
        tally.offline += 1
    if not by_cilium:
        return v.allowed, v.reason, v.exact, "replay"
    tally.by_cilium += 1
    denied: list[str] = []
    exact = True
    for d, i in DIRECTIONS:
        side = getattr(v, d)
        if d in by_cilium:
            verdict = said[d]
            if (verdict == "matched") != side.allowed:
                tally.disagreements.append(
                    f"{what}: Cilium's policy verdict on the {d} of {names[i]} is {verdict}, the offline replay says {side.reason}"
                )
            if verdict == "default-allow":
                denied.append(f"the {d} of {names[i]} matched no rule and passed only because its namespace is staged: enforced, it drops")
            elif verdict == "denied":
                denied.append(f"the {d} of {names[i]} was dropped by a policy on the cluster")
        elif not side.allowed:
            denied.append(f"{d} {side.reason}")
            exact = exact and side.exact
    if denied:
        return False, "decided by Cilium's policy verdicts: " + "; ".join(denied), exact, "cilium"
    return True, "decided by Cilium's policy verdicts: every staged side matched a rule", True, "cilium"
