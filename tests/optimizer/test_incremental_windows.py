"""Incremental windows: node tables kept across windows give exactly a fresh build's Index,
so a replay gives the same plans with and without them (optimizer/nodetables.py)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optimizer.windows as windows
from models import Node, load_documents
from models.load import load_paths
from optimizer import SolveConfig
from optimizer.index import Index
from optimizer.nodetables import NodeTables, _patched, label_column
from optimizer.snapshot import build_snapshot, without_running
from optimizer.windows import Planner, WindowConfig, cut_windows, replay
from tests.builders import inventory, node, pod, taint

FLEET = Path(__file__).resolve().parents[2] / "examples" / "fleet"
# one worker and a generous limit: every window here solves to optimality, so two runs of the
# same model give the same plan and any difference comes from the tables
EXACT = SolveConfig(time_limit=30, workers=1)


def assert_same_index(got: Index, want: Index) -> None:
    """Every table an Index holds, equal (label columns down to their codes and vocab)."""
    assert got.node_names == want.node_names
    assert got.resources == want.resources and got.res_pos == want.res_pos
    for name in ("alloc", "used", "req", "class_of", "class_size", "class_priority",
                 "unschedulable", "node_taints"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name
    assert [c.key for c in got.classes] == [c.key for c in want.classes]
    assert got.taints == want.taints and got.taint_pos == want.taint_pos
    assert list(got.labels) == list(want.labels)
    for key in [*want.labels, None]:
        a, b = (got.names, want.names) if key is None else (got.labels[key], want.labels[key])
        assert a.vocab == b.vocab and list(a.vocab) == list(b.vocab), key
        for part in ("codes", "ints", "is_int"):
            assert np.array_equal(getattr(a, part), getattr(b, part)), (key, part)


def plan_dict(plan: Any) -> dict[str, Any]:
    out = dataclasses.asdict(plan)
    out.pop("timings")
    return out


@pytest.fixture
def checked_indexes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every window solved with node tables first checks their Index against a fresh one."""
    real, seen = windows.optimize, []

    def spy(snap: Any, cfg: Any, warm: Any = None, nodes: NodeTables | None = None) -> Any:
        if nodes is not None:
            assert_same_index(Index(snap, nodes), Index(snap))
            seen.append(len(snap.nodes))
        return real(snap, cfg, warm=warm, nodes=nodes)

    monkeypatch.setattr(windows, "optimize", spy)
    return seen


def test_the_fleet_example_replays_to_the_same_plans_with_and_without_node_tables(checked_indexes):
    inv = load_paths([FLEET])
    runs = {inc: list(replay(inv, WindowConfig(max_agents=25, max_age=1e9, incremental=inc,
                                                solve=EXACT)))
            for inc in (True, False)}
    assert len(runs[True]) >= 4 and len(checked_indexes) == len(runs[True])
    assert [plan_dict(r.plan) for r in runs[True]] == [plan_dict(r.plan) for r in runs[False]]
    assert any(r.plan.evictions for r in runs[True])  # the stream includes preemption
    assert all("node_tables" in r.plan.timings for r in runs[True])
    assert not any("node_tables" in r.plan.timings for r in runs[False])


def _arrival(name: str, second: int, cpu: str = "1", **kw: Any) -> dict[str, Any]:
    p = pod(name, cpu, namespace="team", **kw)
    p["metadata"]["creationTimestamp"] = f"2026-11-24T10:00:{second:02d}Z"
    return p


def _node(name: str, **kw: Any) -> Node:
    return load_documents([node(name, "4", **kw)]).nodes[0]


ZONES = ("z0", "z1", "z2")
FPGA = "example.com/fpga"


def _cluster() -> Any:
    nodes = [node(f"n{i}", "4", labels={"zone": ZONES[i % 3], "rack": str(i)}) for i in range(5)]
    nodes.append(node("n5", "4", labels={"zone": "z2"}, taints=[taint("gpu")]))
    running = [pod(f"low{i}", "1", node_name="n0", priority=0, labels={"app": "low"})
               for i in range(3)]
    gpu = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    agents = []
    for w in range(7):
        agents += [
            _arrival(f"w{w}-plain", 8 * w, "1"),
            _arrival(f"w{w}-z1", 8 * w, "1", node_selector={"zone": "z1"}),
            _arrival(f"w{w}-gpu", 8 * w + 1, "2", tolerations=gpu),
            _arrival(f"w{w}-vip", 8 * w + 1, "2", priority=1000),
            _arrival(f"w{w}-fpga", 8 * w + 2, "1", extra={FPGA: "1"}),
        ]
    return inventory(*nodes, *running, *agents)


