"""The solve's quick phase (no presolve, a share of the limit) and when it is skipped; small
models' single light-presolve solve."""

from __future__ import annotations

from benchmarks.synthetic import synthetic_window
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


def test_a_small_model_solves_once_with_the_light_presolve(monkeypatch) -> None:
    import optimizer.solve as solve

    seen: list[dict[str, object]] = []
    real = solve.cp_solver

    def spy(cfg: SolveConfig, gap: int):  # type: ignore[no-untyped-def]
        seen.append(dict(cfg.extra_parameters))
        return real(cfg, gap)

    monkeypatch.setattr(solve, "cp_solver", spy)
    inv = synthetic_window(40, 30, seed=3)
    plan = optimize(inv, SolveConfig(time_limit=5, preemption=False))
    assert plan.status == "OPTIMAL" and "solve_quick" not in plan.timings
    assert seen == [solve.LIGHT_PRESOLVE]  # one solve, light presolve
    seen.clear()  # a parameter the caller sets wins over the light preset
    optimize(inv, SolveConfig(time_limit=5, preemption=False,
                              extra_parameters={"max_presolve_iterations": 3}))
    assert seen == [{**solve.LIGHT_PRESOLVE, "max_presolve_iterations": 3}]
    seen.clear()  # above the threshold: the two phases, the first without presolve
    optimize(inv, SolveConfig(time_limit=5, preemption=False, light_presolve_below=10))
    assert seen[0] == {"cp_model_presolve": False}
