"""Candidate scoping keeps every zone, enough hosts and enough capacity; scoped plans are valid,
never below the greedy, and on small windows place as many agents as the unscoped model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.scale.shapes import mixed
from benchmarks.synthetic import synthetic_window
from models import load_documents
from optimizer import SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.index import Index
from optimizer.scoping import scope
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify


def _scoped(docs: list[dict[str, Any]], k: int) -> tuple[Index, np.ndarray, np.ndarray]:
    ix = Index(build_snapshot(load_documents(docs, source="t")))
    static, full = prefilter(ix)
    return ix, full, scope(ix, full, greedy(ix, static), k)


def test_diversity_per_zone_and_per_host() -> None:
    ix, full, scoped = _scoped(mixed(300, 120), k=9)
    zone = ix.label("topology.kubernetes.io/zone").codes
    for c, cls in enumerate(ix.classes):
        app = cls.pod.labels["app"]
        assert scoped[c].sum() < full[c].sum()  # it does cut
        assert (scoped[c] <= full[c]).all()  # only restricts
        if app == "spread":  # every zone stays reachable
            assert set(zone[scoped[c]].tolist()) == set(zone[full[c]].tolist())
        if app == "anti":  # one per host: at least twice the class's size
            assert scoped[c].sum() >= 2 * cls.size


def test_wide_k_keeps_everything() -> None:
    _, full, scoped = _scoped(mixed(30, 30), k=1000)
    np.testing.assert_array_equal(scoped, full)


@pytest.mark.parametrize("make", [lambda: synthetic_window(60, 150, seed=2),
                                  lambda: load_documents(mixed(60, 90), source="t")])
def test_scoped_plan_is_valid_and_places_as_many(make: Any) -> None:
    inv = make()
    scoped = optimize(inv, SolveConfig(time_limit=2, scope_k=6))
    full = optimize(inv, SolveConfig(time_limit=2))
    assert scoped.model["candidate_pairs"] < full.model["candidate_pairs"]
    snap = build_snapshot(inv)
    assert verify([(p.agent, p.node) for p in scoped.placements], snap) == []
    assert len(scoped.placements) >= scoped.baseline["placed_agents"]
    assert len(scoped.placements) == len(full.placements)
    assert (scoped.objective_terms["placed_priority"] == full.objective_terms["placed_priority"])
