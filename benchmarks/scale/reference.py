"""One reference objective for every method of a scale run, so plans compare across methods:
the full per-node model's terms under the default profile, evaluated on a plan's counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optimizer import SolveConfig
from optimizer.index import Index
from optimizer.model import ModelBuilder, candidate_pairs
from optimizer.objective import encode_objective
from optimizer.solve import prefilter


def reference_score(ix: Index) -> Callable[[Sequence[tuple[str, str]]], dict[str, Any]]:
    """placements (agent, node) -> placed, objective_ref, placed_priority, balance_ref."""
    snap = ix.snap
    _, full = prefilter(ix)
    mb = ModelBuilder(ix, *candidate_pairs(ix, full))
    mb.build_variables()
    obj = encode_objective(mb, SolveConfig())
    balance = next(t for t in obj.terms if t.name == "balance")

    def score(placements: Sequence[tuple[str, str]]) -> dict[str, Any]:
        counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
        for a, n in placements:
            counts[ix.class_of[snap.agent_pos[a]], snap.node_pos[n]] += 1
        return {"placed": len(placements), "objective_ref": obj.value(counts),
                "placed_priority": int(ix.class_priority @ counts.sum(axis=1)),
                "balance_ref": balance.evaluate(counts)}

    return score
