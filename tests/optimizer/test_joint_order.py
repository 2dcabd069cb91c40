"""The joint binding order: one order must bind every placed agent past every Filter at once.

PodTopologySpread and InterPodAffinity each search for a binding order of their own; verify.py
adds one search over all rules together (node_reasons against running pods plus the agents
bound so far). The hypothesis tests compare the whole verifier with a brute-force search over
every order, and check that every solver plan passes it.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from optimizer import SolveConfig, optimize
from optimizer.explain import cluster_usage, node_reasons, run_pre_filters
from optimizer.snapshot import Snapshot, build_snapshot
from optimizer.verify import joint_order_violations, needs_joint_order, verify
from tests.builders import inventory, node, pod

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
SOLVE = SolveConfig(time_limit=5.0, workers=1)


def spread(key: str, selector: dict[str, str], max_skew: int = 1) -> dict[str, Any]:
    return {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": selector}}


def term(key: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"topologyKey": key, "labelSelector": {"matchLabels": labels}}


def agent(name: str, labels: dict[str, str], *, spreads: list[dict[str, Any]] | None = None,
          affinity: list[dict[str, Any]] | None = None, anti: list[dict[str, Any]] | None = None,
          cpu: str = "100m") -> dict[str, Any]:
    aff: dict[str, Any] = {}
    if affinity:
        aff["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": affinity}
    if anti:
        aff["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": anti}
    out = pod(name, cpu, labels=labels, affinity=aff or None)
    if spreads:
        out["spec"]["topologySpreadConstraints"] = spreads
    return out


def running(name: str, labels: dict[str, str], at: str,
            anti: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    affinity = ({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": anti}}
                if anti else None)
    return pod(name, "100m", node_name=at, labels=labels, affinity=affinity)


def brute_force(placements: list[tuple[str, str]], snap: Snapshot) -> bool:
    """Some order binds every placed agent, each passing node_reasons (PreFilter included)
    against the running pods plus the agents bound before it: every order, memoised by the
    set of agents bound."""
    pods = {p.ref: p for p in snap.pending}
    nodes = {n.name: n for n in snap.nodes}

    @cache
    def completes(bound: frozenset[int]) -> bool:
        if len(bound) == len(placements):
            return True
        usage = cluster_usage(snap, {placements[j][0]: placements[j][1] for j in bound})
        for i, (a, n) in enumerate(placements):
            if i in bound:
                continue
            pod_ = pods[a]
            if not node_reasons(pod_, nodes[n], usage[n], run_pre_filters(pod_)) and \
                    completes(bound | {i}):
                return True
        return False

    return completes(frozenset())


# --- examples ----------------------------------------------------------------------------------


def two_orders() -> Snapshot:
    """d first puts n0 at 2 against n1 at 0 (hostname skew 2); c first has no role=d pod in its
    zone: spread needs c first, affinity needs d first."""
    s = [spread(HOST, {"app": "x"})]
    return build_snapshot(inventory(
        node("n0", labels={ZONE: "a"}), node("n1", labels={ZONE: "a"}),
        running("r", {"app": "x"}, at="n0"),
        agent("d", {"app": "x", "role": "d"}, spreads=s),
        agent("c", {"app": "x", "role": "c"}, spreads=s, affinity=[term(ZONE, {"role": "d"})])))


def test_a_plan_needing_two_different_orders_is_rejected() -> None:
    snap = two_orders()
    plan = [("default/d", "n0"), ("default/c", "n1")]
    assert not brute_force(plan, snap)
    violations = verify(plan, snap)
    assert violations and {v.rule for v in violations} == {"BindingOrder"}
    assert {v.agent for v in violations} <= {"default/c", "default/d"}
    assert all("no binding order" in v.message for v in violations)
    assert any("PodTopologySpread" in v.message or "InterPodAffinity" in v.message
               for v in violations)


def test_the_same_agents_in_a_consistent_placement_are_accepted() -> None:
    snap = two_orders()
    plan = [("default/d", "n1"), ("default/c", "n0")]  # d first: 1/1, then c joins role=d's zone
    assert brute_force(plan, snap)
    assert verify(plan, snap) == []


def test_spread_only_needs_the_lowest_domain_first() -> None:
    s = [spread(ZONE, {"app": "x"})]
    snap = build_snapshot(inventory(
        node("a1", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"}),
        running("r", {"app": "x"}, at="a1"),
        *[agent(f"x{i}", {"app": "x"}, spreads=s) for i in range(3)]))
    plan = [("default/x0", "a1"), ("default/x1", "b1"), ("default/x2", "b1")]
    assert not needs_joint_order(dict(plan), snap)  # spread's own search is the joint one
    assert verify(plan, snap) == []
    assert joint_order_violations(dict(plan), snap) == []


def test_affinity_only_needs_the_supporter_first() -> None:
    snap = build_snapshot(inventory(
        node("a1", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"}),
        agent("db", {"app": "db"}),
        agent("web", {"app": "web"}, affinity=[term(ZONE, {"app": "db"})])))
    plan = [("default/web", "a1"), ("default/db", "a1")]
    assert not needs_joint_order(dict(plan), snap)
    assert verify(plan, snap) == []
    assert joint_order_violations(dict(plan), snap) == []
    assert joint_order_violations({"default/web": "b1", "default/db": "a1"}, snap) != []


def test_spread_and_affinity_with_one_compatible_order_are_accepted() -> None:
    """Affinity wants d before c (c needs a role=d pod in its zone); spread wants d first too
    (zone a is 2 ahead): d into b (2/1), then c (2/2)."""
    s = [spread(ZONE, {"app": "x"})]
    snap = build_snapshot(inventory(
        node("a1", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"}),
        running("r1", {"app": "x"}, at="a1"), running("r2", {"app": "x"}, at="a1"),
        agent("d", {"app": "x", "role": "d"}, spreads=s),
        agent("c", {"app": "x", "role": "c"}, spreads=s, affinity=[term(ZONE, {"role": "d"})])))
    plan = [("default/c", "b1"), ("default/d", "b1")]
    assert needs_joint_order(dict(plan), snap)
    assert brute_force(plan, snap)
    assert verify(plan, snap) == []


def test_an_affinity_chain_that_must_wait_for_the_spread_is_accepted() -> None:
    """Affinity: d < c < e, all in zone a; spread (maxSkew 2): e only once f1 and f2 lift the
    minimum. One order serves both: d, c, f1, f2, e."""
    s = [spread(ZONE, {"app": "x"}, max_skew=2)]
    snap = build_snapshot(inventory(
        *[node(f"{z}1", labels={ZONE: z}) for z in "abc"],
        agent("d", {"app": "x", "role": "d"}, spreads=s),
        agent("c", {"app": "x", "role": "c"}, spreads=s, affinity=[term(ZONE, {"role": "d"})]),
        agent("e", {"app": "x", "role": "e"}, spreads=s, affinity=[term(ZONE, {"role": "c"})]),
        agent("f1", {"app": "x"}, spreads=s), agent("f2", {"app": "x"}, spreads=s)))
    plan = [("default/e", "a1"), ("default/c", "a1"), ("default/d", "a1"),
            ("default/f1", "b1"), ("default/f2", "c1")]
    assert brute_force(plan, snap)
    assert verify(plan, snap) == []
    # without f2, zone c stays at 0: e (third in zone a) can never bind
    short = plan[:-1]
    assert not brute_force(short, snap)
    assert verify(short, snap) != []


def test_the_joint_search_gives_up_as_a_violation_when_the_budget_runs_out() -> None:
    snap = two_orders()
    out = joint_order_violations({"default/d": "n1", "default/c": "n0"}, snap, budget=0)
    assert out and all("search budget" in v.message for v in out)


# --- random windows against brute force ---------------------------------------------------------

LABELS = [{"app": "x", "role": "d"}, {"app": "x", "role": "c"}, {"app": "y", "role": "d"},
          {"app": "y", "role": "c"}]


@st.composite
def windows(draw: st.DrawFn, max_agents: int = 6) -> tuple[Snapshot, list[tuple[str, str]]]:
    """≤4 nodes over two zones, a few running pods, ≤6 agents with random zone / hostname
    spread and (mostly zone) affinity, a random plan. Keys and labels are drawn from few values
    so that constraints interact."""
    keys = st.sampled_from([ZONE, ZONE, ZONE, HOST])
    roles = st.sampled_from("cdd")
    n_nodes = draw(st.integers(1, 4))
    zones = draw(st.lists(st.sampled_from("ab"), min_size=n_nodes, max_size=n_nodes))
    cap = draw(st.sampled_from(["110", "110", "3"]))
    objects: list[dict[str, Any]] = [node(f"n{i}", pods=cap, labels={ZONE: z})
                                     for i, z in enumerate(zones)]
    for r in range(draw(st.integers(0, 3))):
        lab = draw(st.sampled_from(LABELS))
        anti = ([term(draw(keys), {"role": draw(roles)})]
                if draw(st.integers(0, 7)) == 0 else None)
        objects.append(running(f"r{r}", lab, at=f"n{draw(st.integers(0, n_nodes - 1))}",
                               anti=anti))
    n_agents = draw(st.integers(1, max_agents))
    plan = []
    for a in range(n_agents):
        lab = draw(st.sampled_from(LABELS))
        spreads = [spread(draw(st.sampled_from([ZONE, HOST])),
                          {"app": draw(st.sampled_from("xxy"))}, draw(st.sampled_from([1, 1, 2])))
                   for _ in range(draw(st.sampled_from([0, 1, 1, 2])))]
        affinity = [term(draw(keys), {"role": draw(roles)})] if draw(st.booleans()) else None
        anti = ([term(draw(keys), {"role": draw(roles)})]
                if draw(st.integers(0, 7)) == 0 else None)
        objects.append(agent(f"a{a}", lab, spreads=spreads, affinity=affinity, anti=anti))
        at = draw(st.integers(-1, n_nodes - 1))
        if at >= 0:
            plan.append((f"default/a{a}", f"n{at}"))
    return build_snapshot(inventory(*objects)), plan


@st.composite
def entangled(draw: st.DrawFn, max_agents: int = 6) -> tuple[Snapshot, list[tuple[str, str]]]:
    """The counterexample's family: agents counted by one app=x spread; role=c agents need a
    role=d pod in their zone (or host) and are mostly placed where a role=d agent is, so the
    plans pass each rule alone and often hinge on one order serving both."""
    n_nodes = draw(st.integers(2, 4))
    more = draw(st.lists(st.sampled_from("ab"), min_size=n_nodes - 2, max_size=n_nodes - 2))
    zones = ["a", "b", *more]
    objects: list[dict[str, Any]] = [node(f"n{i}", labels={ZONE: z}) for i, z in enumerate(zones)]
    for r in range(draw(st.integers(0, 2))):
        objects.append(running(f"r{r}", {"app": "x", "role": "c"},
                               at=f"n{draw(st.integers(0, n_nodes - 1))}"))
    s = [spread(draw(st.sampled_from([ZONE, HOST])), {"app": "x"},
                draw(st.sampled_from([1, 1, 2])))]
    roles = sorted(draw(st.lists(st.sampled_from("cd"), min_size=2, max_size=max_agents)),
                   reverse=True)
    plan: list[tuple[str, str]] = []
    d_at: list[int] = []
    for a, role in enumerate(roles):  # role=d first: the c agents look for them
        spreads = s if draw(st.integers(0, 4)) else None
        at = draw(st.integers(0, n_nodes - 1))
        if role == "d":
            objects.append(agent(f"a{a}", {"app": "x", "role": "d"}, spreads=spreads))
            d_at.append(at)
        else:
            key = draw(st.sampled_from([ZONE, ZONE, HOST]))
            near = [i for i in range(n_nodes) if any(
                (zones[i] == zones[d]) if key == ZONE else i == d for d in d_at)]
            if near and draw(st.integers(0, 5)):
                at = draw(st.sampled_from(near))
            objects.append(agent(f"a{a}", {"app": "x", "role": "c"}, spreads=spreads,
                                 affinity=[term(key, {"role": "d"})]))
        plan.append((f"default/a{a}", f"n{at}"))
    return build_snapshot(inventory(*objects)), plan


SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def check_against_brute_force(window: tuple[Snapshot, list[tuple[str, str]]]) -> None:
    snap, plan = window
    violations = verify(plan, snap)
    assert not any("search budget" in v.message for v in violations)
    assert (violations == []) == brute_force(plan, snap), violations
    # the joint search alone, on plans every rule's own verify accepts, is exact too
    own = [v for v in violations if v.rule != "BindingOrder"]
    if not own:
        joint = joint_order_violations(dict(plan), snap)
        assert (joint == []) == brute_force(plan, snap), joint


@SETTINGS
@given(st.one_of(windows(), entangled()))
def test_verify_agrees_with_a_brute_force_order_search(window) -> None:
    check_against_brute_force(window)


@settings(SETTINGS, max_examples=300)
@given(entangled())
def test_the_joint_search_is_exact_on_plans_every_rule_accepts_alone(window) -> None:
    """Where each rule finds an order of its own, the joint search decides alone."""
    snap, plan = window
    assume(not [v for v in verify(plan, snap) if v.rule != "BindingOrder"])
    joint = joint_order_violations(dict(plan), snap)
    event("rejected" if joint else "accepted")
    assert (joint == []) == brute_force(plan, snap), joint


@pytest.mark.slow
@settings(SETTINGS, max_examples=3000)
@given(st.one_of(windows(max_agents=8), entangled(max_agents=8)))
def test_verify_agrees_with_a_brute_force_order_search_many(window) -> None:
    check_against_brute_force(window)


def check_solver_plan(snap: Snapshot) -> None:
    plan = optimize(snap, SOLVE)
    assert not any("failed verification" in w for w in plan.warnings), plan.warnings
    placements = [(p.agent, p.node) for p in plan.placements]
    assert verify(placements, snap) == []
    assert brute_force(placements, snap)


@settings(SETTINGS, max_examples=25)
@given(st.one_of(windows(max_agents=5), entangled()))
def test_every_solver_plan_passes_the_joint_check(window) -> None:
    check_solver_plan(window[0])


@pytest.mark.slow
@settings(SETTINGS, max_examples=300)
@given(st.one_of(windows(), entangled()))
def test_every_solver_plan_passes_the_joint_check_many(window) -> None:
    check_solver_plan(window[0])


# --- speed ---------------------------------------------------------------------------------------


def big_window(n: int = 300) -> tuple[Snapshot, dict[str, str]]:
    """n nodes over three zones, n agents: a zone spread over app=x and zone affinity to db."""
    zones = "abc"
    objects: list[dict[str, Any]] = [node(f"n{i}", labels={ZONE: zones[i % 3]})
                                     for i in range(n)]
    objects += [running(f"r{i}", {"app": "x"}, at=f"n{i}") for i in range(0, n, 2)]
    s = [spread(ZONE, {"app": "x"}), spread(HOST, {"app": "x"}, 2)]
    plan = {}
    for i in range(n):
        if i % 10 == 0:
            objects.append(agent(f"db{i}", {"app": "x", "role": "d"}, spreads=s))
            plan[f"default/db{i}"] = f"n{i}"
        else:
            objects.append(agent(f"web{i}", {"app": "x", "role": "c"}, spreads=s,
                                 affinity=[term(ZONE, {"role": "d"})]))
            plan[f"default/web{i}"] = f"n{(i * 7) % n}"
    return build_snapshot(inventory(*objects)), plan


def test_verify_finds_the_order_of_a_300_node_300_agent_window() -> None:
    # its speed is a benchmark figure, not a unit-test assertion (noisy shared cores)
    snap, plan = big_window()
    assert needs_joint_order(plan, snap)
    violations = verify(list(plan.items()), snap)
    assert violations == [], violations[:3]


def test_permutation_brute_force_agrees_with_the_memoised_one() -> None:
    """The memoised brute force is the permutation search: spot-check on the counterexample."""
    snap = two_orders()
    pods = {p.ref: p for p in snap.pending}
    nodes = {n.name: n for n in snap.nodes}
    for plan in ([("default/d", "n0"), ("default/c", "n1")],
                 [("default/d", "n1"), ("default/c", "n0")]):
        def ok(order: tuple[tuple[str, str], ...]) -> bool:
            for k, (a, n) in enumerate(order):
                usage = cluster_usage(snap, dict(order[:k]))
                if node_reasons(pods[a], nodes[n], usage[n], run_pre_filters(pods[a])):
                    return False
            return True
        assert any(ok(o) for o in itertools.permutations(plan)) == brute_force(plan, snap)
