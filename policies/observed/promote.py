"""Promotion: from staged to enforced, once a capture shows nothing of the namespace would drop.

``check`` reads the replay (which judges a staged namespace as enforced, by Cilium's own policy verdicts
where the capture has them): the namespace may be enforced only when the capture holds connections of it
and none of them would drop or is undecided. ``promoted_text`` is the stack file with the namespace
enforced (its own ``enforcement`` set, comments and style kept): the change a pull request's plan then
shows as a narrowing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from policies.config import PROJECT, StackConfig
from policies.observed.fragment import dumped, round_trip
from policies.observed.records import Observations
from policies.observed.replay import Replayed, ReplayReport


@dataclass(frozen=True)
class Promotion:
    namespace: str
    connections: int
    """Distinct connections of the capture with an end in the namespace."""
    would_drop: tuple[Replayed, ...]
    undecided: tuple[Replayed, ...]

    @property
    def ready(self) -> bool:
        return bool(self.connections) and not self.would_drop and not self.undecided

    @property
    def why_not(self) -> list[str]:
        """Why the namespace may not be enforced yet, one line each (empty when it may)."""
        out = [f"would drop once enforced: {r.line}: {r.dropped_by}" for r in self.would_drop]
        out += [f"cannot tell offline: {r.line}: {r.dropped_by}" for r in self.undecided]
        if not self.connections:
            out.append(f"the capture holds no connection of {self.namespace}: nothing shows that enforcing it drops nothing")
        return out


def _involves(rows: Iterable[Replayed], namespace: str) -> tuple[Replayed, ...]:
    return tuple(r for r in rows if r.ends is not None and any(e.namespace == namespace for e in r.ends))


def check(report: ReplayReport, obs: Observations, namespace: str) -> Promotion:
    seen = sum(1 for c in obs.connections.values() if namespace in (c.src.namespace, c.dst.namespace))
    return Promotion(namespace, seen, _involves(report.would_drop, namespace), _involves(report.undecided, namespace))


def problems(cfg: StackConfig, namespace: str) -> list[str]:
    """Why ``namespace`` cannot be promoted at all (it is not the stack's, or not staged)."""
    if namespace not in cfg.namespaces:
        return [f"--namespace {namespace}: not a namespace of this stack; its namespaces are: {', '.join(cfg.namespaces)}"]
    if cfg.enforcement(namespace) != "staged":
        return [f"--namespace {namespace}: already enforced; staged namespaces: {', '.join(cfg.staged_namespaces) or 'none'}"]
    return []


def promoted_text(text: str, namespace: str) -> str:
    """The stack file's text with ``namespaces.<namespace>.enforcement: enforced``, all else as it was."""
    from ruamel.yaml.comments import CommentedMap

    yaml, doc, config = round_trip(text)
    key = f"{PROJECT}:namespaces"
    if config.get(key) is None:
        config[key] = CommentedMap()
    if config[key].get(namespace) is None:
        config[key][namespace] = CommentedMap()
    config[key][namespace]["enforcement"] = "enforced"
    return dumped(yaml, doc)
