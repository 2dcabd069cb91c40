"""The CP-SAT model over candidate pairs: x[c, n] = how many agents of class c go to node n.

Variables exist only for (class, node) pairs that pass every pre-filter, so the model grows
with candidate pairs, not with agents x nodes. Identical agents are one integer variable per
node, which removes their permutation symmetry outright.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model

from optimizer.index import Index


@dataclass
class ModelBuilder:
    ix: Index
    pair_cls: np.ndarray  # int64[pair]
    pair_node: np.ndarray  # int64[pair]
    upper: np.ndarray  # int64[pair]: most agents of the class the node could take alone
    model: cp_model.CpModel = field(default_factory=cp_model.CpModel)
    x: list[cp_model.IntVar] = field(default_factory=list)
    placed: list[cp_model.LinearExprT] = field(default_factory=list)  # per class
    constraints: Counter[str] = field(default_factory=Counter)
    _pairs_of_node: dict[int, np.ndarray] | None = None

    def build_variables(self) -> None:
        self.x = [
            self.model.new_int_var(0, int(u), f"x_{c}_{n}")
            for c, n, u in zip(self.pair_cls.tolist(), self.pair_node.tolist(),
                               self.upper.tolist(), strict=True)
        ]
        by_cls: dict[int, list[int]] = {}
        for p, c in enumerate(self.pair_cls.tolist()):
            by_cls.setdefault(c, []).append(p)
        self.placed = []
        for c in range(self.ix.num_classes):
            ps = by_cls.get(c, [])
            expr = cp_model.LinearExpr.sum([self.x[p] for p in ps]) if ps else 0
            self.placed.append(expr)
            if len(ps) > 1 and sum(int(self.upper[p]) for p in ps) > self.ix.class_size[c]:
                self.model.add(expr <= int(self.ix.class_size[c]))
                self.count_constraint("class size")

    @property
    def pairs_of_node(self) -> dict[int, np.ndarray]:
        if self._pairs_of_node is None and self.pair_node.size == 0:
            self._pairs_of_node = {}
        if self._pairs_of_node is None:
            order = np.argsort(self.pair_node, kind="stable")
            nodes, starts = np.unique(self.pair_node[order], return_index=True)
            groups = np.split(order, starts[1:])
            self._pairs_of_node = {int(n): g for n, g in zip(nodes, groups, strict=True)}
        return self._pairs_of_node

    def by_node(self) -> dict[int, tuple[np.ndarray, list[cp_model.IntVar]]]:
        """node -> (classes, x vars) of its candidate pairs."""
        return {n: (self.pair_cls[ps], [self.x[p] for p in ps.tolist()])
                for n, ps in self.pairs_of_node.items()}

    def count_constraint(self, family: str, n: int = 1) -> None:
        self.constraints[family] += n

    def size(self) -> dict[str, object]:
        proto = self.model.proto
        return {
            "agents": int(self.ix.class_size.sum()),
            "agent_classes": self.ix.num_classes,
            "nodes": self.ix.num_nodes,
            "candidate_pairs": len(self.x),
            "variables": len(proto.variables),
            "constraints": len(proto.constraints),
            "constraints_by_family": dict(self.constraints),
        }


def candidate_pairs(ix: Index, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs that survive every pre-filter, with each pair's capacity-derived upper bound."""
    cls, node = np.nonzero(mask)
    req = ix.req[cls]  # [pair, res]
    free = np.maximum(ix.free[node], 0)  # [pair, res]
    with np.errstate(divide="ignore"):
        per_res = np.where(req > 0, free // np.maximum(req, 1), np.iinfo(np.int64).max)
    upper = np.minimum(per_res.min(axis=1), ix.class_size[cls])
    keep = upper > 0
    return cls[keep].astype(np.int64), node[keep].astype(np.int64), upper[keep].astype(np.int64)
