"""The garbage collector, tuned for commands that build many objects and then exit.

CPython collects its youngest generation every 700 net allocations; a plan builds hundreds of thousands
of objects (the SDK's resources and Outputs, the engine's views), so with that default about a third of a
200-workload plan went to collections that found next to nothing (``python -m benchmarks.run``,
docs/benchmarks.md). What a plan builds is freed by reference counting; cycles wait a little longer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

PLAN_THRESHOLDS = (50_000, 1_000, 1_000)
"""``gc.set_threshold`` while a plan runs: the youngest generation every 50,000 net allocations, not 700,
and the older ones as good as never: what outlives a young collection is the plan's own state (the
registered resources, the compiled policies), alive until the plan ends. Cycles still die young, so the
peak memory stays within a tenth of the default's (``python -m benchmarks.collector``)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect less often for the duration (the thresholds are restored after)."""
    old = gc.get_threshold()
    gc.set_threshold(*PLAN_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def command_started() -> None:
    """After a command's imports (with collection disabled while they ran): what they built lives to the
    end, so later collections skip it."""
    gc.freeze()
    gc.enable()


def command_ending() -> None:
    """Before a command exits: the interpreter's last collection would scan everything once more for
    nothing (every file is written and closed by then)."""
    gc.freeze()
