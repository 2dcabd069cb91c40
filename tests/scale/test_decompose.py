"""POP-style decomposition (optimizer/decompose.py): the split respects domains, gangs, quotas,
budgets and disruption allowances; merged plans verify on the whole snapshot; the repair pass
places what a part could not; a violation falls back to the unpartitioned path; the pools agree."""

from __future__ import annotations

import importlib.util
from collections import Counter
from fractions import Fraction
from typing import Any

import pytest

from models import Inventory
from optimizer import SolveConfig, decompose, optimize
from optimizer.plan import Placement, Plan
from optimizer.rules import quotas as rq
from optimizer.rules.base import Violation
from optimizer.snapshot import Snapshot, build_snapshot
from optimizer.verify import verify
from tests.builders import inventory, node, pod

ZONE = "topology.kubernetes.io/zone"
GROUP = "scheduling.x-k8s.io/pod-group"
SPREAD = {"topologySpreadConstraints": [{
    "maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
    "labelSelector": {"matchLabels": {"app": "spread"}}}]}
ANTI = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
    "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "anti"}}}]}}


def _with_spec(doc: dict[str, Any], **spec: Any) -> dict[str, Any]:
    doc["spec"].update(spec)
    return doc


def window(zones: int = 3, per_zone: int = 4) -> Inventory:
    """Every coupling at once: a zone spread, a hostname anti-affinity, a quota, a gang, a
    token budget and a PDB over running pods."""
    nodes = [node(f"n{z}{i}", "4" if i % 2 else "8", "32Gi", labels={ZONE: f"z{z}"})
             for z in range(zones) for i in range(per_zone)]
    running = [pod(f"web{i}", "500m", namespace="web", node_name=f"n{i % zones}{i % per_zone}",
                   labels={"app": "web"}) for i in range(6)]
    spread = [_with_spec(pod(f"s{i}", "500m", labels={"app": "spread"}), **SPREAD) for i in range(9)]
    anti = [pod(f"a{i}", "250m", labels={"app": "anti"}, affinity=ANTI) for i in range(5)]
    team = [pod(f"t{i}", "1", namespace="team") for i in range(8)]
    gang = [pod(f"g{i}", "1", namespace="ml", labels={GROUP: "train"}) for i in range(3)]
    tokens = [pod(f"llm{i}", "250m", namespace="chat") for i in range(4)]
    for t in tokens:
        t["metadata"]["annotations"] = {"agentplace.io/tokens-per-hour": "40000"}
    objects = [
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "team"},
         "spec": {"hard": {"pods": "5", "requests.cpu": "5500m"}},
         "status": {"hard": {"pods": "5", "requests.cpu": "5500m"},
                    "used": {"pods": "0", "requests.cpu": "0"}}},
        {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
         "metadata": {"name": "train", "namespace": "ml"}, "spec": {"minMember": 3}},
        {"apiVersion": "agentplace.io/v1alpha1", "kind": "TokenBudget",
         "metadata": {"name": "b", "namespace": "chat"}, "spec": {"tokens": "100k"}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "web", "namespace": "web"},
         "spec": {"selector": {"matchLabels": {"app": "web"}}}, "status": {"disruptionsAllowed": 3}},
    ]
    return inventory(*nodes, *running, *spread, *anti, *team, *gang, *tokens, *objects)


# --- the split ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("zones", "per_zone", "k"), [(3, 4, 2), (3, 4, 4), (2, 5, 3), (1, 7, 7)])
def test_each_part_gets_its_share_of_every_zone_and_node_shape(zones: int, per_zone: int, k: int) -> None:
    snap = build_snapshot(window(zones, per_zone))
    part = decompose.partition(snap, k)
    assert sorted(i for n in part.nodes for i in n.tolist()) == list(range(len(snap.nodes)))
    for z in range(zones):
        for size in ("4", "8"):
            group = {i for i, n in enumerate(snap.nodes)
                     if n.labels[ZONE] == f"z{z}" and str(n.status.allocatable["cpu"]) == size}
            per_part = [len(group & set(n.tolist())) for n in part.nodes]
            assert max(per_part) - min(per_part) <= 1, (z, size, per_part)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_a_gang_stays_in_one_part_and_parts_are_balanced(k: int) -> None:
    snap = build_snapshot(window())
    part = decompose.partition(snap, k)
    assert sorted(i for a in part.agents for i in a.tolist()) == list(range(len(snap.pending)))
    of = {snap.pending[i].ref: p for p, a in enumerate(part.agents) for i in a.tolist()}
    assert len({of[f"ml/g{i}"] for i in range(3)}) == 1
    sizes = [len(a) for a in part.agents]
    assert max(sizes) - min(sizes) <= 3  # at most one gang's size apart
    spread = Counter(of[f"default/s{i}"] for i in range(9))
    assert max(spread.values()) - min(spread.get(p, 0) for p in range(k)) <= 3  # blocks of 3


@pytest.mark.parametrize(("total", "weights", "expected"), [
    (10, [1, 1], [5, 5]), (10, [1, 2, 1], [3, 5, 2]), (1, [1, 1, 1], [1, 0, 0]),
    (7, [0, 0], [4, 3]), (0, [1, 2], [0, 0]), (5, [0, 3], [0, 5])])