def _change_nodes(planner: Planner, window: int) -> None:
    """Between windows: cordon, relabel, taint, resize (a new extended resource), add and
    remove nodes; every change is a new Node object, as a watch would deliver it."""
    nodes = {n.name: n for n in planner.inv.nodes}
    if window == 0:
        nodes["n1"] = _node("n1", labels={"zone": "z1", "rack": "1"}, unschedulable=True)
    elif window == 1:  # z0 -> z1, a new key, a key dropped, a taint n5 has already
        nodes["n3"] = _node("n3", labels={"zone": "z1", "disk": "ssd"}, taints=[taint("gpu")])
    elif window == 2:
        # two nodes move to z0 (codes kept: patched) and swap racks (codes reordered: rebuilt)
        nodes["n2"] = _node("n2", labels={"zone": "z0", "rack": "4"}, taints=[taint("maint")])
        nodes["n4"] = _node("n4", labels={"zone": "z0", "rack": "2"}, extra={FPGA: "2"})
        nodes["n1"] = _node("n1", labels={"zone": "z1", "rack": "1"})  # uncordoned
    elif window == 3:  # the extended resource moves to n1; the label key "disk" goes away
        nodes["n1"] = _node("n1", labels={"zone": "z1", "rack": "1"}, extra={FPGA: "1"})
        nodes["n4"] = _node("n4", labels={"zone": "z1", "rack": "4"})
        nodes["n3"] = _node("n3", labels={"zone": "z1"}, taints=[taint("gpu")])
    elif window == 4:
        nodes["n6"] = _node("n6", labels={"zone": "z1", "rack": "6"})
    elif window == 5:
        del nodes["n0"]
    planner.inv.nodes = list(nodes.values())


def test_a_stream_with_cordons_relabels_taints_and_node_churn_plans_the_same(checked_indexes):
    inv = _cluster()
    planners = {inc: Planner(inv, WindowConfig(max_agents=5, max_age=1e9, incremental=inc,
                                               solve=EXACT)) for inc in (True, False)}
    rebuilt, patched, columns = [], 0, 0
    for w, arrivals in enumerate(cut_windows(inv.pending, 5, 1e9)):
        plans = {inc: p.step(arrivals).plan for inc, p in planners.items()}
        assert plan_dict(plans[True]) == plan_dict(plans[False]), f"window {w}"
        tables = planners[True].tables
        assert tables is not None
        rebuilt.append(tables.stats.rebuilt)
        patched += tables.stats.columns_patched
        columns += tables.stats.columns_rebuilt
        for p in planners.values():
            _change_nodes(p, w)
    # only the first window and the two node-set changes (add, remove) build from scratch
    assert rebuilt == [True, False, False, False, False, True, True]
    assert len(checked_indexes) == 7
    assert patched and columns  # label columns took both paths
    assert any(p.evictions for p in plans.values())  # the vips preempt low pods on n0


def test_usage_updated_in_place_equals_a_fresh_count_after_bindings_and_evictions():
    nodes = inventory(*[node(f"n{i}", "4") for i in range(3)]).nodes
    pods = load_documents([pod(f"r{i}", f"{i + 1}00m", memory="1Gi", node_name=f"n{i % 3}",
                               extra={FPGA: "1"} if i == 2 else None) for i in range(6)]).pods
    # (bound, evicted) per window; r2 alone names the extended resource, r0 comes back
    steps = [([0, 1], []), ([2, 3], [0]), ([4, 5], [2]), ([0], [1, 3, 4]), ([], [5, 0])]
    running: list[Any] = []
    tables = NodeTables.build(build_snapshot(inventory(*[node(f"n{i}", "4") for i in range(3)])))
    for bound, evicted in steps:
        running = [p for p in running if p not in [pods[i] for i in evicted]]
        running += [pods[i] for i in bound]
        snap = build_snapshot(dataclasses.replace(inventory(), nodes=list(nodes), pods=running))
        if tables.nodes != snap.nodes:  # the first snapshot had other node objects
            tables = NodeTables.build(snap)
        tables = tables.update(snap)
        assert not tables.stats.rebuilt
        fresh, kept = Index(snap), Index(snap, tables)
        assert_same_index(kept, fresh)
        assert np.array_equal(kept.free, fresh.free)
        assert (FPGA in kept.resources) == (pods[2] in running)
    assert int(Index(snap, tables).used.sum()) == 0


@pytest.mark.parametrize("seed", range(3))
def test_a_patched_label_column_is_the_fresh_column_or_refused(seed):
    rng = np.random.default_rng(seed)
    pool: list[str | None] = [None, "a", "b", "c", "7", "-3", "x9"]
    values = [pool[i] for i in rng.integers(0, 3, 200)]  # the rest appear as rows change
    col, patched = label_column(values), 0
    for _ in range(200):
        rows = sorted({int(i) for i in rng.integers(0, len(values), rng.integers(1, 4))})
        new = [pool[i] for i in rng.integers(0, len(pool), len(rows))]
        for i, v in zip(rows, new, strict=True):
            values[i] = v
        fresh, got = label_column(values), _patched(col, len(values), rows, new)
        if got is not None:
            patched += 1
            assert got.vocab == fresh.vocab and list(got.vocab) == list(fresh.vocab)
            for part in ("codes", "ints", "is_int"):
                assert np.array_equal(getattr(got, part), getattr(fresh, part)), part
        col = fresh
    assert patched > 100  # the patch is the common case, not a rare one


