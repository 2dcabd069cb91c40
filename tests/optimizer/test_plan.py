"""Batch plans: where the optimum differs from greedy, priority dominance, accounting."""

from __future__ import annotations

import pytest
from ortools.sat.python import cp_model

from optimizer import SolveConfig, optimize
from optimizer import solve as solve_module
from tests.builders import inventory, node, pod

FAST = SolveConfig(time_limit=5, workers=2)


def test_batch_places_the_big_agent_that_greedy_strands():
    # LeastAllocated spreads the two 2-cpu agents, leaving no node for the 4-cpu one
    inv = inventory(node("n1", "4"), node("n2", "4"),
                    pod("small-1", "2", priority=10), pod("small-2", "2", priority=10),
                    pod("big", "4", priority=0))
    plan = optimize(inv, FAST)
    assert plan.status == "OPTIMAL" and plan.verified
    assert plan.baseline["placed_agents"] == 2
    assert plan.objective_terms["placed_agents"] == 3
    nodes = plan.assignment()
    assert nodes["default/small-1"] == nodes["default/small-2"] != nodes["default/big"]
    assert plan.gap == 0


def test_one_higher_priority_agent_outweighs_many_lower_ones():
    inv = inventory(node("n1", "4"),
                    pod("vip", "4", priority=1000),
                    *[pod(f"bulk-{i}", "1", priority=1) for i in range(4)])
    plan = optimize(inv, FAST)
    assert plan.assignment() == {"default/vip": "n1"}
    assert {u.agent for u in plan.unplaced} == {f"default/bulk-{i}" for i in range(4)}
    assert plan.objective_terms["lexicographic_priority"] is True


def test_unplaced_agents_get_kube_reasons_against_the_planned_cluster():
    inv = inventory(node("n1", "2"), node("n2", "2"),
                    pod("a", "2", priority=5), pod("b", "2", priority=5), pod("c", "2"))
    plan = optimize(inv, FAST)
    assert [u.agent for u in plan.unplaced] == ["default/c"]
    assert plan.unplaced[0].reason == (
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
        "2 No preemption victims found for incoming pod..")


def test_every_pending_agent_is_placed_or_explained_exactly_once():
    inv = inventory(node("n1", "3"), *[pod(f"p{i}", "1") for i in range(5)],
                    pod("done", "1", node_name="n1", phase="Succeeded"))
    plan = optimize(inv, FAST)
    agents = [p.agent for p in plan.placements] + [u.agent for u in plan.unplaced]
    assert sorted(agents) == sorted(f"default/p{i}" for i in range(5))
    assert len(plan.placements) == 3  # the Succeeded pod holds no capacity


@pytest.mark.parametrize("strategy", ["LeastAllocated", "MostAllocated"])
def test_secondary_strategy_balances_or_packs(strategy):
    inv = inventory(node("n1", "4"), node("n2", "4"), pod("a", "1"), pod("b", "1"))
    plan = optimize(inv, SolveConfig(time_limit=5, strategy=strategy))
    used = set(plan.assignment().values())
    assert len(used) == (2 if strategy == "LeastAllocated" else 1)


def test_identical_agents_share_one_class_and_the_model_counts_pairs_not_agents():
    inv = inventory(*[node(f"n{i}", "8") for i in range(5)],
                    *[pod(f"same-{i}", "1") for i in range(40)])
    plan = optimize(inv, FAST)
    assert plan.model["agent_classes"] == 1
    assert plan.model["candidate_pairs"] == 5
    assert len(plan.placements) == 40


def test_fallback_to_greedy_when_the_solver_finds_nothing(monkeypatch):
    inv = inventory(node("n1", "4"), pod("a", "1"), pod("b", "1"))

    real = cp_model.CpSolver

    class NoSolution(real):
        """A solver that never finds anything, as on a hard instance with a tiny limit."""

        def solve(self, model, *args, **kwargs):
            return cp_model.UNKNOWN

    monkeypatch.setattr(solve_module.cp_model, "CpSolver", NoSolution)
    plan = optimize(inv, FAST)
    assert plan.status == "FALLBACK" and plan.verified and plan.bound is None
    assert len(plan.placements) == 2
    assert any("greedy plan returned" in w for w in plan.warnings)


def test_a_non_integer_gt_bound_is_admitted_like_kube_but_warned_about():
    from tests.builders import expr, required_node_affinity
    inv = inventory(node("n1", "4", labels={"rank": "5"}),
                    pod("a", "1", affinity=required_node_affinity([expr("rank", "Gt", "abc")])))
    plan = optimize(inv, FAST)
    assert plan.placements == []
    assert plan.unplaced[0].reason == (
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
    assert any("'abc' is not an integer" in w for w in plan.warnings)


def test_node_symmetry_breaking_keeps_the_greedy_hint_feasible_and_the_plan_valid():
    inv = inventory(*[node(f"n{i}", "4") for i in range(6)],
                    *[pod(f"a{i}", "3") for i in range(3)], *[pod(f"b{i}", "1") for i in range(9)])
    plan = optimize(inv, SolveConfig(time_limit=5, strategy="MostAllocated", symmetry_breaking="load"))
    assert plan.status == "OPTIMAL" and plan.verified
    assert plan.model["constraints_by_family"]["node symmetry"] == 5
    assert plan.objective_terms["placed_agents"] == 12
    # 18 cpu on 4-cpu nodes: three nodes of 3+1, then six 1-cpu agents on two more
    assert plan.objective_terms["terms"]["pack"]["value"] == 5
