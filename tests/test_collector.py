"""The garbage collector's settings around a plan and a command: set for the run, restored after it."""

from __future__ import annotations

import gc

import pytest

from zerotrust import collector, plan as plan_module


def test_a_plan_runs_with_the_plan_thresholds_and_restores_the_callers_after_it(monkeypatch):
    seen = []
    real = plan_module.run_program

    def spy(*args, **kwargs):
        seen.append(gc.get_threshold())
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_module, "run_program", spy)
    before = gc.get_threshold()
    assert before != collector.PLAN_THRESHOLDS
    plan_module.make_plan("dev")
    assert seen == [collector.PLAN_THRESHOLDS] and gc.get_threshold() == before


def test_the_thresholds_are_restored_when_the_run_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector.fewer_collections():
        raise RuntimeError("a failed plan")
    assert gc.get_threshold() == before


def test_a_command_collects_again_after_its_imports_leaving_what_they_built_frozen():
    if not gc.isenabled():
        pytest.skip("the collector is off in this process")
    try:
        gc.disable()
        kept = [object() for _ in range(3)]
        collector.command_started()
        assert gc.isenabled() and gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
        gc.enable()
