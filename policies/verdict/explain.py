"""The words of a verdict: why a direction is open, for the reasons the engine prints."""

from __future__ import annotations


def not_enforced(direction: str, empty_hint: tuple[str, ...], rejected: tuple[tuple[str, str], ...]) -> str:
    """Why no rule enforces ``direction`` for a pod, with hints at the usual mistakes: the policies with
    ``<direction>: []`` (``empty_hint``) and the (policy, why) pairs Cilium would refuse (``rejected``)."""
    hints = [f"{p} has `{direction}: []`, which enforces nothing" for p in empty_hint]
    hints += [f"{ref} was rejected by Cilium: {why.removeprefix(ref).strip()}" for ref, why in rejected]
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"no selecting rule has a non-empty {direction} section{hint}"
