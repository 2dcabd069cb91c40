"""Interchangeable empty nodes (optimizer/interchangeable.py): which nodes form a group, how many
stay, plans mapped onto the kept nodes, and the optimum unchanged."""

from __future__ import annotations

import numpy as np

from benchmarks.latency import workload
from models import load_documents
from optimizer import SolveConfig, optimize
from optimizer.index import Index
from optimizer.interchangeable import trim
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from tests.builders import inventory, node, pod, taint


def _index(*objects: dict) -> Index:  # type: ignore[type-arg]
    ix = Index(build_snapshot(inventory(*objects)))
    return ix


def test_surplus_empty_twins_are_dropped_and_everything_else_kept() -> None:
    twins = [node(f"a{i}", labels={"zone": "z1"}) for i in range(6)]
    other_zone = [node(f"b{i}", labels={"zone": "z2"}) for i in range(2)]
    tainted = [node(f"t{i}", labels={"zone": "z1"}, taints=[taint("k", "v", "PreferNoSchedule")])
               for i in range(4)]
    busy = node("busy", labels={"zone": "z1"})
    ix = _index(*twins, *other_zone, *tainted, busy,
                pod("running", "1", node_name="busy", priority=1000),
                pod("p0", "1"), pod("p1", "1"), pod("p2", "1"))
    full = prefilter(ix)[1]
    cut = trim(ix, full)
    assert cut is not None
    names = [[ix.node_names[n] for n in g] for g in cut.groups]
    # 3 agents can use at most 3 of a group: the twins and the tainted nodes lose their surplus
    assert sorted(names) == [[f"a{i}" for i in range(6)], [f"t{i}" for i in range(4)]]
    assert cut.kept == (3, 3) and cut.removed == 4
    kept = {ix.node_names[n] for n in np.flatnonzero(cut.mask.any(axis=0))}
    assert kept == {"a0", "a1", "a2", "b0", "b1", "t0", "t1", "t2", "busy"}


def test_no_group_when_the_window_could_use_every_node_or_hostnames_are_shared() -> None:
    ix = _index(*(node(f"a{i}") for i in range(3)), *(pod(f"p{i}", "1") for i in range(3)))
    assert trim(ix, prefilter(ix)[1]) is None
    # two nodes sharing a hostname label are one hostname domain: not a twin of the others
    shared = [node(f"s{i}", labels={"kubernetes.io/hostname": "same"}) for i in range(2)]
    ix = _index(*shared, *(node(f"a{i}") for i in range(3)), pod("p0", "1"))
    cut = trim(ix, prefilter(ix)[1])
    assert cut is not None
    assert sorted(sorted(ix.node_names[n] for n in g) for g in cut.groups) == [
        ["a0", "a1", "a2"], ["s0", "s1"]]


def test_canonical_moves_a_plan_onto_the_kept_nodes() -> None:
    ix = _index(*(node(f"a{i}") for i in range(5)), pod("p0", "1"), pod("p1", "2"))
    cut = trim(ix, prefilter(ix)[1])
    assert cut is not None and cut.kept == (2,)
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    counts[0, 4] = 1
    counts[1, 2] = 1
    out, gone = cut.canonical(counts)
    assert gone is None
    assert out.sum(axis=1).tolist() == counts.sum(axis=1).tolist()
    assert out[:, 2:].sum() == 0 and (out[:, :2].sum(axis=0) == 1).all()
    assert (out[:, :2] <= cut.mask[:, :2]).all()


