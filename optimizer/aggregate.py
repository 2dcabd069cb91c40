"""Node-class aggregation: place counts of an agent class onto a class of identical nodes.

Nodes that every rule and every objective term treat alike (same allocatable, same usage, same
pre-filter verdict for every agent class, same per-pair cost and soft penalty) form a node
class k of m_k nodes. The model then has, per candidate (agent class c, node class k):

    y[c, k]  agents of c placed on the class,       0 <= y <= min(size_c, m_k * upper)
    q[c, k]  the most agents of c on any one node,  0 <= q <= upper,   y <= m_k * q
    sum_c req[c, r] * q[c, k] <= free[k, r]         per resource (every node holds q)

De-aggregation is exact and linear: each class's y[c, k] goes round-robin over the class's
nodes (continuing where the previous agent class stopped), so every node gets floor or ceil of
y / m_k <= q agents of c and the capacity rows above hold on every node. The model is a
restriction of the per-node model (a node class cannot mix patterns: two big agents on one
node, four small ones on the next), so its bound is no bound of the full problem: the plan is
reported FEASIBLE with no bound, and the per-node greedy plan wins whenever it scores higher.

Used for node-local windows only (`fastgreedy.is_local`: no topology spread, pod affinity,
gangs, quotas or budgets) and when packing has no weight (even spreading is what the balance
term wants; packing wants nodes filled one by one). Model size: agent classes x node classes,
independent of the number of nodes: kube-perf's SchedulingBasic at 5,000 nodes has 2 node
classes. References: Firmament's equivalence classes (Gog et al., OSDI 2016), DCM's symmetry
breaking (Suresh et al., OSDI 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from ortools.sat.python import cp_model

from optimizer.config import SolveConfig, resolve_weights
from optimizer.fastgreedy import is_local
from optimizer.index import Index
from optimizer.model import ModelBuilder, candidate_pairs, cp_solver
from optimizer.objective import TAINT_PENALTY, Objective, encode_objective
from optimizer.preferences import soft_tables
from optimizer.pricing import pricing_for
from optimizer.rules.node_affinity import preferred_scores
from optimizer.rules.taints import prefer_no_schedule_counts

T = TypeVar("T")
Clock = Callable[[str, Callable[[], T]], T]


def applicable(ix: Index, cfg: SolveConfig, all_placed: bool = False) -> str | None:
    """Why aggregation cannot be used for this window, or None when it can. `all_placed`: the
    greedy placed every agent without evicting, so an eviction could only cost (victims sit in
    the dominant priority ladder) and the aggregate may ignore the victims."""
    if not is_local(ix):
        return "a rule whose verdict depends on other placements is in play"
    if ix.victims is not None and len(ix.victims) and not all_placed:
        return "running pods may be preempted (evictions are decided per node)"
    if cfg.extensions:
        return "an extension (e.g. replan's move budgets) adds per-node constraints"
    soft = soft_tables(ix)
    if soft.pairs or soft.spread or soft.run_aff.any() or soft.run_anti.any():
        return "preferred pod (anti-)affinity or ScheduleAnyway spread is scored per placement"
    if resolve_weights(cfg)[1].get("pack", 0.0) > 0:
        return "the pack term is weighted (aggregation spreads agents evenly)"
    return None


def node_classes(ix: Index, mask: np.ndarray, columns: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """(int64[node] node class, -1 for nodes no agent class may use; number of classes).
    `columns`: further int64[cls, node] tables nodes of one class must share."""
    usable = mask.any(axis=0)
    parts = [ix.alloc, ix.used, mask.T.astype(np.int64), *(c.T for c in columns)]
    rows = np.concatenate(parts, axis=1)[usable]  # [usable node, feature]
    if rows.shape[0] == 0:
        return np.full(ix.num_nodes, -1, dtype=np.int64), 0
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    out = np.full(ix.num_nodes, -1, dtype=np.int64)
    out[usable] = inverse.reshape(-1)
    return out, int(inverse.max()) + 1


def _pair_table(mb: ModelBuilder, obj: Objective, name: str) -> np.ndarray:
    """int64[cls, node] per-pair value of a linear term (cost, soft) in the term's model units,
    computed as objective.py does and checked against the term's own evaluate."""
    ix = mb.ix
    out = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    term = next(t for t in obj.terms if t.name == name)
    if not term.coef:
        return out
    cls, node = mb.pair_cls, mb.pair_node
    if name == "cost":
        raw = pricing_for(ix).spend(ix, cls, node)
    else:
        pref, max_pref = preferred_scores(ix)
        raw = (max_pref[cls] - pref[cls, node]
               + TAINT_PENALTY * prefer_no_schedule_counts(ix)[cls, node]).astype(np.int64)
    out[cls, node] = (raw + term.unit // 2) // term.unit
    probe = np.zeros_like(out)
    probe[cls, node] = 1 + (np.arange(cls.size) % 3)
    if int((out * probe).sum()) != term.evaluate(probe):
        raise AssertionError(f"aggregation: the {name} term's per-pair values drifted from objective.py")
    return out


@dataclass
class Aggregated:
    """What optimize() needs from the aggregated solve."""

    mb: ModelBuilder  # the per-node evaluation model (objective only, no rule rows)
    obj: Objective  # the full objective: plans are scored by it, never by the aggregate's
    solver: cp_model.CpSolver
    status: int
    counts: np.ndarray | None  # int64[cls, node], de-aggregated; None when no solution
    size: dict[str, Any] = field(default_factory=dict)


def solve(ix: Index, full: np.ndarray, hint: np.ndarray, cfg: SolveConfig,
          run: Clock[Any]) -> Aggregated:
    """Build and solve the aggregated model; de-aggregate its solution."""
    def evaluator() -> tuple[ModelBuilder, Objective]:
        cls, node, upper = candidate_pairs(ix, full)
        mb = ModelBuilder(ix, cls, node, upper)
        mb.build_variables()
        return mb, encode_objective(mb, cfg)

    mb, obj = run("evaluator", evaluator)
    model, agg, size = run("build", lambda: _build(mb, obj, hint, cfg))
    solver = cp_solver(cfg, obj.gap_limit)
    status = run("solve", lambda: solver.solve(model))
    counts = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        counts = run("deaggregate", lambda: deaggregate(ix, agg, {
            key: solver.value(v) for key, v in agg.y.items()}))
    size |= {"aggregate_status": solver.status_name(status),
             "aggregate_objective": int(solver.objective_value) if counts is not None else None,
             "aggregate_bound": int(solver.best_objective_bound) if counts is not None else None}
    return Aggregated(mb, obj, solver, status, counts, size)


@dataclass
class _AggModel:
    node_class: np.ndarray  # int64[node]
    members: list[np.ndarray]  # per node class, its nodes in index order
    y: dict[tuple[int, int], cp_model.IntVar]
    q: dict[tuple[int, int], cp_model.IntVar]


def _build(mb: ModelBuilder, obj: Objective, hint: np.ndarray, cfg: SolveConfig
           ) -> tuple[cp_model.CpModel, _AggModel, dict[str, Any]]:
    ix = mb.ix
    # the candidate mask as the evaluation model sees it (pairs with a positive bound)
    mask = np.zeros((ix.num_classes, ix.num_nodes), dtype=bool)
    mask[mb.pair_cls, mb.pair_node] = True
    cost, soft = _pair_table(mb, obj, "cost"), _pair_table(mb, obj, "soft")
    node_class, k_count = node_classes(ix, mask, [cost, soft])
    members = [np.nonzero(node_class == k)[0] for k in range(k_count)]
    reps = np.array([m[0] for m in members], dtype=np.int64)
    free = ix.free
    model = cp_model.CpModel()
    y: dict[tuple[int, int], cp_model.IntVar] = {}
    q: dict[tuple[int, int], cp_model.IntVar] = {}
    h_y, h_q = _hint(ix, hint, node_class, k_count)
    for k, n in enumerate(reps.tolist()):
        m = len(members[k])
        for c in np.nonzero(mask[:, n])[0].tolist():
            per = np.where(ix.req[c] > 0, np.maximum(free[n], 0) // np.maximum(ix.req[c], 1),
                           np.iinfo(np.int64).max).min()
            upper = int(min(per, ix.class_size[c]))
            if upper <= 0:
                continue
            y[c, k] = model.new_int_var(0, min(int(ix.class_size[c]), m * upper), f"y_{c}_{k}")
            q[c, k] = model.new_int_var(0, upper, f"q_{c}_{k}")
            model.add(y[c, k] <= m * q[c, k])
            model.add_hint(y[c, k], int(min(h_y[c, k], m * upper)))
            model.add_hint(q[c, k], int(min(h_q[c, k], upper)))
    placed = []
    for c in range(ix.num_classes):
        ys = [v for (cc, _), v in y.items() if cc == c]
        placed.append(cp_model.LinearExpr.sum(ys) if ys else 0)
        if ys:
            model.add(cp_model.LinearExpr.sum(ys) <= int(ix.class_size[c]))
    by_k: dict[int, list[int]] = {}
    for c, k in q:
        by_k.setdefault(k, []).append(c)
    for k, classes in by_k.items():
        n = int(reps[k])
        for r in range(len(ix.resources)):
            coef = ix.req[classes, r]
            if coef.any():
                model.add(cp_model.LinearExpr.weighted_sum([q[c, k] for c in classes], coef.tolist())
                          <= int(free[n, r]))
    penalties: list[Any] = []
    for t in obj.terms:
        if not t.coef:
            continue
        if t.name == "balance":
            penalties.append(t.coef * _balance(model, ix, q, by_k, reps, cfg))
        elif t.name in ("cost", "soft"):
            table = cost if t.name == "cost" else soft
            keys = [key for key in y if table[key[0], reps[key[1]]]]
            if keys:
                penalties.append(t.coef * cp_model.LinearExpr.weighted_sum(
                    [y[key] for key in keys], [int(table[key[0], reps[key[1]]]) for key in keys]))
        else:
            raise ValueError(f"aggregation cannot encode the {t.name} term")
    primary = cp_model.LinearExpr.weighted_sum(placed, [int(w) for w in obj.weights])
    model.maximize(obj.scale * primary - sum(penalties))
    size = {"aggregation": True, "node_classes": k_count, "aggregate_pairs": len(y),
            "aggregate_variables": len(model.proto.variables),
            "aggregate_constraints": len(model.proto.constraints)}
    return model, _AggModel(node_class, members, y, q), size


def _hint(ix: Index, counts: np.ndarray, node_class: np.ndarray, k_count: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """(y, q) of a per-node plan: class totals and the fullest node, per node class."""
    h_y = np.zeros((ix.num_classes, max(1, k_count)), dtype=np.int64)
    h_q = np.zeros_like(h_y)
    on = node_class >= 0
    for c in range(ix.num_classes):
        np.add.at(h_y[c], node_class[on], counts[c, on])
        np.maximum.at(h_q[c], node_class[on], counts[c, on])
    return h_y, h_q


def _balance(model: cp_model.CpModel, ix: Index, q: dict[tuple[int, int], cp_model.IntVar],
             by_k: dict[int, list[int]], reps: np.ndarray, cfg: SolveConfig) -> cp_model.LinearExprT:
    """objective.py's balance raw value over node classes: the fullest node of a class holds
    q[c, k] of every agent class c (an upper bound on the de-aggregated load)."""
    chosen = [(ix.res_pos[r], w) for r, w in cfg.balance_resources.items()
              if r in ix.res_pos and w > 0]
    us, ws = [], []
    for j, w in chosen:
        u = model.new_int_var(0, 100_000, f"util_{ix.resources[j]}")
        us.append(u)
        ws.append(w)
        for k in range(len(reps)):
            n = int(reps[k])
            alloc = int(ix.alloc[n, j])
            if alloc <= 0:
                continue
            classes = by_k.get(k, [])
            coef = [int(100 * ix.req[c, j]) for c in classes]
            model.add(100 * int(ix.used[n, j])
                      + cp_model.LinearExpr.weighted_sum([q[c, k] for c in classes], coef)
                      <= alloc * u)
    return cp_model.LinearExpr.weighted_sum(us, ws)


def deaggregate(ix: Index, agg: _AggModel, y: dict[tuple[int, int], int]) -> np.ndarray:
    """int64[cls, node]: each y[c, k] round-robin over node class k's nodes, every agent class
    starting where the previous one stopped; each node gets floor or ceil of y / m_k."""
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    start = [0] * len(agg.members)
    for (c, k), v in sorted(y.items()):
        if v <= 0:
            continue
        nodes = agg.members[k]
        m = len(nodes)
        base, extra = divmod(int(v), m)
        counts[c, nodes] = base
        if extra:
            idx = (start[k] + np.arange(extra)) % m
            counts[c, nodes[idx]] += 1
            start[k] = (start[k] + extra) % m
    return counts
