"""Property tests on random small clusters: the vectorised, scalar, solver, greedy and verifier
readings of the same rules must agree with each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import Plan, SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.explain import cluster_usage, node_reasons
from optimizer.index import Index
from optimizer.snapshot import Snapshot, build_snapshot, without_running
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import inventory, node, pod, taint

GPU = "nvidia.com/gpu"
SOLVE = SolveConfig(time_limit=1.0, workers=1)
FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(max_examples=300, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])

TAINTS = [
    ("dedicated", "gpu", "NoSchedule"),
    ("dedicated", "infra", "NoExecute"),
    ("spot", "", "PreferNoSchedule"),
    ("spot", "", "NoSchedule"),
    ("maintenance", "true", "NoExecute"),
]
TOLERATIONS = [
    {"operator": "Exists"},
    {"key": "dedicated", "operator": "Equal", "value": "gpu"},
    {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
    {"key": "dedicated", "value": "infra"},
    {"key": "spot", "operator": "Exists"},
    {"key": "spot", "operator": "Equal", "effect": "NoSchedule"},
    {"key": "maintenance", "operator": "Equal", "value": "false"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
ZONES = ["a", "b", "c"]
RANKS = ["-2", "0", "1", "3", "5", "x"]
VALUES = [*ZONES, *RANKS, "not valid"]  # an invalid label value spoils its whole term


# --- strategies -----------------------------------------------------------------------------

@st.composite
def nodes(draw: st.DrawFn, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        labels = {}
        if draw(st.integers(0, 5)):  # mostly zoned
            labels["zone"] = draw(st.sampled_from(ZONES))
        if draw(st.booleans()):
            labels["rank"] = draw(st.sampled_from(RANKS))
        gpus = draw(st.sampled_from([None, "0", "1", "2", "4"]))
        tainted = draw(st.integers(0, 2)) == 0  # a third of the nodes
        out.append(node(
            f"n{i}",
            cpu=draw(st.sampled_from(["1", "2", "4", "8"])),
            memory=draw(st.sampled_from(["2Gi", "4Gi", "8Gi"])),
            pods=draw(st.sampled_from(["1", "2", "3", "110", "110"])),
            labels=labels,
            taints=[taint(k, v, e) for k, v, e in
                    draw(st.lists(st.sampled_from(TAINTS), min_size=1, max_size=2, unique=True))]
            if tainted else None,
            unschedulable=draw(st.integers(0, 7)) == 0,
            extra={GPU: gpus} if gpus is not None else None,
        ))
    return out


def requirements() -> st.SearchStrategy[dict[str, Any]]:
    def req(key: str, op: str, *values: str) -> dict[str, Any]:
        return {"key": key, "operator": op, **({"values": list(values)} if values else {})}

    key = st.sampled_from(["zone", "rank", "gpu-model"])
    return st.one_of(
        st.builds(lambda k, vs: req(k, "In", *vs), key,
                  st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True)),
        st.builds(lambda k, vs: req(k, "NotIn", *vs), key,
                  st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True)),
        st.builds(lambda k: req(k, "Exists"), key),
        st.builds(lambda k: req(k, "DoesNotExist"), key),
        st.builds(lambda k, v: req(k, "Gt", str(v)), key, st.integers(-3, 5)),
        st.builds(lambda k, v: req(k, "Lt", str(v)), key, st.integers(-3, 5)),
    )


@st.composite
def node_affinity(draw: st.DrawFn, num_nodes: int) -> dict[str, Any]:
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        term: dict[str, Any] = {}
        exprs = draw(st.lists(requirements(), max_size=2))
        if exprs:
            term["matchExpressions"] = exprs
        if draw(st.integers(0, 4)) == 0:
            term["matchFields"] = [{
                "key": "metadata.name", "operator": draw(st.sampled_from(["In", "NotIn"])),
                "values": [f"n{draw(st.integers(0, num_nodes))}"]}]
        terms.append(term)
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": terms}}}


@st.composite
def pending(draw: st.DrawFn, i: int, num_nodes: int) -> dict[str, Any]:
    gpu = draw(st.sampled_from([None, None, None, None, None, "1", "2"]))
    selector = {"zone": draw(st.sampled_from([*ZONES, "d"]))} \
        if draw(st.integers(0, 3)) == 0 else None
    return pod(
        f"p{i:02d}",
        cpu=draw(st.sampled_from([None, "100m", "500m", "1", "2", "3"])),
        memory=draw(st.sampled_from([None, "256Mi", "1Gi", "3Gi"])),
        priority=draw(st.sampled_from([0, 10, 100])),
        tolerations=draw(st.lists(st.sampled_from(TOLERATIONS), max_size=2)) or None,
        node_selector=selector,
        affinity=draw(node_affinity(num_nodes)) if draw(st.integers(0, 3)) == 0 else None,
        extra={GPU: gpu} if gpu else None,
    )


@st.composite
def clusters(draw: st.DrawFn) -> Snapshot:
    num_nodes = draw(st.integers(2, 8))
    objects = draw(nodes(num_nodes))
    for i in range(draw(st.integers(0, 4))):
        objects.append(pod(
            f"r{i}", cpu=draw(st.sampled_from(["100m", "500m", "1", "2"])),
            memory=draw(st.sampled_from([None, "512Mi", "2Gi"])),
            node_name=f"n{draw(st.integers(0, num_nodes - 1))}",
            phase=draw(st.sampled_from(["Running", "Running", "Succeeded"])),
            extra={GPU: "1"} if draw(st.integers(0, 3)) == 0 else None,
            priority=draw(st.sampled_from([None, 0, 5, 50])),
            labels={"app": draw(st.sampled_from(["web", "batch"]))},
        ))
    if draw(st.booleans()):
        objects.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                        "metadata": {"name": "web", "namespace": "default"},
                        "spec": {"selector": {"matchLabels": {"app": "web"}}},
                        "status": {"disruptionsAllowed": draw(st.integers(0, 1))}})
    for i in range(draw(st.integers(1, 15))):
        objects.append(draw(pending(i, num_nodes)))
    return build_snapshot(inventory(*objects))


# --- the properties, as plain checks so the fast and heavy tests share them -----------------

@dataclass
class Solved:
    snap: Snapshot
    plan: Plan


def solve(snap: Snapshot) -> Solved:
    return Solved(snap, optimize(snap, SOLVE))


def check_prefilter_matches_scalar_explain(snap: Snapshot) -> None:
    """(i) for every agent x node: full vectorised mask == scalar explain finds no reason."""
    ix = Index(snap)
    _, full = prefilter(ix)
    usage = cluster_usage(snap)
    for a, agent in enumerate(snap.pending):
        c = int(ix.class_of[a])
        for n, nd in enumerate(snap.nodes):
            reasons = node_reasons(agent, nd, usage[nd.name])
            assert bool(full[c, n]) == (not reasons), (agent.ref, nd.name, reasons)


def check_plan_is_verified_and_optimal(s: Solved) -> None:
    """(ii) the solver's plan passes the verifier and is proven optimal on tiny instances."""
    assert s.plan.verified
    assert s.plan.status == "OPTIMAL", s.plan.warnings
    placements = [(p.agent, p.node) for p in s.plan.placements]
    assert verify(placements, s.snap, [u.agent for u in s.plan.unplaced],
                  evictions=s.plan.eviction_triples()) == []


