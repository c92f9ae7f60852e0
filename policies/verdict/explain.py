"""The words of a verdict: why a direction is open, for the reasons the engine prints."""

from __future__ import annotations

from typing import Any


def not_enforced(view: Any, direction: str) -> str:
    """Why no rule enforces ``direction`` for a pod, with hints at the usual mistakes.

    ``view`` carries ``empty_hint`` (policies with ``<direction>: []``) and
    ``rejected`` ((policy, why) pairs Cilium would refuse).
    """
    hints = [f"{p} has `{direction}: []`, which enforces nothing" for p in view.empty_hint]
    hints += [f"{ref} was rejected by Cilium: {why.removeprefix(ref).strip()}" for ref, why in view.rejected]
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"no selecting rule has a non-empty {direction} section{hint}"