def test_twins_with_running_pods_keep_their_victims_aligned() -> None:
    # six 4-cpu nodes, each running a 3-cpu low-priority pod: an agent fits only by preempting
    objs = [node(f"n{i}") for i in range(6)]
    objs += [pod(f"batch-{i}", "3", node_name=f"n{i}", labels={"app": "batch"}, priority=0)
             for i in range(6)]
    objs += [pod("p0", "2", priority=100), pod("p1", "2", priority=100)]
    ix = Index(build_snapshot(inventory(*objs)))
    from optimizer.preemption import find_victims

    ix.victims = find_victims(ix)
    assert len(ix.victims) == 6
    cut = trim(ix, prefilter(ix)[1])
    assert cut is not None and cut.kept == (2,) and len(cut.groups[0]) == 6
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    n5 = ix.node_names.index("n5")
    counts[0, n5] = 1
    evicted = ix.victims.node == n5
    out, gone = cut.canonical(counts, evicted)
    assert gone is not None and gone.sum() == 1
    target = int(np.flatnonzero(out[0])[0])
    assert target in cut.groups[0][:2].tolist()  # a kept node, with its own pod evicted
    assert int(ix.victims.node[gone][0]) == target
    # a pod that differs (another label) makes its node no twin of the others
    objs[6] = pod("batch-0", "3", node_name="n0", labels={"app": "other"}, priority=0)
    ix = Index(build_snapshot(inventory(*objs)))
    ix.victims = find_victims(ix)
    cut = trim(ix, prefilter(ix)[1])
    assert cut is not None and ix.node_names.index("n0") not in cut.groups[0].tolist()


def test_the_optimum_is_the_same_with_and_without_trimming() -> None:
    # every hard rule of the latency workload (500 nodes: ~60 empty twins per zone, 35 usable);
    # proven optimal both ways, no gap allowed
    base = workload.cluster(1)
    for w in (0, 1):
        inv = load_documents([*base, *workload.window(w, 1)])
        on = optimize(inv, SolveConfig(time_limit=10, term_gap=0.0))
        off = optimize(inv, SolveConfig(time_limit=10, term_gap=0.0, trim_interchangeable=False))
        assert on.status == off.status == "OPTIMAL"
        assert on.objective == off.objective
        assert on.model["candidate_pairs"] < off.model["candidate_pairs"]
        assert "trim" in on.timings


def test_trimming_keeps_the_optimum_when_agents_must_preempt() -> None:
    """Random twins running a low-priority pod each; agents that fit only by evicting: the
    proven optimum (evictions included) is the same with and without trimming."""
    import random

    with_evictions = 0
    for seed in range(12):
        rng = random.Random(seed)
        objs = []
        for i in range(rng.randint(5, 10)):
            objs.append(node(f"n{i}", cpu="4"))
            objs.append(pod(f"run-{i}", rng.choice(["3", "3", "1"]), node_name=f"n{i}",
                            labels={"app": "batch"}, priority=0))
        objs += [pod(f"p{j}", rng.choice(["2", "2", "1"]), priority=rng.choice([10, 100]))
                 for j in range(rng.randint(1, 3))]
        inv = inventory(*objs)
        on = optimize(inv, SolveConfig(time_limit=10, term_gap=0.0, workers=1))
        off = optimize(inv, SolveConfig(time_limit=10, term_gap=0.0, workers=1,
                                        trim_interchangeable=False))
        assert on.status == off.status == "OPTIMAL" and on.objective == off.objective, seed
        with_evictions += bool(on.evictions) and on.model["candidate_pairs"] < off.model["candidate_pairs"]
    assert with_evictions >= 1  # the case the eviction mapping is for did occur


def test_row_ids_group_rows_exactly_as_dense_unique() -> None:
    """The sparse row key must put two nodes together iff every part's row is equal."""
    import numpy as np

    from optimizer.interchangeable import _row_ids

    rng = np.random.default_rng(4)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        parts = [rng.integers(0, 3, (n, int(rng.integers(1, 6)))) * rng.integers(0, 2, (n, 1))
                 for _ in range(int(rng.integers(1, 4)))]
        parts.append(np.packbits(rng.integers(0, 2, (n, 9)).astype(bool), axis=1))
        dense = np.concatenate([p.astype(np.int64) for p in parts], axis=1)
        _, expected = np.unique(dense, axis=0, return_inverse=True)
        got = _row_ids(parts)
        same_expected = expected.reshape(-1)[:, None] == expected.reshape(-1)[None, :]
        assert (same_expected == (got[:, None] == got[None, :])).all()
