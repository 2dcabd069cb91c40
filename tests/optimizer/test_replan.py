"""Batch re-planning: pins, hard budgets, PDBs, ordered migration steps valid at every step."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from models import Inventory
from optimizer.config import SolveConfig
from optimizer.replan import ReplanConfig, ReplanError, ReplanResult, replan
from tests.builders import inventory, node, pod

FAST = SolveConfig(time_limit=5.0, workers=2)
PACK = SolveConfig(time_limit=5.0, workers=2, profile="pack")


def owned(d: dict[str, Any], kind: str = "ReplicaSet", **annotations: str) -> dict[str, Any]:
    """A controller-owned running pod (movable unless pinned)."""
    d["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": "owner",
                                         "uid": "owner-uid", "controller": True}]
    d["metadata"]["uid"] = "uid-" + d["metadata"]["name"]
    if annotations:
        d["metadata"]["annotations"] = annotations
    return d


def pdb(name: str, labels: dict[str, str], allowed: int) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": labels}, "maxUnavailable": 1},
            "status": {"disruptionsAllowed": allowed}}


def spread_out(n: int = 4, **pod_kw: Any) -> list[dict[str, Any]]:
    """n nodes of 4 cpu, one 1-cpu movable pod on each: packing frees n - 1 nodes."""
    objs = [node(f"n{i}") for i in range(n)]
    objs += [owned(pod(f"p{i}", "1", node_name=f"n{i}", **pod_kw)) for i in range(n)]
    return objs


def run(inv: Inventory, **kw: Any) -> ReplanResult:
    solve = kw.pop("solve", PACK)
    return replan(inv, ReplanConfig(solve=solve, **kw))


def replay(inv: Inventory, result: ReplanResult) -> None:
    """Independent of the verifier: apply the steps one at a time on plain cpu / pod-count
    totals; every bind (a make-before-break replacement while the old pod still runs) fits."""
    alloc = {n.name: n.allocatable() for n in inv.nodes}
    where = {p.ref: p.spec.node_name for p in inv.running}
    req = {p.ref: p.requests() for p in [*inv.running, *inv.pending]}

    def load(extra: tuple[str, str] | None = None) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {n: Counter() for n in alloc}
        items = [(r, n) for r, n in where.items() if n] + ([extra] if extra else [])
        for ref, n in items:
            out[n].update({**req[ref], "pods": 1})
        return out

    moves = {m.agent: m for m in result.moves}
    for s in result.steps:
        if s.action == "evict":
            assert where[s.agent] == s.source
            where[s.agent] = None
            continue
        assert s.target is not None
        totals = load((s.agent, s.target))  # the new copy, old still counted where it runs
        for r, v in totals[s.target].items():
            assert v <= alloc[s.target].get(r, 0), f"step {s.step}: {r} on {s.target}"
        where[s.agent] = s.target
        if s.action in ("move", "bind"):
            assert moves[s.agent].target == s.target
    for m in result.moves:
        assert where[m.agent] == m.target


def test_packing_frees_nodes_with_make_before_break_moves() -> None:
    inv = inventory(*spread_out(4))
    result = run(inv, max_moves=5)
    assert len(result.moves) == 3 and len(result.freed_nodes) == 3
    assert all(m.mode == "make-before-break" for m in result.moves)
    assert all(any(w.startswith("frees node") for w in m.why) for m in result.moves)
    assert result.plan.verified
    replay(inv, result)


def test_no_moves_without_gain() -> None:
    inv = inventory(node("n0"), owned(pod("p0", "1", node_name="n0")))
    result = run(inv, max_moves=5, solve=FAST)
    assert result.moves == [] and result.steps == []


@pytest.mark.parametrize("key", ["agentplace.io/do-not-disrupt", "karpenter.sh/do-not-disrupt"])
def test_pinned_pods_never_move(key: str) -> None:
    objs = spread_out(3)
    objs[3 + 1] = owned(pod("p1", "1", node_name="n1"), **{key: "true"})
    objs[3 + 2] = owned(pod("p2", "1", node_name="n2"), **{key: "true"})
    result = run(inventory(*objs), max_moves=5)
    assert {m.agent for m in result.moves} <= {"default/p0"}
    assert key in result.pinned["default/p1"]
    assert len(result.freed_nodes) == 1


def test_pinned_node_keeps_its_pods() -> None:
    objs = spread_out(3)
    objs[1]["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    objs[2]["metadata"]["annotations"] = {"agentplace.io/do-not-disrupt": "true"}
    result = run(inventory(*objs), max_moves=5)
    assert {m.agent for m in result.moves} <= {"default/p0"}
    assert result.pinned["default/p1"] == "its node is annotated karpenter.sh/do-not-disrupt=true"


def test_unowned_daemonset_and_terminating_pods_stay() -> None:
    objs = spread_out(2)
    objs.append(node("n2", "8"))
    bare = pod("bare", "1", node_name="n2")
    ds = owned(pod("ds", "1", node_name="n2"), kind="DaemonSet")
    gone = owned(pod("gone", "1", node_name="n2"))
    gone["metadata"]["deletionTimestamp"] = "2026-11-24T00:00:00Z"
    result = run(inventory(*objs, bare, ds, gone), max_moves=5)
    assert {m.agent for m in result.moves}.isdisjoint({"default/bare", "default/ds", "default/gone"})
    assert "controller" in result.pinned["default/bare"]
    assert "DaemonSet" in result.pinned["default/ds"]
    assert result.pinned["default/gone"] == "terminating"
    # both movable pods join n2, which must stay up anyway
    assert len(result.moves) == 2 and set(result.freed_nodes) == {"n0", "n1"}


@pytest.mark.parametrize(("kw", "most"), [({"max_moves": 1}, 1), ({"max_moves": 0}, 0)])
def test_global_budget(kw: dict[str, int], most: int) -> None:
    result = run(inventory(*spread_out(4)), **kw)
    assert len(result.moves) == most
    assert result.budgets["max-moves"]["used"] == most


def test_per_node_budget() -> None:
    # two nodes of 4 pods each: packing both onto a third node would move 8; 1 per node
    objs = [node("a", "8"), node("b", "8"), node("c", "16")]
    objs += [owned(pod(f"a{i}", "1", node_name="a")) for i in range(4)]
    objs += [owned(pod(f"b{i}", "1", node_name="b")) for i in range(4)]
    objs += [owned(pod("c0", "1", node_name="c"))]
    result = run(inventory(*objs), max_moves=10, max_moves_per_node=1)
    out_of = Counter(m.source for m in result.moves)
    assert all(v <= 1 for v in out_of.values())
    assert all(b["used"] <= b["limit"] for b in result.budgets.values())


def test_per_namespace_budget() -> None:
    objs = [node(f"n{i}") for i in range(4)]
    objs += [owned(pod(f"p{i}", "1", node_name=f"n{i}", namespace=f"ns{i % 2}")) for i in range(4)]
    result = run(inventory(*objs), max_moves=10, max_moves_per_namespace=1)
    per_ns = Counter(m.agent.split("/")[0] for m in result.moves)
    assert all(v <= 1 for v in per_ns.values()) and sum(per_ns.values()) == 2


@pytest.mark.parametrize("allowed", [0, 1])
def test_pdb_caps_moves(allowed: int) -> None:
    inv = inventory(*spread_out(4, labels={"app": "web"}), pdb("web", {"app": "web"}, allowed))
    result = run(inv, max_moves=10)
    assert len(result.moves) == allowed
    assert result.budgets["PodDisruptionBudget default/web"] == {"limit": allowed, "used": allowed}


def test_swap_needs_break_before_make() -> None:
    """a prefers n2 and b prefers n1, each node holds one of them: the swap is only valid with
    one agent evicted first, the other moved make-before-break, then the first bound."""
    def prefers(n: str) -> dict[str, Any]:
        return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": {"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [n]}]}}]}}
    inv = inventory(node("n1"), node("n2"),
                    owned(pod("a", "3", node_name="n1", affinity=prefers("n2"))),
                    owned(pod("b", "3", node_name="n2", affinity=prefers("n1"))))
    result = run(inv, max_moves=2, solve=SolveConfig(time_limit=5.0, profile="balanced"))
    assert {(m.agent, m.target) for m in result.moves} == {("default/a", "n2"), ("default/b", "n1")}
    actions = [s.action for s in result.steps]
    assert actions == ["evict", "move", "bind"]
    assert Counter(m.mode for m in result.moves) == {"break-before-make": 1, "make-before-break": 1}
    replay(inv, result)


def test_swap_blocked_by_pdb_is_dropped() -> None:
    """With no disruption allowed, nothing moves, whatever the objective would gain."""
    inv = inventory(node("n1"), node("n2"),
                    owned(pod("a", "3", node_name="n1", labels={"app": "x"})),
                    owned(pod("b", "3", node_name="n2", labels={"app": "x"})),
                    pdb("x", {"app": "x"}, 0))
    result = run(inv, max_moves=2)
    assert result.moves == []


def test_pending_agents_placed_with_moves() -> None:
    """A 3-cpu pending agent fits nowhere until a 2-cpu pod moves over: the move makes room."""
    inv = inventory(node("n1"), node("n2"),
                    owned(pod("small", "2", node_name="n1")), owned(pod("mid", "2", node_name="n2")),
                    pod("big", "3"))
    result = run(inv, max_moves=1, solve=FAST)
    assert [p.agent for p in result.plan.placements] == ["default/big"]
    (move,) = result.moves
    assert any(w.startswith("makes room for default/big") for w in move.why)
    assert result.steps[-1].action == "place"
    replay(inv, result)


def test_cordoned_node_pins_its_pods() -> None:
    objs = spread_out(2)
    objs[0] = node("n0", unschedulable=True)
    result = run(inventory(*objs), max_moves=5)
    assert "NodeUnschedulable" in result.pinned["default/p0"]


def test_bad_options() -> None:
    with pytest.raises(ReplanError, match="--max-moves -1"):
        replan(inventory(*spread_out(2)), ReplanConfig(max_moves=-1))
    with pytest.raises(ReplanError, match="--max-moves-per-node"):
        replan(inventory(*spread_out(2)), ReplanConfig(max_moves_per_node=-2))


def zoned_nodes(n: int = 3) -> list[dict[str, Any]]:
    return [node(f"n{i}", labels={"topology.kubernetes.io/zone": f"z{i}"}) for i in range(n)]


def spread_pod(name: str, on: str) -> dict[str, Any]:
    d = owned(pod(name, "1", node_name=on, labels={"app": "web"}))
    d["spec"]["topologySpreadConstraints"] = [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]
    return d


def test_moves_repair_a_broken_spread() -> None:
    """Three pods of a zone-spread app all in one zone (skew 3, e.g. after a zone outage):
    two moves bring the skew to 0, and the why says so."""
    inv = inventory(*zoned_nodes(), *[spread_pod(f"w{i}", "n0") for i in range(3)])
    result = run(inv, max_moves=2, solve=FAST)
    assert sorted(m.target for m in result.moves) == ["n1", "n2"]
    assert all("spread skew over topology.kubernetes.io/zone 3 -> 0" in m.why for m in result.moves)
    replay(inv, result)


def test_unrepairable_spread_pins_and_solves_again() -> None:
    inv = inventory(*zoned_nodes(), *[spread_pod(f"w{i}", "n0") for i in range(3)])
    result = run(inv, max_moves=1, solve=FAST)
    assert result.moves == [] and result.rounds == 2
    assert "PodTopologySpread" in result.pinned["default/w0"]


def test_quota_without_room_for_a_surge_pod_breaks_before_making() -> None:
    """A ResourceQuota at its pod count leaves no room for a make-before-break replacement
    (a new pod is charged): the move evicts first, then binds."""
    quota = {"apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "q", "namespace": "default"},
             "spec": {"hard": {"pods": "2"}}, "status": {"hard": {"pods": "2"}, "used": {"pods": "2"}}}
    inv = inventory(*spread_out(2), quota)
    result = run(inv, max_moves=1)
    assert [s.action for s in result.steps] == ["evict", "bind"]
    assert result.moves[0].mode == "break-before-make"


def test_unorderable_moves_are_pinned_and_solved_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the moves of a solve cannot be ordered, their agents are pinned and the window is
    solved again (the ordering is forced to fail once here)."""
    import optimizer.replan as rp

    real, calls = rp.order_moves, []

    def once(*args: Any) -> rp.Order:
        calls.append(1)
        out = real(*args)
        return rp.Order(out.steps, out.modes, sorted(args[3])) if len(calls) == 1 else out
    monkeypatch.setattr(rp, "order_moves", once)
    result = run(inventory(*spread_out(3)), max_moves=5)
    assert result.rounds == 2 and len(calls) == 2
    blocked = [a for a, why in result.pinned.items() if "could not be ordered" in why]
    assert len(blocked) == 2 and not {m.agent for m in result.moves} & set(blocked)


