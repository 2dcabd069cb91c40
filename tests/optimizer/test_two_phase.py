"""The solve's quick phase (no presolve, a share of the limit) and when it is skipped."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.scale.shapes import SHAPES
from benchmarks.synthetic import synthetic_window
from models import load_documents
from models.load import load_paths
from optimizer import SolveConfig, optimize


def test_an_easy_window_is_proved_in_the_quick_phase() -> None:
    plan = optimize(synthetic_window(40, 30, seed=3), SolveConfig(time_limit=5, preemption=False))
    assert plan.status == "OPTIMAL"
    assert "solve_quick" in plan.timings
    assert plan.timings["solve_quick"] == plan.timings["solve"]  # no second phase ran


def test_no_quick_phase_when_off_or_when_the_presolve_is_configured() -> None:
    inv = synthetic_window(40, 30, seed=3)
    for cfg in (SolveConfig(time_limit=5, quick_phase=0.0),
                SolveConfig(time_limit=5, extra_parameters={"cp_model_presolve": True})):
        plan = optimize(inv, cfg)
        assert "solve_quick" not in plan.timings and plan.status == "OPTIMAL"


def test_both_phases_agree_with_one_solve_on_a_window_that_needs_the_second() -> None:
    # over-full: the quick phase cannot prove it in its share; the plan is still verified and
    # at least as good as the single solve's greedy hint
    inv = synthetic_window(100, 2000, seed=5)
    two = optimize(inv, SolveConfig(time_limit=2, seed=1))
    one = optimize(inv, SolveConfig(time_limit=2, seed=1, quick_phase=0.0))
    assert two.timings["solve"] > two.timings["solve_quick"] > 0  # the second phase ran
    assert two.verified and one.verified
    assert two.objective >= two.baseline["value"] and one.objective >= one.baseline["value"]
    assert len(two.placements) >= one.baseline["placed_agents"]


def test_the_hint_covers_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A complete hint is one solution CP-SAT can take before any search (its `complete_hint`);
    a variable left out (spread's minimum and receive literals were) makes it search for a
    completion, which on 20,000 x 20,000 did not end within the limit."""
    from optimizer import solve

    seen: list[tuple[int, int]] = []
    real = solve._two_phase

    def spy(mb: Any, obj: Any, cfg: SolveConfig, share: float, clock: Any) -> Any:
        proto = mb.model.proto
        seen.append((len(set(proto.solution_hint.vars)), len(proto.variables)))
        return real(mb, obj, cfg, share, clock)

    monkeypatch.setattr(solve, "_two_phase", spy)
    optimize(load_documents(SHAPES["mixed"](60, 60), source="t"), SolveConfig(time_limit=1))
    optimize(load_paths(["examples/fleet"]), SolveConfig(time_limit=1))
    assert len(seen) == 2 and all(hinted == total for hinted, total in seen), seen
