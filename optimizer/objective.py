"""Placed priority first, then a balance (LeastAllocated) or packing (MostAllocated) term.

Integer scale (CP-SAT needs integers): objective = S * sum_c w[c] * placed[c] - secondary,
with 0 <= secondary < S, so the secondary term only breaks ties between plans of equal placed
priority. Priority weights are lexicographic when they fit in 2^53: w for a priority level is
1 + the total weight of every agent of lower priority, so one higher-priority agent outweighs
any number of lower ones (kube's queue order). If the window has too many levels for that,
weights fall back to dense ranks and a warning says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from optimizer.config import SolveConfig
from optimizer.index import Index
from optimizer.model import ModelBuilder

LIMIT = 2**53
BALANCE_RESOURCES = ("cpu", "memory")


def priority_weights(ix: Index) -> tuple[np.ndarray, bool]:
    """int64[cls] weights and whether they are exactly lexicographic."""
    levels = np.unique(ix.class_priority)
    count = {int(p): int(ix.class_size[ix.class_priority == p].sum()) for p in levels}
    weight: dict[int, int] = {}
    below = 0
    for p in levels.tolist():
        weight[p] = below + 1
        below += weight[p] * count[p]
    if below < LIMIT // 1024:
        return np.array([weight[int(p)] for p in ix.class_priority], dtype=np.int64), True
    rank = {int(p): i + 1 for i, p in enumerate(levels.tolist())}
    return np.array([rank[int(p)] for p in ix.class_priority], dtype=np.int64), False


@dataclass
class Objective:
    """The encoded objective and enough to evaluate any plan with the same formula."""

    strategy: str
    weights: np.ndarray  # [cls]
    scale: int
    lexicographic: bool
    balance_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pack_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    secondary_var: cp_model.IntVar | None = None
    open_vars: dict[int, cp_model.IntVar] = field(default_factory=dict)

    def secondary(self, ix: Index, counts: np.ndarray) -> int:
        """counts: int[cls, node]. Max utilisation % (balance) or nodes newly opened (pack)."""
        if self.strategy == "LeastAllocated":
            worst = 0
            for r in BALANCE_RESOURCES:
                j = ix.res_pos[r]
                nodes = self.balance_nodes
                if nodes.size == 0:
                    continue
                load = 100 * (ix.used[nodes, j] + ix.req[:, j] @ counts[:, nodes])
                alloc = ix.alloc[nodes, j]
                ok = alloc > 0
                if ok.any():
                    worst = max(worst, int((-(-load[ok] // alloc[ok])).max()))
            return worst
        return int((counts[:, self.pack_nodes].sum(axis=0) > 0).sum())

    def value(self, ix: Index, counts: np.ndarray) -> int:
        placed = counts.sum(axis=1)
        return self.scale * int(self.weights @ placed) - self.secondary(ix, counts)

    def breakdown(self, ix: Index, counts: np.ndarray) -> dict[str, object]:
        placed = counts.sum(axis=1)
        return {
            "value": self.value(ix, counts),
            "placed_agents": int(placed.sum()),
            "placed_priority": int(ix.class_priority @ placed),
            "priority_weight": int(self.weights @ placed),
            "scale": self.scale,
            "lexicographic_priority": self.lexicographic,
            "secondary": {
                "strategy": self.strategy,
                "term": "max utilisation % (cpu, memory) of touched nodes"
                if self.strategy == "LeastAllocated" else "empty nodes opened",
                "value": self.secondary(ix, counts),
            },
        }


def encode_objective(mb: ModelBuilder, cfg: SolveConfig) -> Objective:
    ix = mb.ix
    weights, lexi = priority_weights(ix)
    touched = np.array(sorted(mb.pairs_of_node), dtype=np.int64)
    if cfg.strategy == "LeastAllocated":
        obj = Objective(cfg.strategy, weights, 101, lexi, balance_nodes=touched)
        u = mb.model.new_int_var(0, 100_000, "max_util_pct")
        obj.secondary_var = u
        for r in BALANCE_RESOURCES:
            j = ix.res_pos[r]
            for n, (classes, xs) in mb.by_node().items():
                alloc = int(ix.alloc[n, j])
                coef = ix.req[classes, j]
                if alloc <= 0:
                    continue
                terms = [int(100 * a) * x for a, x in zip(coef, xs, strict=True) if a]
                mb.model.add(100 * int(ix.used[n, j]) + sum(terms) <= alloc * u)
                mb.count_constraint("balance")
        secondary: cp_model.LinearExprT = u
    else:
        empty = touched[ix.used[touched, ix.pods_res] == 0]
        obj = Objective(cfg.strategy, weights, len(empty) + 1, lexi, pack_nodes=empty)
        nodes = mb.by_node()
        for n in empty.tolist():
            y = mb.model.new_bool_var(f"open_{n}")
            obj.open_vars[n] = y
            for x in nodes[n][1]:
                mb.model.add(x == 0).only_enforce_if(y.negated())
            mb.count_constraint("pack", len(nodes[n][1]))
        secondary = cp_model.LinearExpr.sum(list(obj.open_vars.values()))
    primary = cp_model.LinearExpr.weighted_sum(mb.placed, [int(w) for w in weights])
    mb.model.maximize(obj.scale * primary - secondary)
    return obj
