"""Node-class aggregation: exact de-aggregation, verified plans, never worse than the greedy,
never above the per-node model's proven bound (it is a restriction of it)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.synthetic import synthetic_window
from models import load_documents
from optimizer import SolveConfig, optimize
from optimizer.aggregate import _AggModel, applicable, deaggregate, node_classes
from optimizer.index import Index
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import node, pod


def test_deaggregation_is_exact_and_even() -> None:
    ix = Index(build_snapshot(synthetic_window(40, 30, seed=4)))
    members = [np.arange(0, 7), np.arange(7, 10), np.arange(10, 40)]
    agg = _AggModel(np.zeros(ix.num_nodes, dtype=np.int64), members, {}, {})
    y = {(0, 0): 17, (1, 0): 5, (0, 1): 3, (1, 2): 29, (2, 2): 31}
    counts = deaggregate(ix, agg, y)
    for (c, k), v in y.items():
        got = counts[c, members[k]]
        assert got.sum() == v
        assert got.max() - got.min() <= 1  # floor or ceil of v / m_k: at most q[c, k]
    # classes continue the rotation: the two remainders of node class 0 land on different nodes
    assert (counts[:2, members[0]].sum(axis=0)).max() - (counts[:2, members[0]].sum(axis=0)).min() <= 1


def test_identical_nodes_form_one_class() -> None:
    docs = [node(f"n{i}") for i in range(6)] + [node("big", cpu="16")]
    docs += [pod("r", node_name="n0"), pod("a")]
    ix = Index(build_snapshot(load_documents(docs, source="t")))
    _, full = prefilter(ix)
    classes, k = node_classes(ix, full, [])
    assert k == 3  # five idle 4-cpu nodes, n0 with a running pod, the 16-cpu node
    of = dict(zip(ix.node_names, classes.tolist(), strict=True))
    assert len({of[f"n{i}"] for i in range(1, 6)}) == 1
    assert len({of["n0"], of["n1"], of["big"]}) == 3


@pytest.mark.parametrize("seed,nodes,agents", [(1, 40, 120), (2, 30, 400), (3, 60, 60)])
def test_aggregated_plan_is_valid_and_bounded_by_the_full_model(seed: int, nodes: int,
                                                                agents: int) -> None:
    inv = synthetic_window(nodes, agents, seed=seed)
    # no preemption: with victims and stranded agents aggregation steps aside (test below)
    agg = optimize(inv, SolveConfig(time_limit=2, aggregate="auto", preemption=False))
    full = optimize(inv, SolveConfig(time_limit=2, preemption=False))
    assert agg.model.get("aggregation") is True
    snap = build_snapshot(inv)
    assert verify([(p.agent, p.node) for p in agg.placements], snap) == []
    assert agg.objective >= agg.baseline["value"]  # never below the greedy plan
    assert agg.bound is None and agg.status in ("FEASIBLE", "FALLBACK")
    if full.bound is not None:  # a restriction of the per-node model
        assert agg.objective <= full.bound
    assert len(agg.placements) >= agg.baseline["placed_agents"]


def test_not_applicable_with_spread_or_packing() -> None:
    spread = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
              "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"a": "b"}}}
    p = pod("p", labels={"a": "b"})
    p["spec"]["topologySpreadConstraints"] = [spread]
    docs = [node("n0"), node("n1"), p]
    ix = Index(build_snapshot(load_documents(docs, source="t")))
    assert applicable(ix, SolveConfig(aggregate="auto")) is not None
    plan = optimize(load_documents(docs, source="t"), SolveConfig(aggregate="auto"))
    assert "aggregation" not in plan.model and plan.status == "OPTIMAL"
    ix = Index(build_snapshot(load_documents([node("n0"), pod("q")], source="t")))
    assert applicable(ix, SolveConfig(aggregate="auto", profile="pack")) is not None
    assert applicable(ix, SolveConfig(aggregate="auto")) is None


def test_victims_keep_the_per_node_model_unless_the_greedy_placed_everyone() -> None:
    docs = [node("n0", cpu="2"), node("n1", cpu="2"),
            pod("low", cpu="2", node_name="n0", priority=1), pod("low2", cpu="2", node_name="n1", priority=1),
            pod("hi", cpu="2", priority=100)]
    inv = load_documents(docs, source="t")
    plan = optimize(inv, SolveConfig(aggregate="auto"))
    assert "aggregation" not in plan.model  # evictions are decided per node
    assert [p.agent for p in plan.placements] == ["default/hi"] and len(plan.evictions) == 1
    roomy = load_documents([*docs[:2], node("n2", cpu="2"), *docs[2:]], source="t")
    plan = optimize(roomy, SolveConfig(aggregate="auto"))
    assert plan.model.get("aggregation") is True and plan.evictions == []
    assert [p.agent for p in plan.placements] == ["default/hi"]