def test_apportion_sums_exactly(total: int, weights: list[int], expected: list[int]) -> None:
    assert decompose.apportion(total, weights) == expected


def test_quota_budget_and_pdb_shares_never_add_up_to_more_than_is_left() -> None:
    snap = build_snapshot(window())
    parts = decompose.part_snapshots(snap, decompose.partition(snap, 3))
    quota = snap.quotas[0]
    used = rq.quota_used(quota, snap)
    for r in ("pods", "requests.cpu"):
        left = [q.spec.hard[r].value - rq.quota_used(q, s)[r] for s in parts for q in s.quotas]
        assert sum(left) == quota.spec.hard[r].value - used[r]
        assert all(x >= 0 and (x * 1000).denominator == 1 for x in left)  # whole encoding units
    # by demand: the part with more of the namespace's agents gets more of the quota
    team = [sum(p.namespace == "team" for p in s.pending) for s in parts]
    pods_left = [int(s.quotas[0].spec.hard["pods"].value - rq.quota_used(s.quotas[0], s)["pods"])
                 for s in parts]
    assert pods_left == decompose.apportion(5, team)
    budget = snap.token_budgets[0]
    tokens_left = [int(s.token_budgets[0].spec.tokens.value) - s.token_budgets[0].status.spent_tokens
                   for s in parts]
    assert sum(tokens_left) == int(budget.spec.tokens.value) and min(tokens_left) >= 0
    assert sum(s.pdbs[0].status.disruptions_allowed for s in parts) == 3
    gangs = [s for s in parts if s.pod_groups]
    assert len(gangs) == 1 and {p.namespace for p in gangs[0].pending} >= {"ml"}
    assert all(Fraction(0) <= used[r] for r in used)


# --- the merged plan ----------------------------------------------------------------------------

def _check(plan: Plan, inv: Inventory, partitioned: bool = True) -> None:
    snap = build_snapshot(inv)
    assert plan.verified
    assert verify([(p.agent, p.node) for p in plan.placements], snap,
                  unplaced=[u.agent for u in plan.unplaced],
                  evictions=plan.eviction_triples()) == []
    if partitioned:  # no bound claimed: a part's bound is not the whole problem's
        assert plan.bound is None and plan.status in ("FEASIBLE", "FALLBACK")


@pytest.mark.parametrize("k", [2, 3])
def test_merged_plan_verifies_with_every_coupling(k: int) -> None:
    inv = window()
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=k, partition_pool="serial"))
    _check(plan, inv)
    info = plan.model["partitions"]
    assert info["k"] == k and len(info["parts"]) == k
    assert sum(p["agents"] for p in info["parts"]) == len(inv.pending)
    assert sum(p["nodes"] for p in info["parts"]) == len(inv.nodes)
    placed = {p.agent for p in plan.placements}
    # caps hold over the merged plan: 5 pods of the quota, 2 agents of the 100k token budget
    assert sum(a.startswith("team/") for a in placed) == 5
    assert sum(a.startswith("chat/") for a in placed) == 2
    assert len({a for a in placed if a.startswith("ml/")}) in (0, 3)
    whole = optimize(inv, SolveConfig(time_limit=2))
    assert len(plan.placements) == len(whole.placements)


def test_the_repair_pass_places_an_agent_its_part_could_not() -> None:
    # nodes in shape order (1 cpu, then 8 cpu) and agents in queue order (the big one first,
    # higher priority) are dealt alike: part 0 pairs the big agent with the small node
    inv = inventory(node("small", "1"), node("big", "8"), pod("big-agent", "4", priority=10),
                    pod("little", "100m"))
    snap = build_snapshot(inv)
    part = decompose.partition(snap, 2)
    assert [snap.nodes[i].name for i in part.nodes[0]] == ["small"]
    assert [snap.pending[i].name for i in part.agents[0]] == ["big-agent"]
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=2, partition_pool="serial"))
    _check(plan, inv)
    assert plan.assignment()["default/big-agent"] == "big"
    info = plan.model["partitions"]
    assert info["parts"][0]["placed"] == 0
    assert info["repair"]["offered"] == 1 and info["repair"]["placed"] == 1


def test_the_merge_check_takes_out_what_the_whole_snapshot_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    """A part's placements that break a rule on the whole cluster (here: everything moved onto
    one node, far over its capacity) are taken out and offered to the repair pass."""
    real = decompose.solve_part

    def crowded(snap: Snapshot, cfg: SolveConfig, warm: Any) -> tuple[Plan, float]:
        plan, sec = real(snap, cfg, warm)
        plan.placements = [Placement(p.agent, "n00") for p in plan.placements]
        return plan, sec

    monkeypatch.setattr(decompose, "solve_part", crowded)
    inv = window()
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=2, partition_pool="serial"))
    _check(plan, inv)
    info = plan.model["partitions"]
    assert info["taken_out_by_merge_check"] > 0 and info["repair"]["placed"] > 0
    assert "fallback" not in info


