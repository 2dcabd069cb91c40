"""GangScheduling: scheduler-plugins Coscheduling's all-or-nothing groups, in one window.

The table checks one node and one pending agent through four readings (prefilter row,
admission message, a tiny solve, the verifier); the batch scenarios check relations between
gangs, other agents, the greedy and the verifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models import PodGroup
from optimizer import optimize
from optimizer.baseline import decreasing_size_order, greedy
from optimizer.index import Index
from optimizer.rules.gangs import MIN_AVAILABLE_LABEL, gang_table, gangs_of
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from optimizer.windows import WindowConfig, replay
from tests.builders import inventory, node, pod
from tests.optimizer.rules.conftest import SOLVE, case, check_admission_rule, rule_named

RULE = rule_named("GangScheduling")
LABEL = "scheduling.x-k8s.io/pod-group"
OLD_LABEL = "pod-group.scheduling.sigs.k8s.io"
LIGHT_LABEL = "pod-group.scheduling.sigs.k8s.io/name"


def pod_group(name: str, min_member: int, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"minMember": min_member, "scheduleTimeoutSeconds": 10}}


def member(name: str, group: str = "train", cpu: str = "1", *, label: str = LABEL,
           **kw: Any) -> dict[str, Any]:
    labels = {label: group, **kw.pop("labels", {})}
    return pod(name, cpu, labels=labels, **kw)


def siblings(name: str, current: int, minimum: int, nodes: int = 1) -> str:
    return (f"0/{nodes} nodes are available: pre-filter pod {name} cannot find enough sibling "
            f"pods, current pods number: {current}, minMember of group: {minimum}.")


N = node("n", cpu="8")

CASES = [
    case("an agent in no gang is not held back", N, pod("a", "1")),
    case("a lone member of a gang without a PodGroup is the whole gang and is placed",
         N, member("a")),
    case("a running member counts toward minMember, so the one pending member completes it",
         N, pod_group("train", 2), member("run-0", node_name="n"), member("a")),
    case("minMember 0 never holds a member back", N, pod_group("train", 0), member("a")),
    case("a PodGroup of another namespace is not the agent's: every member is the gang",
         N, pod_group("train", 5, namespace="ml"), member("a")),
    case("fewer pods than minMember: PreFilter cannot find enough sibling pods",
         N, pod_group("train", 3), member("run-0", node_name="n"), member("a"),
         want=siblings("a", 2, 3)),
    case("the older pod-group.scheduling.sigs.k8s.io label names the group too",
         N, pod_group("train", 2), member("a", label=OLD_LABEL), want=siblings("a", 1, 2)),
    case("the lightweight min-available label sets minMember without a PodGroup",
         N, member("a", label=LIGHT_LABEL, labels={MIN_AVAILABLE_LABEL: "2"}),
         want=siblings("a", 1, 2)),
    case("a running pod of another namespace with the same group name does not count",
         N, pod_group("train", 2), member("run-0", node_name="n", namespace="ml"), member("a"),
         want=siblings("a", 1, 2)),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_gang_readings_agree(objects: list[dict[str, Any]], want: str | None) -> None:
    violations = check_admission_rule(RULE, objects, want)
    assert len(violations) == (0 if want is None else 1)


# --- batch scenarios ----------------------------------------------------------------------------

def gang_sizes(plan_assignment: dict[str, str], snap: Any) -> dict[str, int]:
    """Placed members per gang, read from the raw pods."""
    return {g.ref: sum(ref in plan_assignment for ref in g.pending)
            for g in gangs_of(snap).values()}


def test_a_gang_of_four_that_fits_is_placed_whole() -> None:
    inv = inventory(node("n1", cpu="4"), node("n2", cpu="4"), pod_group("train", 4),
                    *(member(f"w-{i}", cpu="2") for i in range(4)))
    plan = optimize(inv, SOLVE)
    assert len(plan.placements) == 4 and plan.unplaced == []


def test_a_gang_that_fits_three_of_four_places_none_and_others_take_the_capacity() -> None:
    """3 cpu for a gang of 4 x 1 cpu: none of it binds; the low-priority singles get the node."""
    inv = inventory(node("n", cpu="3"), pod_group("train", 4),
                    *(member(f"w-{i}", priority=1000) for i in range(4)),
                    *(pod(f"solo-{i}", "1", priority=1) for i in range(3)))
    snap = build_snapshot(inv)
    plan = optimize(inv, SOLVE)
    assert sorted(plan.assignment()) == [f"default/solo-{i}" for i in range(3)]
    reasons = {u.agent: u.reason for u in plan.unplaced}
    assert reasons == {f"default/w-{i}": "pod group default/train has 0 members placeable, "
                       "needs 4 (minMember)" for i in range(4)}
    # the greedy, queue order (the gang first): 3 members fit, all rolled back
    ix = Index(snap)
    nodes = greedy(ix, prefilter(ix)[0])
    placed = {snap.pending[a].ref for a in np.nonzero(nodes >= 0)[0]}
    assert placed == {f"default/solo-{i}" for i in range(3)}


def test_a_gang_alone_that_does_not_fit_says_how_many_members_fit_together() -> None:
    inv = inventory(node("n", cpu="3"), pod_group("train", 4),
                    *(member(f"w-{i}") for i in range(4)))
    plan = optimize(inv, SOLVE)
    assert plan.placements == []
    assert {u.reason for u in plan.unplaced} == {
        "pod group default/train has 3 members placeable, needs 4 (minMember)"}


def test_two_gangs_competing_for_capacity_the_higher_priority_one_wins_whole() -> None:
    inv = inventory(node("n1", cpu="3"), node("n2", cpu="3"),
                    pod_group("low", 4), pod_group("high", 4),
                    *(member(f"low-{i}", "low", priority=10) for i in range(4)),
                    *(member(f"high-{i}", "high", priority=100) for i in range(4)))
    snap = build_snapshot(inv)
    plan = optimize(inv, SOLVE)
    assert gang_sizes(plan.assignment(), snap) == {"default/high": 4, "default/low": 0}
    ix = Index(snap)
    base = greedy(ix, prefilter(ix)[0])
    assert gang_sizes({snap.pending[a].ref: "" for a in np.nonzero(base >= 0)[0]}, snap) == {
        "default/high": 4, "default/low": 0}


def test_running_members_reduce_the_need() -> None:
    """minMember 4 with 2 running: 2 of the 3 pending members are enough."""
    inv = inventory(node("busy", cpu="2"), node("n", cpu="2"), pod_group("train", 4),
                    member("run-0", node_name="busy"), member("run-1", node_name="busy"),
                    *(member(f"w-{i}") for i in range(3)))
    snap = build_snapshot(inv)
    assert gang_table(Index(snap)).need.tolist() == [2]
    plan = optimize(inv, SOLVE)
    assert len(plan.placements) == 2
    assert [u.reason for u in plan.unplaced] == [
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
        "2 No preemption victims found for incoming pod.."]


def test_a_gang_spanning_two_classes_is_still_all_or_nothing() -> None:
    """A driver and three bigger workers share the label: the node fits the driver and two."""
    inv = inventory(node("n", cpu="6"), pod_group("train", 4),
                    member("driver", cpu="1", priority=100),
                    *(member(f"w-{i}", cpu="2", priority=100) for i in range(3)),
                    pod("solo", "1"))
    snap = build_snapshot(inv)
    ix = Index(snap)
    assert len({int(ix.class_of[snap.agent_pos[f"default/w-{i}"]]) for i in range(3)}
               | {int(ix.class_of[snap.agent_pos["default/driver"]])}) == 2
    plan = optimize(inv, SOLVE)
    assert plan.assignment() == {"default/solo": "n"}


def test_the_class_key_separates_gangs_and_namespaces() -> None:
    inv = inventory(node("n"), member("a", "g1"), member("b", "g2"),
                    member("c", "g1", namespace="ml"))
    ix = Index(build_snapshot(inv))
    assert ix.num_classes == 3
    assert sorted(gang_table(ix).gang_of_cls.tolist()) == [0, 1, 2]


def test_the_verifier_rejects_a_partial_gang() -> None:
    inv = inventory(node("n", cpu="8"), pod_group("train", 4),
                    *(member(f"w-{i}") for i in range(4)))
    snap = build_snapshot(inv)
    partial = [("default/w-0", "n"), ("default/w-1", "n")]
    assert [str(v) for v in verify(partial, snap)] == [
        "GangScheduling: default/w-0,default/w-1: pod group default/train: 2 of its members "
        "placed, needs 4 (minMember 4, 0 running): all or none"]
    assert verify([], snap) == []
    assert verify([(f"default/w-{i}", "n") for i in range(4)], snap) == []


def test_a_pod_group_loads_as_a_namespaced_kind() -> None:
    inv = inventory(pod_group("train", 3, namespace="ml"))
    assert [(g.ref, g.spec.min_member) for g in inv.pod_groups] == [("ml/train", 3)]
    assert isinstance(inv.pod_groups[0], PodGroup)


def random_window(seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    objs: list[dict[str, Any]] = [node(f"n{i}", cpu=str(int(rng.integers(2, 7))))
                                  for i in range(3)]
    for g in range(4):
        size = int(rng.integers(2, 5))
        objs.append(pod_group(f"g{g}", int(rng.integers(1, size + 1))))
        prio = int(rng.integers(0, 3)) * 100
        objs += [member(f"g{g}-{i}", f"g{g}", str(int(rng.integers(1, 3))), priority=prio)
                 for i in range(size)]
    objs += [pod(f"solo-{i}", str(int(rng.integers(1, 3))), priority=int(rng.integers(0, 300)))
             for i in range(4)]
    return objs


@pytest.mark.parametrize("seed", range(6))
def test_random_windows_never_leave_a_partial_gang(seed: int) -> None:
    inv = inventory(*random_window(seed))
    snap = build_snapshot(inv)
    ix = Index(snap)
    static = prefilter(ix)[0]
    for order, strategy in ((None, "LeastAllocated"), (decreasing_size_order(ix), "FirstFit"),
                            (decreasing_size_order(ix), "MostAllocated")):
        nodes = greedy(ix, static, strategy, order=order)
        placements = [(snap.pending[a].ref, ix.node_names[int(n)])
                      for a, n in enumerate(nodes.tolist()) if n >= 0]
        assert verify(placements, snap) == [], (strategy, placements)
    plan = optimize(snap, SOLVE)
    assert plan.verified
    needs = {g.ref: g.need for g in gangs_of(snap).values()}
    for ref, placed in gang_sizes(plan.assignment(), snap).items():
        assert placed == 0 or placed >= needs[ref]


def test_a_gang_split_across_windows_waits_and_then_binds_whole() -> None:
    """Windows of 2 agents: the first holds half of a minMember-4 gang (none binds), the
    second the rest (the carried half plus two: all four bind together)."""
    def arriving(name: str, second: int) -> dict[str, Any]:
        p = member(name)
        p["metadata"]["creationTimestamp"] = f"2026-11-24T10:00:{second:02d}Z"
        return p

    inv = inventory(node("n", cpu="8"), pod_group("train", 4),
                    *(arriving(f"w-{i}", i) for i in range(4)))
    cfg = WindowConfig(max_agents=2, max_age=60, solve=SOLVE)
    results = list(replay(inv, cfg))
    assert [len(r.plan.placements) for r in results] == [0, 4]
    assert {u.reason for u in results[0].plan.unplaced} == {
        siblings("w-0", 2, 4), siblings("w-1", 2, 4)}


def test_the_gang_literal_is_hinted_from_the_plan() -> None:
    """Every gang's z gets a hint (placed or not), so a greedy hint is complete and CP-SAT can
    take it as a solution before any search (hints.complete_hint has nothing left to do)."""
    from optimizer.model import ModelBuilder, candidate_pairs

    inv = inventory(node("n1", cpu="4"), node("n2", cpu="4"), pod_group("train", 2),
                    *(member(f"w-{i}", cpu="2") for i in range(2)), pod("solo", "1"))
    ix = Index(build_snapshot(inv))
    mb = ModelBuilder(ix, *candidate_pairs(ix, prefilter(ix)[1]))
    mb.build_variables()
    RULE.encode(mb, ix)
    hints = {var.name: value for var, value in mb.aux_hints if var.name.startswith("gang_")}
    assert list(hints) == ["gang_0"]
    gang_cls = int(ix.class_of[next(k for k, p in enumerate(ix.snap.pending) if p.name == "w-0")])
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    assert hints["gang_0"](counts) == 0
    counts[gang_cls, 0] = 2
    assert hints["gang_0"](counts) == 1
