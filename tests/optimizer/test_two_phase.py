"""The solve's quick phase (no presolve, a share of the limit) and when it is skipped; small
models' single light-presolve solve."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.scale.shapes import SHAPES
from benchmarks.synthetic import synthetic_window
from models import load_documents
from models.load import load_paths
from optimizer import SolveConfig, optimize


def test_an_easy_window_is_proved_in_the_quick_phase() -> None:
    plan = optimize(synthetic_window(40, 30, seed=3), SolveConfig(time_limit=5, preemption=False,
                                                                   light_presolve_below=0))
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
    inv = synthetic_window(300, 1000, seed=2)
    two = optimize(inv, SolveConfig(time_limit=2, seed=1, light_presolve_below=0))
    one = optimize(inv, SolveConfig(time_limit=2, seed=1, quick_phase=0.0))
    assert two.timings["solve"] > two.timings["solve_quick"] > 0  # the second phase ran
    assert two.verified and one.verified
    assert two.objective >= two.baseline["value"] and one.objective >= one.baseline["value"]
    assert len(two.placements) >= one.baseline["placed_agents"]


def test_a_small_model_runs_its_second_phase_with_the_light_presolve(monkeypatch) -> None:
    import optimizer.solve as solve

    seen: list[dict[str, object]] = []
    real = solve.cp_solver

    def spy(cfg: SolveConfig, gap: int):  # type: ignore[no-untyped-def]
        seen.append(dict(cfg.extra_parameters))
        return real(cfg, gap)

    monkeypatch.setattr(solve, "cp_solver", spy)
    inv = synthetic_window(40, 30, seed=3)
    quick = {"cp_model_presolve": False}  # the quick phase keeps symmetry detection
    # a quick phase too short to prove anything: the second phase runs, light presolve
    plan = optimize(inv, SolveConfig(time_limit=5, preemption=False, quick_phase=1e-5))
    assert plan.status == "OPTIMAL" and seen == [quick, solve.LIGHT_PRESOLVE]
    seen.clear()  # a parameter the caller sets wins over the light preset
    optimize(inv, SolveConfig(time_limit=5, preemption=False, quick_phase=1e-5,
                              extra_parameters={"max_presolve_iterations": 3}))
    assert seen[-1] == {**solve.LIGHT_PRESOLVE, "max_presolve_iterations": 3}
    seen.clear()  # above the threshold: the full presolve in the second phase
    optimize(inv, SolveConfig(time_limit=5, preemption=False, quick_phase=1e-5,
                              light_presolve_below=10))
    assert seen == [{"cp_model_presolve": False}, {}]


def test_the_hint_covers_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A complete hint is one solution CP-SAT can take before any search (its `complete_hint`);
    a variable left out (spread's minimum and receive literals were) makes it search for a
    completion, which on 20,000 x 20,000 did not end within the limit."""
    from optimizer import solve

    seen: list[tuple[int, int]] = []
    real = solve._two_phase

    def spy(mb: Any, obj: Any, cfg: SolveConfig, share: float, clock: Any, second: Any = None) -> Any:
        proto = mb.model.proto
        seen.append((len(set(proto.solution_hint.vars)), len(proto.variables)))
        return real(mb, obj, cfg, share, clock, second)

    monkeypatch.setattr(solve, "_two_phase", spy)
    two_phases = SolveConfig(time_limit=1, light_presolve_below=0)  # the path spied on
    optimize(load_documents(SHAPES["mixed"](60, 60), source="t"), two_phases)
    optimize(load_paths(["examples/fleet"]), two_phases)
    assert len(seen) == 2 and all(hinted == total for hinted, total in seen), seen


def test_the_quick_phase_keeps_symmetry_detection_unless_the_trim_cut_the_orbits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SchedulingBasic-like windows (one agent shape, more agents than nodes: nothing to trim)
    are proved by the quick phase only with CP-SAT's symmetry detection (5,000 x 10,000: 0.2 s
    with it, FEASIBLE after 30 s without); where interchangeable.py dropped surplus twins, the
    quick phase skips the detection, as the light presolve does."""
    import optimizer.solve as solve

    seen: list[dict[str, object]] = []
    real = solve.cp_solver

    def spy(cfg: SolveConfig, gap: int) -> Any:
        seen.append(dict(cfg.extra_parameters))
        return real(cfg, gap)

    monkeypatch.setattr(solve, "cp_solver", spy)
    plan = optimize(load_documents(SHAPES["basic"](300, 600), source="t"), SolveConfig(time_limit=5))
    assert plan.status == "OPTIMAL" and plan.timings["solve_quick"] == plan.timings["solve"]
    assert seen[0].get("symmetry_level") is None
    seen.clear()
    plan = optimize(load_documents(SHAPES["basic"](300, 30), source="t"), SolveConfig(time_limit=5,
                                                                                     quick_phase=1e-5))
    assert seen[0] == {**solve.LIGHT_PRESOLVE, "cp_model_presolve": False}, plan.model


def test_a_weighted_balance_term_gets_the_big_first_hint_even_when_nothing_is_stranded() -> None:
    """Mixed shape, every agent fits: the queue-order greedy leaves a 2-cpu agent on an 8-cpu
    node (highest utilisation cpu + memory 29 %), big-first LeastAllocated puts them on the big
    nodes (20 %, the proven optimum at 1,000 x 1,000); CP-SAT alone did not get there in 30 s
    from 5,000 x 5,000 up, so the hint must."""
    plan = optimize(load_documents(SHAPES["mixed"](300, 300), source="t"), SolveConfig(time_limit=1))
    assert plan.model["hint"]["source"] == "greedy-LeastAllocated-decreasing"
    assert plan.baseline["terms"]["balance"]["value"] == 29
    assert plan.objective_terms["terms"]["balance"]["value"] <= 20
    assert len(plan.placements) == 300