def check_greedy_is_valid(snap: Snapshot) -> None:
    """(iii) every greedy baseline assignment passes the verifier."""
    ix = Index(snap)
    static, _ = prefilter(ix)
    for strategy in ("LeastAllocated", "MostAllocated"):
        node_of = greedy(ix, static, strategy)
        placements = [(snap.pending[a].ref, ix.node_names[n])
                      for a, n in enumerate(node_of.tolist()) if n >= 0]
        assert verify(placements, snap) == [], strategy


def check_moves_agree_with_explain(s: Solved) -> None:
    """(iv) moving one placement to another node breaks the plan iff scalar explain, against
    the rest of the plan, says it does not fit there."""
    assignment = s.plan.assignment()
    pods = {p.ref: p for p in s.snap.pending}
    # against the cluster after the plan's evictions (a move may leave one unneeded: not here)
    snap = without_running(s.snap, [e.pod for e in s.plan.evictions])
    for agent, home in assignment.items():
        rest = {a: n for a, n in assignment.items() if a != agent}
        usage = cluster_usage(snap, rest)
        for nd in snap.nodes:
            if nd.name == home:
                continue
            reasons = node_reasons(pods[agent], nd, usage[nd.name])
            moved = [*rest.items(), (agent, nd.name)]
            violations = verify(moved, snap)
            assert bool(violations) == bool(reasons), (agent, nd.name, reasons, violations)
            if reasons:
                assert {v.rule for v in violations} >= {reasons[0].plugin}


def check_solver_beats_baseline(s: Solved) -> None:
    """(v) placed priority weight never below the greedy's; at equal weight, no fewer agents."""
    got, base = s.plan.objective_terms, s.plan.baseline
    assert got["net_priority_weight"] >= base["net_priority_weight"]
    if got["priority_weight"] == base["priority_weight"]:
        assert got["placed_agents"] >= base["placed_agents"]


# --- fast properties (default run) ----------------------------------------------------------

@FAST
@given(clusters())
def test_vectorised_prefilter_equals_scalar_explain(snap):
    check_prefilter_matches_scalar_explain(snap)


@FAST
@given(clusters())
def test_solver_plans_are_verified_optimal_and_beat_the_baseline(snap):
    s = solve(snap)
    check_plan_is_verified_and_optimal(s)
    check_solver_beats_baseline(s)


@FAST
@given(clusters())
def test_greedy_assignments_pass_the_verifier(snap):
    check_greedy_is_valid(snap)


@FAST
@given(clusters())
def test_moving_a_placement_breaks_the_plan_iff_explain_says_it_does_not_fit(snap):
    check_moves_agree_with_explain(solve(snap))


# --- heavy variant --------------------------------------------------------------------------

@pytest.mark.slow
@HEAVY
@given(clusters())
def test_all_properties_on_many_clusters(snap):
    check_prefilter_matches_scalar_explain(snap)
    check_greedy_is_valid(snap)
    s = solve(snap)
    check_plan_is_verified_and_optimal(s)
    check_solver_beats_baseline(s)
    check_moves_agree_with_explain(s)
