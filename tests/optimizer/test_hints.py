"""Hint completion (optimizer/hints.py): the rules' unhinted auxiliaries get values consistent
with the hinted plan, so the quick phase (no presolve) starts from a complete solution."""

from __future__ import annotations

from ortools.sat.python import cp_model

from optimizer.hints import add_hints, complete_hint


def _hints(model: cp_model.CpModel) -> dict[int, int]:
    proto = model.proto
    return dict(zip(proto.solution_hint.vars, proto.solution_hint.values, strict=True))


def _model() -> tuple[cp_model.CpModel, list[cp_model.IntVar], cp_model.IntVar, cp_model.IntVar]:
    """x per node, an unhinted `receives` literal and an unhinted minimum, like the spread rule's."""
    m = cp_model.CpModel()
    xs = [m.new_int_var(0, 3, f"x{i}") for i in range(3)]
    recv = m.new_bool_var("recv")
    m.add(xs[0] + xs[1] <= 6 * recv)
    low = m.new_int_var(0, 9, "min")
    for x in xs:
        m.add(low <= x)
    m.add(sum(xs) <= 5)
    m.maximize(sum(xs) + low)
    return m, xs, recv, low


def test_missing_variables_get_values_consistent_with_the_hinted_ones() -> None:
    m, xs, recv, low = _model()
    for x, v in zip(xs, (2, 0, 1), strict=True):
        m.add_hint(x, v)
    assert complete_hint(m, 1.0) == 2
    h = _hints(m)
    assert [h[x.index] for x in xs] == [2, 0, 1]  # the hinted values are kept
    assert h[recv.index] == 1 and h[low.index] == 0  # forced by x0 = 2 and x1 = 0
    # the completed hint is a full solution: fixing every variable to it is feasible
    s = cp_model.CpSolver()
    s.parameters.fix_variables_to_their_hinted_value = True
    assert s.solve(m) == cp_model.OPTIMAL


def test_a_complete_or_infeasible_hint_is_left_alone() -> None:
    m, xs, _, _ = _model()
    for x in xs:
        m.add_hint(x, 3)  # 9 > 5: no completion exists
    assert complete_hint(m, 1.0) == 0
    assert set(_hints(m)) == {x.index for x in xs}
    m2, xs2, recv2, low2 = _model()
    for var, v in ((xs2[0], 1), (xs2[1], 1), (xs2[2], 1), (recv2, 1), (low2, 1)):
        m2.add_hint(var, v)
    assert complete_hint(m2, 1.0) == 0 and len(_hints(m2)) == 5


def test_add_hints_equals_add_hint_per_variable() -> None:
    m1, xs1, _, _ = _model()
    m2, xs2, _, _ = _model()
    for x, v in zip(xs1, (2, 0, 1), strict=True):
        m1.add_hint(x, v)
    add_hints(m2, xs2, [2, 0, 1])
    assert _hints(m1) == _hints(m2) == {xs1[0].index: 2, xs1[1].index: 0, xs1[2].index: 1}