def test_a_pod_object_listed_twice_is_counted_as_a_fresh_build_counts_it():
    nodes = inventory(node("a", "4"), node("b", "4")).nodes
    twice = load_documents([pod("r", "1", node_name="a")]).pods[0]
    tables = None
    for pods in ([twice, twice], [twice], [twice, twice], []):
        snap = build_snapshot(dataclasses.replace(inventory(), nodes=list(nodes), pods=pods))
        tables = NodeTables.build(snap) if tables is None else tables.update(snap)
        assert_same_index(Index(snap, tables), Index(snap))


def test_stale_tables_are_refused_and_never_written_through_an_index():
    inv = inventory(node("a", "4"), node("b", "4"), pod("r", "1", node_name="a"), pod("x", "1"))
    snap = build_snapshot(inv)
    tables = NodeTables.build(snap)
    with pytest.raises(ValueError, match="another snapshot"):
        Index(without_running(snap, ["default/r"]), tables)
    ix = Index(snap, tables)
    with pytest.raises(ValueError, match="read-only"):
        ix.unschedulable[0] = True
    with pytest.raises(ValueError, match="read-only"):
        ix.labels["kubernetes.io/hostname"].codes[0] = 5
    ix.used[0, 0] += 1  # the Index's own copy
    assert tables.used[0, 0] == Index(snap).used[0, 0]


def _random_node(rng: np.random.Generator, name: str) -> dict[str, Any]:
    labels = {k: str(rng.choice(vals)) for k, vals in
              (("zone", ["a", "b", "c"]), ("gen", ["1", "2", "10", "x"]), ("pool", ["p", "q"]))
              if rng.random() < 0.7}
    taints = [taint(str(k), effect=str(e)) for k, e in
              (("gpu", "NoSchedule"), ("spot", "PreferNoSchedule"), ("gpu", "NoExecute"))
              if rng.random() < 0.3]
    extra = {FPGA: str(rng.integers(0, 3))} if rng.random() < 0.3 else None
    return node(name, str(rng.integers(2, 9)), labels=labels, taints=taints,
                unschedulable=bool(rng.random() < 0.2), extra=extra)


@pytest.mark.parametrize("seed", range(4))
def test_random_node_and_pod_changes_keep_the_tables_equal_to_a_fresh_build(seed):
    """Random streams of node replacements (labels, taints, cordons, sizes, an extended
    resource), bindings and evictions, and now and then a node added or removed."""
    rng = np.random.default_rng(seed)
    nodes = {f"n{i}": load_documents([_random_node(rng, f"n{i}")]).nodes[0] for i in range(8)}
    pool = load_documents([pod(f"p{j}", f"{j % 4 + 1}00m", extra={FPGA: "1"} if j % 5 == 0 else None)
                           for j in range(40)]).pods
    running: dict[str, Any] = {}  # pod name -> bound Pod
    pending = load_documents([pod("agent", "1", extra={"example.com/new": "1"})]).pods
    tables: NodeTables | None = None
    kinds = Counter()
    for _ in range(30):
        for _ in range(int(rng.integers(0, 3))):  # node changes
            name = str(rng.choice(sorted(nodes)))
            nodes[name] = load_documents([_random_node(rng, name)]).nodes[0]
        if rng.random() < 0.1:
            nodes[f"m{len(nodes)}"] = load_documents([_random_node(rng, f"m{len(nodes)}")]).nodes[0]
        if rng.random() < 0.1 and len(nodes) > 2:
            del nodes[str(rng.choice(sorted(nodes)))]
        for p in rng.choice(len(pool), int(rng.integers(0, 4)), replace=False).tolist():
            target = str(rng.choice(sorted(nodes)))
            running.setdefault(pool[p].name, pool[p].model_copy(update={
                "spec": pool[p].spec.model_copy(update={"node_name": target}),
                "status": pool[p].status.model_copy(update={"phase": "Running"})}))
        for name in [n for n in sorted(running) if rng.random() < 0.15]:
            del running[name]
        inv = dataclasses.replace(inventory(), nodes=list(nodes.values()),
                                  pods=[*running.values(), *pending])
        snap = build_snapshot(inv)
        tables = NodeTables.build(snap) if tables is None else tables.update(snap)
        kinds["rebuilt" if tables.stats.rebuilt else "updated"] += 1
        assert_same_index(Index(snap, tables), Index(snap))
    assert kinds["updated"] > 15