def test_a_violation_nothing_can_take_out_falls_back_to_the_whole_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decompose, "verify", lambda *a, **kw: [
        Violation("PodDisruptionBudget", "web/web0", None, "forced")])
    inv = window()
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=2, partition_pool="serial"))
    _check(plan, inv, partitioned=False)
    assert plan.model["partitions"]["fallback"] is True
    assert any("partitioned plan failed verification" in w for w in plan.warnings)
    assert plan.bound is not None  # the unpartitioned path's own plan


def test_serial_and_process_pool_give_the_same_plan() -> None:
    inv = window()
    cfg = SolveConfig(time_limit=5, workers=1, seed=3, partitions=2)
    serial = optimize(inv, SolveConfig(**{**cfg.__dict__, "partition_pool": "serial"}))
    pooled = optimize(inv, cfg)
    assert pooled.model["partitions"]["pool"].startswith("process pool")
    assert sorted(serial.assignment().items()) == sorted(pooled.assignment().items())
    assert [u.agent for u in serial.unplaced] == [u.agent for u in pooled.unplaced]


def test_an_unknown_pool_is_a_config_error() -> None:
    from optimizer.config import ConfigError

    with pytest.raises(ConfigError, match="partition_pool 'threads'"):
        optimize(window(), SolveConfig(time_limit=1, partitions=2, partition_pool="threads"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (pip install 'agentplace[ray]')")
def test_ray_pool_gives_the_serial_plan() -> None:
    import ray

    inv = window()
    cfg = SolveConfig(time_limit=5, workers=1, seed=3, partitions=2, partition_pool="ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = optimize(inv, cfg)
    finally:
        ray.shutdown()
    serial = optimize(inv, SolveConfig(**{**cfg.__dict__, "partition_pool": "serial"}))
    _check(on_ray, inv)
    assert on_ray.model["partitions"]["pool"].startswith("ray")
    assert sorted(serial.assignment().items()) == sorted(on_ray.assignment().items())


def test_parts_preempt_on_their_own_nodes_within_the_shared_disruption_budget() -> None:
    """Every node full of low-priority pods one PDB covers (2 disruptions allowed in all):
    the parts may evict only their share, and the merged evictions stay within the budget."""
    nodes = [node(f"n{i}", "2") for i in range(4)]
    low = [pod(f"low{i}", "2", namespace="batch", node_name=f"n{i}", priority=0,
               labels={"app": "batch"}) for i in range(4)]
    high = [pod(f"urgent{i}", "2", priority=100) for i in range(4)]
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "batch", "namespace": "batch"},
           "spec": {"selector": {"matchLabels": {"app": "batch"}}}, "status": {"disruptionsAllowed": 2}}
    inv = inventory(*nodes, *low, *high, pdb)
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=2, partition_pool="serial"))
    _check(plan, inv)
    assert len(plan.evictions) == 2 and len(plan.placements) == 2
    assert "fallback" not in plan.model["partitions"]


def test_a_zone_spread_group_is_dealt_in_blocks_of_one_agent_per_zone() -> None:
    snap = build_snapshot(window())  # 3 zones, 9 spread agents
    for k in (2, 3):
        part = decompose.partition(snap, k)
        of = {snap.pending[i].ref: p for p, a in enumerate(part.agents) for i in a.tolist()}
        per_part = Counter(of[f"default/s{i}"] for i in range(9))
        assert all(n % 3 == 0 for n in per_part.values()), per_part


def test_the_plan_reports_the_parts_greedy_as_its_baseline() -> None:
    inv = window()
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=2, partition_pool="serial"))
    assert plan.baseline["name"] == "greedy-LeastAllocated per part"
    assert 0 < plan.baseline["placed_agents"] <= len(inv.pending)
    assert plan.objective is None and plan.gap is None


def test_a_broken_process_pool_falls_back_to_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures.process import BrokenProcessPool

    class Broken:
        def __init__(self, *a: Any, **kw: Any) -> None:
            raise BrokenProcessPool("a worker died")

    monkeypatch.setattr(decompose, "ProcessPoolExecutor", Broken)
    inv = window()
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=2))
    _check(plan, inv)
    assert plan.model["partitions"]["pool"].startswith("serial (the process pool failed")


@pytest.mark.parametrize("k", [2, 3])
def test_a_hostname_spread_couples_parts_through_the_global_minimum(k: int) -> None:
    """maxSkew over hosts is measured against the least-loaded host of the WHOLE cluster, which
    a part does not see: the merge check and the repair pass keep the merged plan valid."""
    host = {"topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "h"}}}]}
    nodes = [node(f"n{i}", "8", labels={ZONE: f"z{i % 2}"}) for i in range(6)]
    running = [pod(f"r{i}", "100m", node_name="n0", labels={"app": "h"}) for i in range(2)]
    agents = [_with_spec(pod(f"h{i}", "100m", labels={"app": "h"}), **host) for i in range(7)]
    inv = inventory(*nodes, *running, *agents)
    plan = optimize(inv, SolveConfig(time_limit=2, partitions=k, partition_pool="serial"))
    _check(plan, inv)
    assert len(plan.placements) == 7 and "fallback" not in plan.model["partitions"]