def test_narrowed_targets_stay_valid() -> None:
    """max_targets narrows where a movable agent may go (its own node stays allowed)."""
    inv = inventory(*spread_out(6))
    result = run(inv, max_moves=10, max_targets=2)
    assert len({m.target for m in result.moves}) <= 2
    assert len(result.freed_nodes) >= 4
    replay(inv, result)
    with pytest.raises(ReplanError, match="--max-targets -1"):
        run(inv, max_targets=-1)


def test_readme_example_fleet_frees_five_nodes() -> None:
    """README's example: the running part of examples/fleet, pack, 5 moves."""
    from pathlib import Path

    from models import load_paths

    fleet = Path(__file__).parents[2] / "examples" / "fleet"
    inv = load_paths([fleet / f for f in ("nodes.yaml", "running.yaml", "policies.yaml",
                                           "pricing.yaml")])
    result = run(inv, max_moves=5)
    assert len(result.moves) == 5 and len(result.freed_nodes) == 5
    assert all(m.why[0].startswith("frees node") for m in result.moves)
    assert result.spend_per_hour is not None and result.spend_per_hour["currency"] == "USD"
    # the unowned pod and the pod on the cordoned node never move
    assert not {m.agent for m in result.moves} & set(result.pinned)
    replay(inv, result)
