import numpy as np
import pytest

from benchmarks.common import check_plan
from benchmarks.vbp import kube
from models import InputErrors, load_documents
from optimizer.index import Index
from optimizer.snapshot import build_snapshot


def _instance(d: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    capacity = rng.integers(50, 1000, size=d)
    sizes = rng.integers(0, 50, size=(12, d))
    return capacity, sizes


@pytest.mark.parametrize("d", [1, 2, 3, 5, 10])
def test_round_trip_keeps_every_size_exact(d: int):
    capacity, sizes = _instance(d)
    snap = build_snapshot(kube.inventory(capacity, sizes, bins=4))
    assert [n.name for n in snap.nodes] == [f"bin-{b:05d}" for b in range(4)]
    assert [p.ref for p in snap.pending] == [kube.pod_ref(i) for i in range(12)]
    cap2, sizes2 = kube.back_to_vbp(snap)
    assert cap2.tolist() == capacity.tolist()
    assert sizes2.tolist() == sizes.tolist()
    ix = Index(snap)  # the optimizer's tables see the same integers, in base units
    scale = kube.units_per_size(d)
    for k, r in enumerate(kube.resource_names(d)):
        assert (ix.alloc[:, ix.res_pos[r]] == capacity[k] * scale[k]).all()
    assert (ix.alloc[:, ix.pods_res] == 1000).all()
    assert len(set(ix.class_priority.tolist())) == 1


def test_resource_names_and_quantities():
    assert kube.resource_names(4) == ["cpu", "memory", "vbp.agentplace.io/d2", "vbp.agentplace.io/d3"]
    assert [kube.quantity(k, 7) for k in range(3)] == ["7m", "7Mi", "7"]


def test_negative_sizes_are_refused_by_the_mapping_and_by_the_models():
    with pytest.raises(ValueError, match="negative"):
        kube.documents(np.array([10, 10]), np.array([[1, -2]]), bins=1)
    docs = kube.documents(np.array([10, 10]), np.array([[1, 2]]), bins=1)
    docs[1]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "-2Mi"
    with pytest.raises(InputErrors, match="greater than or equal to 0"):
        load_documents(docs)


def test_verifier_sees_an_overfull_bin():
    capacity, sizes = np.array([10, 10]), np.array([[6, 1], [6, 1], [1, 1]])
    snap = build_snapshot(kube.inventory(capacity, sizes, bins=3))
    assert check_plan("ok", kube.placements([0, 1, 0]), snap, True).ok
    bad = check_plan("bad", kube.placements([0, 0, 1]), snap, True)
    assert not bad.ok and any("cpu" in v for v in bad.violations)
    partial = check_plan("partial", kube.placements([0, -1, 1]), snap, True)
    assert any("unplaced" in v for v in partial.violations)


def test_bins_lower_bound_reads_both_objective_layouts():
    from benchmarks.vbp.suite import bins_lower_bound, nodes_opened

    old = {"placed_agents": 10, "priority_weight": 10, "scale": 21, "secondary": {"value": 4}}
    assert bins_lower_bound(21 * 10 - 3, old, 10) == 3
    assert bins_lower_bound(21 * 10, old, 10) == 0
    assert bins_lower_bound(None, old, 10) is None
    assert nodes_opened(old) == 4
    new = {"placed_agents": 10, "priority_weight": 10, "priority_scale": 10_001,
           "terms": {"pack": {"coefficient": 500, "value": 4}, "cost": {"coefficient": 0}}}
    assert bins_lower_bound(10_001 * 10 - 1500, new, 10) == 3
    assert bins_lower_bound(10_001 * 10 - 1499, new, 10) == 3  # rounded up: 2.998 bins
    assert bins_lower_bound(10_001 * 9, new, 10) is None  # says nothing about placing all
    assert nodes_opened(new) == 4
    mixed = {**new, "terms": {**new["terms"], "balance": {"coefficient": 3}}}
    assert bins_lower_bound(10_001 * 10 - 1500, mixed, 10) is None
