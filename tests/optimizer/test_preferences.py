"""The soft term's scored preferences: preferred inter-pod (anti-)affinity and ScheduleAnyway
topology spread. Table cases give a plan and the exact value kube's scoring reading gives it;
the solver cases check that the objective steers to the better-scoring node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ortools.sat.python import cp_model
from typer.testing import CliRunner

from api.cli import app
from models.load import load_paths
from optimizer import SolveConfig, optimize
from optimizer.index import Index
from optimizer.model import ModelBuilder, candidate_pairs
from optimizer.objective import encode_objective
from optimizer.preferences import SPREAD_PENALTY, SoftTerm
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from tests.builders import inventory, node, pod

HOST = "kubernetes.io/hostname"
ZONE = "zone"


def term(weight: int, key: str, **labels: str) -> dict[str, Any]:
    return {"weight": weight, "podAffinityTerm": {
        "labelSelector": {"matchLabels": labels}, "topologyKey": key}}


def prefers(*, affinity: list[dict[str, Any]] | None = None,
            anti: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if affinity:
        out["podAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": affinity}
    if anti:
        out["podAntiAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": anti}
    return out


def anyway(key: str = ZONE, max_skew: int = 1, **labels: str) -> dict[str, Any]:
    return {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels or {"app": "web"}}}


def web(name: str, *spread: dict[str, Any], labels: dict[str, str] | None = None,
        **kw: Any) -> dict[str, Any]:
    p = pod(name, labels=labels or {"app": "web"}, **kw)
    if spread:
        p["spec"]["topologySpreadConstraints"] = list(spread)
    return p


def zones(*spec: str) -> list[dict[str, Any]]:
    """'a1:a' -> node a1 in zone a."""
    return [node(s.split(":")[0], labels={ZONE: s.split(":")[1]}) for s in spec]


def soft_value(objects: list[dict[str, Any]], plan: dict[str, str]) -> dict[str, int]:
    snap = build_snapshot(inventory(*objects))
    ix = Index(snap)
    _, full = prefilter(ix)
    mb = ModelBuilder(ix, *candidate_pairs(ix, full))
    mb.build_variables()
    soft = SoftTerm(mb)
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    for a, n in plan.items():
        counts[ix.class_of[snap.agent_pos[f"default/{a}"]], snap.node_pos[n]] += 1
    parts = soft.parts(counts)
    assert 0 <= soft.evaluate(counts) <= soft.max_value()
    return {"pod": parts["pod"], "spread": parts["spread"], "node": parts["node"]}


NODES = [node("a"), node("b")]
DB_ON_A = pod("db", node_name="a", labels={"app": "db"})
ANTI_SELF = prefers(anti=[term(10, HOST, app="web")])

# (name, objects, plan, want pod part, want spread part)
TABLE = [
    ("affinity to a running pod is met on its node",
     [*NODES, DB_ON_A, web("w", affinity=prefers(affinity=[term(30, HOST, app="db")]))],
     {"w": "a"}, 0, 0),
    ("affinity to a running pod is missed elsewhere: its weight",
     [*NODES, DB_ON_A, web("w", affinity=prefers(affinity=[term(30, HOST, app="db")]))],
     {"w": "b"}, 30, 0),
    ("anti-affinity to a running pod costs its weight in the pod's domain",
     [*NODES, DB_ON_A, web("w", affinity=prefers(anti=[term(20, HOST, app="db")]))],
     {"w": "a"}, 20, 0),
    ("a running pod's preferred anti-affinity repels the agent (symmetric term)",
     [*NODES, pod("db", node_name="a", labels={"app": "db"},
                  affinity=prefers(anti=[term(25, HOST, app="web")])), web("w")],
     {"w": "a"}, 25, 0),
    ("a running pod's preferred affinity attracts the agent: met on its node",
     [*NODES, pod("db", node_name="a", labels={"app": "db"},
                  affinity=prefers(affinity=[term(25, HOST, app="web")])), web("w")],
     {"w": "a"}, 0, 0),
    ("two self-repelling agents on one node: one pair, scored from both ends",
     [*NODES, web("w1", affinity=ANTI_SELF), web("w2", affinity=ANTI_SELF)],
     {"w1": "a", "w2": "a"}, 20, 0),
    ("two self-repelling agents apart: nothing",
     [*NODES, web("w1", affinity=ANTI_SELF), web("w2", affinity=ANTI_SELF)],
     {"w1": "a", "w2": "b"}, 0, 0),
    ("three self-repelling agents on one node: three pairs",
     [*NODES, *(web(f"w{i}", affinity=ANTI_SELF) for i in range(3))],
     {"w0": "a", "w1": "a", "w2": "a"}, 60, 0),
    ("an agent attracted to another class in the window: met when together",
     [*NODES, web("w", affinity=prefers(affinity=[term(40, HOST, app="cache")])),
      pod("c", labels={"app": "cache"})],
     {"w": "a", "c": "a"}, 0, 0),
    ("an agent attracted to another class in the window: missed apart",
     [*NODES, web("w", affinity=prefers(affinity=[term(40, HOST, app="cache")])),
      pod("c", labels={"app": "cache"})],
     {"w": "a", "c": "b"}, 40, 0),
    ("ScheduleAnyway: one per zone has no excess",
     [*zones("a1:a", "b1:b", "c1:c"), *(web(f"w{i}", anyway()) for i in range(3))],
     {"w0": "a1", "w1": "b1", "w2": "c1"}, 0, 0),
    ("ScheduleAnyway: 2/1/0 is one agent above maxSkew",
     [*zones("a1:a", "b1:b", "c1:c"), *(web(f"w{i}", anyway()) for i in range(3))],
     {"w0": "a1", "w1": "a1", "w2": "b1"}, 0, SPREAD_PENALTY),
    ("ScheduleAnyway: 3/0/0 is two agents above maxSkew",
     [*zones("a1:a", "b1:b", "c1:c"), *(web(f"w{i}", anyway()) for i in range(3))],
     {"w0": "a1", "w1": "a1", "w2": "a1"}, 0, 2 * SPREAD_PENALTY),
    ("ScheduleAnyway: maxSkew 2 tolerates 2/0/0",
     [*zones("a1:a", "b1:b", "c1:c"), *(web(f"w{i}", anyway(max_skew=2)) for i in range(2))],
     {"w0": "a1", "w1": "a1"}, 0, 0),
    ("ScheduleAnyway: running pods count, so joining the emptier zone is free",
     [*zones("a1:a", "b1:b"), pod("r", node_name="a1", labels={"app": "web"}),
      web("w", anyway())],
     {"w": "b1"}, 0, 0),
    ("ScheduleAnyway: joining the fuller zone is one above maxSkew",
     [*zones("a1:a", "b1:b"), pod("r", node_name="a1", labels={"app": "web"}),
      web("w", anyway())],
     {"w": "a1"}, 0, SPREAD_PENALTY),
    ("ScheduleAnyway: a node without the key scores worst",
     [*zones("a1:a"), node("bare"), web("w", anyway())],
     {"w": "bare"}, 0, SPREAD_PENALTY),
]


@pytest.mark.parametrize(("objects", "plan", "pod_part", "spread_part"),
                         [pytest.param(o, p, a, s, id=n) for n, o, p, a, s in TABLE])
def test_soft_scoring_table(objects: list[dict[str, Any]], plan: dict[str, str], pod_part: int,
                            spread_part: int) -> None:
    got = soft_value(objects, plan)
    assert (got["pod"], got["spread"]) == (pod_part, spread_part)


FREE = SolveConfig(time_limit=5, weights={"balance": 0.0})  # only the soft term decides


def test_solver_joins_the_running_pod_it_prefers() -> None:
    inv = inventory(node("a"), node("b"), node("c"), pod("db", node_name="b", labels={"app": "db"}),
                    web("w", affinity=prefers(affinity=[term(30, HOST, app="db")])))
    plan = optimize(inv, FREE)
    assert plan.assignment() == {"default/w": "b"}
    assert plan.objective_terms["terms"]["soft"]["value"] == 0


def test_solver_keeps_self_repelling_agents_apart_even_when_packing() -> None:
    inv = inventory(node("a"), node("b"), *(web(f"w{i}", affinity=ANTI_SELF) for i in range(2)))
    packed = optimize(inv, SolveConfig(time_limit=5, profile="pack", weights={"soft": 0.0}))
    assert len(set(packed.assignment().values())) == 1
    apart = optimize(inv, SolveConfig(time_limit=5, profile="pack", weights={"soft": 3.0}))
    assert len(set(apart.assignment().values())) == 2
    assert apart.objective_terms["terms"]["soft"]["value"] < packed.objective_terms["terms"]["soft"]["value"]


def test_solver_co_locates_window_agents_that_attract_each_other() -> None:
    inv = inventory(node("a"), node("b"), node("c"),
                    web("w", affinity=prefers(affinity=[term(40, HOST, app="cache")])),
                    pod("c", labels={"app": "cache"}))
    plan = optimize(inv, FREE)
    where = plan.assignment()
    assert where["default/w"] == where["default/c"]


def test_solver_spreads_schedule_anyway_agents_over_zones_against_packing() -> None:
    inv = inventory(*zones("a1:a", "a2:a", "b1:b", "c1:c"),
                    *(web(f"w{i}", anyway()) for i in range(3)))
    plan = optimize(inv, SolveConfig(time_limit=5, profile="pack", weights={"soft": 3.0}))
    snap = build_snapshot(inv)
    zone_of = {n.name: n.labels[ZONE] for n in snap.nodes}
    assert sorted(zone_of[n] for n in plan.assignment().values()) == ["a", "b", "c"]
    assert plan.objective_terms["terms"]["soft"]["value"] == 0


def test_soft_term_value_matches_the_encoding_on_fixed_plans() -> None:
    """For fixed plans, CP-SAT's objective (from the encoding) equals the objective computed from
    the plan's counts (Term.evaluate), so the reported bound and gap mean what they say."""
    objects = [*zones("a1:a", "a2:a", "b1:b"), pod("db", node_name="a1", labels={"app": "db"}),
               *(web(f"w{i}", anyway(), affinity=prefers(affinity=[term(5, ZONE, app="db")],
                                                         anti=[term(7, HOST, app="web")]))
                 for i in range(4)),
               pod("c", labels={"app": "web"})]
    snap = build_snapshot(inventory(*objects))
    ix = Index(snap)
    _, full = prefilter(ix)
    rng = np.random.default_rng(7)
    for _ in range(6):
        mb = ModelBuilder(ix, *candidate_pairs(ix, full))
        mb.build_variables()
        obj = encode_objective(mb, SolveConfig(weights={"soft": 2.0}))
        counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
        for a in range(len(snap.pending)):
            counts[ix.class_of[a], rng.integers(ix.num_nodes)] += 1
        for p, (c, n) in enumerate(zip(mb.pair_cls.tolist(), mb.pair_node.tolist(), strict=True)):
            mb.model.add(mb.x[p] == int(counts[c, n]))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        assert solver.solve(mb.model) == cp_model.OPTIMAL
        assert round(solver.objective_value) == obj.value(counts)
        assert obj.terms[3].name == "soft" and obj.terms[3].evaluate(counts) > 0


