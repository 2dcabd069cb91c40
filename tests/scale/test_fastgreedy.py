"""The heap greedy must give exactly the vector greedy's assignment on node-local windows."""

from __future__ import annotations

import random

import numpy as np
import pytest

from benchmarks.synthetic import synthetic_window
from models import load_documents
from optimizer.baseline import decreasing_size_order, greedy
from optimizer.fastgreedy import greedy_local, is_local
from optimizer.index import Index
from optimizer.rules import RULES
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from tests.builders import node, pod


@pytest.mark.parametrize("strategy", ["LeastAllocated", "MostAllocated", "FirstFit"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_assignment_as_vector_greedy(strategy: str, seed: int) -> None:
    ix = Index(build_snapshot(synthetic_window(60, 400 if seed == 3 else 150, seed=seed)))
    assert is_local(ix)
    static, _ = prefilter(ix)
    for order in (None, decreasing_size_order(ix)):
        vector = greedy(ix, static, strategy, rules=list(RULES), order=order)
        heap = greedy_local(ix, static, strategy, order=order)
        np.testing.assert_array_equal(heap, vector)
        np.testing.assert_array_equal(greedy(ix, static, strategy, order=order), vector)


def test_ties_and_zero_requests() -> None:
    rng = random.Random(7)
    docs = [node(f"n{i}", cpu=rng.choice(["1", "2"]), memory="2Gi", pods="3") for i in range(8)]
    docs += [pod(f"p{j}", cpu=rng.choice([None, "0", "500m", "1"]), memory=rng.choice([None, "1Gi"]))
             for j in range(30)]
    ix = Index(build_snapshot(load_documents(docs, source="t")))
    static, _ = prefilter(ix)
    for strategy in ("LeastAllocated", "MostAllocated"):
        np.testing.assert_array_equal(greedy_local(ix, static, strategy),
                                      greedy(ix, static, strategy, rules=list(RULES)))


def test_spread_window_is_not_local() -> None:
    spread = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
              "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"a": "b"}}}
    p = pod("p", labels={"a": "b"})
    p["spec"]["topologySpreadConstraints"] = [spread]
    ix = Index(build_snapshot(load_documents([node("n0"), p], source="t")))
    assert not is_local(ix)


@pytest.mark.parametrize("strategy", ["LeastAllocated", "FirstFit"])
def test_one_extended_resource_per_agent(strategy: str) -> None:
    """kube-perf's SchedulingWithExtendedResource: each agent asks for its own resource, which
    two nodes offer (one unit each) and a third agent also wants. The heap greedy tests only the
    resources a class asks for (the dense class x node x resource test took minutes at 5,000)
    and must still agree with the vector greedy: two of each resource's three claimants placed,
    on the nodes offering it."""
    n = 40
    docs = [node(f"n{i}", extra={f"foo.com/bar-{i // 2}": "1"}) for i in range(2 * n)]
    docs += [pod(f"p{j}", extra={f"foo.com/bar-{j % n}": "1"}) for j in range(3 * n)]
    docs += [pod("plain")]
    ix = Index(build_snapshot(load_documents(docs, source="t")))
    assert is_local(ix)
    static, _ = prefilter(ix)
    heap = greedy_local(ix, static, strategy)
    np.testing.assert_array_equal(heap, greedy(ix, static, strategy, rules=list(RULES)))
    placed_per_resource = [0] * n
    for p, node_pos in zip(ix.snap.pending, heap.tolist(), strict=True):
        if p.ref == "default/plain":
            assert node_pos >= 0
            continue
        k = int(p.ref.split("/p")[1]) % n
        if node_pos >= 0:
            assert ix.node_names[node_pos] in (f"n{2 * k}", f"n{2 * k + 1}")
            placed_per_resource[k] += 1
    assert placed_per_resource == [2] * n
