import itertools

import numpy as np
import pytest

from benchmarks.baselines import HEURISTICS, bfd, ffd, solve_milp
from benchmarks.common import check_plan
from benchmarks.vbp import kube
from optimizer.snapshot import build_snapshot


def _random(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    capacity = rng.integers(20, 200, size=d)
    sizes = (rng.random((n, d)) * capacity * rng.uniform(0.1, 0.9)).astype(np.int64)
    return capacity, sizes


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", list(HEURISTICS))
def test_heuristics_are_verified_complete_and_within_bounds(seed: int, name: str):
    n, d = 25, 1 + seed % 4
    capacity, sizes = _random(seed, n, d)
    p = HEURISTICS[name](capacity, sizes)
    assert p.complete and p.bin_of.min() >= 0
    l1 = int(np.max(-(-sizes.sum(axis=0) // capacity)))
    assert l1 <= p.bins <= n
    assert sorted(set(p.bin_of.tolist())) == list(range(p.bins))  # bins are used in order
    snap = build_snapshot(kube.inventory(capacity, sizes, bins=n))
    check = check_plan(name, kube.placements(p.bin_of), snap, require_complete=True)
    assert check.ok, check.violations


def test_ffd_and_bfd_on_a_hand_case():
    # 1-D in cpu only: FFD puts 6 with 4 and 5 with 5; BFD takes the tightest bin
    capacity = np.array([10])
    sizes = np.array([[5], [4], [6], [5]])
    assert ffd(capacity, sizes).bins == 2
    assert bfd(capacity, sizes).bins == 2
    assert ffd(capacity, sizes, "sum").bin_of.tolist() == [1, 0, 0, 1]


def test_sort_key_matters_in_several_dimensions():
    capacity = np.array([100, 100])
    sizes = np.array([[90, 0], [0, 90], [10, 60], [60, 10], [5, 5]])
    assert ffd(capacity, sizes, "max").complete and ffd(capacity, sizes, "sum").complete
    with pytest.raises(ValueError, match="unknown sort key"):
        ffd(capacity, sizes, "l2")


SIX_ITEMS = np.array([[1, 7], [4, 3], [3, 3], [3, 1], [4, 1], [3, 2]])


def _brute_force_optimum(capacity: np.ndarray, sizes: np.ndarray) -> int:
    n = len(sizes)
    best = n
    for labels in itertools.product(range(n), repeat=n):
        if labels[0] != 0 or max(labels) + 1 >= best:
            continue
        load = np.zeros((n, len(capacity)), dtype=np.int64)
        np.add.at(load, np.array(labels), sizes)
        if (load <= capacity).all():
            best = max(labels) + 1
    return best


def test_milp_finds_the_optimum_of_a_six_item_instance():
    # every FFD/BFD variant opens 3 bins here; the optimum is 2
    capacity = np.array([10, 10])
    sizes = SIX_ITEMS
    opt = _brute_force_optimum(capacity, sizes)
    heuristic = ffd(capacity, sizes, "max")
    r = solve_milp(capacity, sizes, bins=len(sizes), time_limit=20, threads=1)
    assert r.status == "OPTIMAL" and r.proven
    assert r.bins == opt == r.lower_bound
    assert opt == 2 and all(h(capacity, sizes).bins == 3 for h in HEURISTICS.values())
    snap = build_snapshot(kube.inventory(capacity, sizes, bins=len(sizes)))
    assert check_plan("milp", kube.placements(r.bin_of), snap, require_complete=True).ok
    warm = solve_milp(capacity, sizes, bins=heuristic.bins, time_limit=20, threads=1,
                      warm_start=heuristic.bin_of)
    assert warm.bins == opt and warm.info["warm_start"] is True