def test_the_bundled_example_exercises_pod_anti_affinity_and_schedule_anyway() -> None:
    snap = build_snapshot(load_paths([Path(__file__).parents[2] / "examples" / "fleet"]))
    ix = Index(snap)
    _, full = prefilter(ix)
    mb = ModelBuilder(ix, *candidate_pairs(ix, full))
    mb.build_variables()
    soft = SoftTerm(mb)
    assert [pt.key for pt in soft.tb.pairs if pt.anti] == [HOST]
    assert [g.inst.c.topology_key for g in soft.tb.spread] == ["topology.kubernetes.io/zone"]


def test_plan_table_shows_the_soft_parts() -> None:
    docs = [*zones("a1:a", "b1:b"), *(web(f"w{i}", anyway()) for i in range(2))]
    res = CliRunner().invoke(app, ["plan", "-f", "-"], input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": docs}))
    assert res.exit_code == 0, res.output
    assert "ScheduleAnyway spread 0" in res.output


def test_the_greedy_hint_stays_complete_with_soft_pod_and_spread_variables(capfd: Any) -> None:
    inv = inventory(*zones("a1:a", "a2:a", "b1:b"), pod("db", node_name="a1", labels={"app": "db"}),
                    *(web(f"w{i}", anyway(), affinity=prefers(affinity=[term(5, ZONE, app="db")],
                                                              anti=[term(7, HOST, app="web")]))
                      for i in range(4)), pod("c", labels={"app": "web"}))
    optimize(inv, SolveConfig(time_limit=5, weights={"soft": 2.0}, log_search=True))
    assert "The solution hint is complete and is feasible" in capfd.readouterr().out
