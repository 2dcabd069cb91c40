"""The weighted objective: placed priority first, then normalised, weighted terms.

    maximise  P * sum_c w[c] * placed[c]  -  sum_k coef[k] * raw[k]

Each term k has an integer raw value in [0, max[k]] over the window (to be minimised) and a
weight from the profile; coef[k] = round(weight[k] * SCALE / max[k]), so a term's full swing
is worth weight * SCALE objective units and the weights trade terms against each other
whatever their units. Per-pair terms with a range above MODEL_RANGE (cost in micro-currency)
are counted in coarser units (`unit` in the report, a power of ten) so that every coefficient
keeps at least ~1 % precision (SCALE / MODEL_RANGE = 100).
P = 1 + gap + sum_k coef[k] * max[k]: no combination of terms, nor the solver's stopping gap
(gap = term_gap * SCALE, 2 % of a weight-1.0 term's swing by default), outweighs one unit of
priority weight, so placed priority always dominates and is exact (never traded for balance
or cost). Priority weights w are lexicographic while the whole objective fits in 2^62: w for
a priority level is 1 + the total weight of every agent below it, so one higher-priority agent
outweighs any number of lower ones (kube's queue order); beyond that they fall back to dense
ranks and a warning says so. All coefficients are integers: CP-SAT stays exact.

Terms (raw value, what it measures):
  balance     weighted sum over the chosen resources (default cpu and memory, weight 1 each)
              of the highest utilisation % among touched nodes
  pack        empty nodes the window opens (kube's MostAllocated spirit)
  cost        micro-currency per hour to serve the placed agents' token demand (pricing.py)
  soft        unmet preferred node affinity weight + 100 per untolerated PreferNoSchedule taint
              + preferred inter-pod (anti-)affinity weight (pairs sharing a domain) + 100 per
              agent of ScheduleAnyway excess skew; exact, unit 1 (optimizer/preferences.py)
  preemption  1 per eviction + minutes of lost work (+ PDB excess, best-effort mode); the
              evicted priority itself sits in the priority ladder (optimizer/preemption.py)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from optimizer.config import TERMS, SolveConfig, resolve_weights
from optimizer.index import Index
from optimizer.model import ModelBuilder
from optimizer.preemption import pdb_excess
from optimizer.preferences import SPREAD_PENALTY, TAINT_PENALTY, SoftTerm
from optimizer.pricing import MICRO, Pricing, pricing_for

SCALE = 10**8  # a term's full swing with weight 1.0, in objective units
MODEL_RANGE = 10**6  # linear terms are quantised to at most this many model units
INT_LIMIT = 2**62
Counts = np.ndarray  # int64[cls, node]


def priority_weights(ix: Index, limit: int, victim_priority: np.ndarray | None = None
                     ) -> tuple[np.ndarray, bool, np.ndarray]:
    """(int64[cls] weights, lexicographic?, int64[victim] weights) with the whole ladder
    < limit. A victim weighs what an agent of its priority does: evicting it loses that much."""
    vp = np.zeros(0, dtype=np.int64) if victim_priority is None else victim_priority
    levels = np.unique(np.concatenate([ix.class_priority, vp]))
    count = {int(p): int(ix.class_size[ix.class_priority == p].sum()) + int((vp == p).sum())
             for p in levels}
    weight: dict[int, int] = {}
    below = 0
    for p in levels.tolist():
        weight[p] = below + 1
        below += weight[p] * count[p]
    if below < limit:
        return (np.array([weight[int(p)] for p in ix.class_priority], dtype=np.int64), True,
                np.array([weight[int(p)] for p in vp], dtype=np.int64))
    rank = {int(p): i + 1 for i, p in enumerate(levels.tolist())}
    return (np.array([rank[int(p)] for p in ix.class_priority], dtype=np.int64), False,
            np.array([rank[int(p)] for p in vp], dtype=np.int64))


@dataclass
class Term:
    name: str
    description: str
    weight: float
    max_value: int
    evaluate: Callable[[Counts], int]
    expr: cp_model.LinearExprT | None = None
    coef: int = 0
    detail: Callable[[Counts], dict[str, Any]] | None = None
    unit: int = 1  # raw units per model unit
    of_evicted: Callable[[np.ndarray], int] | None = None  # the part evictions contribute

    def total(self, counts: Counts, evicted: np.ndarray | None = None) -> int:
        value = self.evaluate(counts)
        if self.of_evicted is not None and evicted is not None:
            value += self.of_evicted(evicted)
        return value

    def report(self, counts: Counts, evicted: np.ndarray | None = None) -> dict[str, Any]:
        value = self.total(counts, evicted)
        out: dict[str, Any] = {
            "name": self.name, "description": self.description, "value": value,
            "max": self.max_value, "unit": self.unit,
            "normalised": round(value / self.max_value, 6) if self.max_value else 0.0,
            "weight": self.weight, "coefficient": self.coef, "contribution": -self.coef * value,
        }
        if self.detail is not None:
            out["detail"] = self.detail(counts)
        return out


@dataclass
class Objective:
    profile: str
    weights: np.ndarray  # [cls] priority weights
    scale: int  # P
    lexicographic: bool
    terms: list[Term]
    hints: list[tuple[cp_model.IntVar, Callable[[Counts], int]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    gap_limit: int = 0  # absolute, in objective units
    victim_weights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def value(self, counts: Counts, evicted: np.ndarray | None = None) -> int:
        placed = counts.sum(axis=1)
        kept = 0 if evicted is None else int(self.victim_weights @ evicted.astype(np.int64))
        return self.scale * (int(self.weights @ placed) - kept) - sum(
            t.coef * t.total(counts, evicted) for t in self.terms)

    def breakdown(self, ix: Index, counts: Counts, evicted: np.ndarray | None = None
                  ) -> dict[str, Any]:
        placed = counts.sum(axis=1)
        gone = np.zeros(0, dtype=bool) if evicted is None else evicted
        victims = ix.victims
        return {
            "value": self.value(counts, evicted),
            "profile": self.profile,
            "placed_agents": int(placed.sum()),
            "placed_priority": int(ix.class_priority @ placed),
            "priority_weight": int(self.weights @ placed),
            "priority_scale": self.scale,
            "lexicographic_priority": self.lexicographic,
            "evictions": int(gone.sum()),
            # the ladder's net: placed priority weight less the evicted victims' weight
            "net_priority_weight": int(self.weights @ placed) - (
                int(self.victim_weights @ gone.astype(np.int64)) if gone.size else 0),
            "evicted_priority": int(victims.priority[gone].sum()) if victims and gone.size else 0,
            "terms": {t.name: t.report(counts, evicted) for t in self.terms},
        }


def _pair_values(mb: ModelBuilder, per_pair: np.ndarray) -> Callable[[Counts], int]:
    def evaluate(counts: Counts) -> int:
        return int(per_pair @ counts[mb.pair_cls, mb.pair_node])
    return evaluate


def _per_class_max(mb: ModelBuilder, per_pair: np.ndarray) -> int:
    """Sum over classes of size * the class's worst pair: the term's range over the window."""
    worst = np.zeros(mb.ix.num_classes, dtype=np.int64)
    np.maximum.at(worst, mb.pair_cls, per_pair)
    return int(worst @ mb.ix.class_size)


def _balance(mb: ModelBuilder, weight: float, hints: list[Any], resources: dict[str, int]) -> Term:
    """Like NodeResourcesFit's scoring `resources`: which resources count, with integer weights
    (a resource no node or agent names is skipped)."""
    ix = mb.ix
    touched = np.array(sorted(mb.pairs_of_node), dtype=np.int64)
    chosen = [(ix.res_pos[r], w) for r, w in resources.items() if r in ix.res_pos and w > 0]
    cols = [j for j, _ in chosen]
    rw = dict(chosen)

    def util(counts: Counts, j: int) -> int:
        if touched.size == 0:
            return 0
        load = 100 * (ix.used[touched, j] + ix.req[:, j] @ counts[:, touched])
        alloc = ix.alloc[touched, j]
        ok = alloc > 0
        return int((-(-load[ok] // alloc[ok])).max()) if ok.any() else 0

    names = ", ".join(f"{ix.resources[j]} x{w}" for j, w in chosen)
    term = Term("balance", f"highest utilisation % among touched nodes, weighted sum over {names}",
                weight, 100 * sum(rw.values()), lambda counts: sum(rw[j] * util(counts, j) for j in cols))
    if weight > 0:
        us = []
        for j in cols:
            u = mb.model.new_int_var(0, 100_000, f"util_{ix.resources[j]}")
            us.append(u)
            hints.append((u, lambda counts, j=j: util(counts, j)))
            for n, (classes, xs) in mb.by_node().items():
                alloc = int(ix.alloc[n, j])
                if alloc <= 0:
                    continue
                coef = ix.req[classes, j]
                asks = coef != 0
                load = cp_model.LinearExpr.weighted_sum(
                    [x for x, a in zip(xs, asks, strict=True) if a], (100 * coef[asks]).tolist())
                mb.model.add(100 * int(ix.used[n, j]) + load <= alloc * u)
                mb.count_constraint("balance")
        term.expr = cp_model.LinearExpr.weighted_sum(us, [rw[j] for j in cols])
    return term


def _pack(mb: ModelBuilder, weight: float, hints: list[Any]) -> Term:
    ix = mb.ix
    touched = np.array(sorted(mb.pairs_of_node), dtype=np.int64)
    empty = touched[ix.used[touched, ix.pods_res] == 0]
    term = Term("pack", "empty nodes the window opens", weight, len(empty),
                lambda counts: int((counts[:, empty].sum(axis=0) > 0).sum()))
    if weight > 0 and empty.size:
        nodes = mb.by_node()
        ys = []
        for n in empty.tolist():
            y = mb.model.new_bool_var(f"open_{n}")
            ys.append(y)
            mb.open_flags[n] = y
            hints.append((y, lambda counts, n=n: int(counts[:, n].sum() > 0)))
            classes, xs = nodes[n]
            # capacity linked to the open flag: a closed node holds nothing (the pod slot is
            # requested by every agent), and the LP relaxation sees the capacity it opens
            for r in range(len(ix.resources)):
                coef = ix.req[classes, r]
                if coef.any() and ix.alloc[n, r] > 0:
                    mb.model.add(cp_model.LinearExpr.weighted_sum(xs, coef.tolist())
                                 <= int(ix.alloc[n, r]) * y)
                    mb.count_constraint("pack")
        term.expr = cp_model.LinearExpr.sum(ys)
        _capacity_cut(mb, empty, ys)
    return term


def _capacity_cut(mb: ModelBuilder, empty: np.ndarray, ys: list[cp_model.IntVar]) -> None:
    """Per resource: what the window places fits in the free capacity of the used nodes plus
    the allocatable of the nodes it opens. Implied by the linking rows, but stated once it
    gives CP-SAT the bin-packing L1 bound directly."""
    ix = mb.ix
    touched = np.array(sorted(mb.pairs_of_node), dtype=np.int64)
    used_nodes = np.setdiff1d(touched, empty)
    for r in range(len(ix.resources)):
        if r == ix.pods_res or not ix.req[:, r].any():
            continue
        spare = int(np.maximum(ix.free[used_nodes, r], 0).sum())
        demand = cp_model.LinearExpr.weighted_sum(mb.placed, ix.req[:, r].tolist())
        opened = cp_model.LinearExpr.weighted_sum(ys, ix.alloc[empty, r].tolist())
        mb.model.add(demand <= spare + opened)
        mb.count_constraint("pack")


def _linear_term(mb: ModelBuilder, name: str, description: str, weight: float,
                 per_pair: np.ndarray,
                 detail: Callable[[Counts], dict[str, Any]] | None = None) -> Term:
    unit = 1
    while _per_class_max(mb, per_pair) // unit > MODEL_RANGE:
        unit *= 10
    per_pair = (per_pair + unit // 2) // unit  # rounded to model units
    term = Term(name, description, weight, _per_class_max(mb, per_pair),
                _pair_values(mb, per_pair), detail=detail, unit=unit)
    if weight > 0 and per_pair.any():
        nz = np.nonzero(per_pair)[0]
        term.expr = cp_model.LinearExpr.weighted_sum([mb.x[p] for p in nz.tolist()],
                                                     per_pair[nz].tolist())
    return term


def _cost(mb: ModelBuilder, weight: float, pricing: Pricing) -> Term:
    spend = pricing.spend(mb.ix, mb.pair_cls, mb.pair_node)
    currency = pricing.table.spec.currency if pricing.table else "USD"
    demand_pair = pricing.demand[mb.pair_cls]

    def detail(counts: Counts) -> dict[str, Any]:
        at = counts[mb.pair_cls, mb.pair_node]
        total = float(spend @ at) / MICRO
        tokens = int(demand_pair @ at)
        return {
            "pricing_table": pricing.table.name if pricing.table else None,
            "currency": currency, "spend_per_hour": round(total, 6),
            "tokens_per_hour": tokens,
            "cost_per_million_tokens": round(total / tokens * 1e6, 6) if tokens else None,
            "note": "prices and throughputs are the pricing table's assumptions",
        }

    return _linear_term(mb, "cost", f"micro-{currency} per hour to serve placed agents' tokens",
                        weight, spend, detail)


def _soft(mb: ModelBuilder, weight: float, hints: list[Any]) -> Term:
    """Every scored preference as one penalty (optimizer/preferences.py): node affinity,
    PreferNoSchedule, inter-pod (anti-)affinity, ScheduleAnyway spread."""
    soft = SoftTerm(mb)
    term = Term("soft", "unmet preferred node affinity weight + "
                f"{TAINT_PENALTY} per untolerated PreferNoSchedule taint + preferred pod "
                f"(anti-)affinity weight + {SPREAD_PENALTY} per agent of ScheduleAnyway excess skew"
                " (+ rules' own: GpuShare 100 per GPU a placement strands)",
                weight, soft.max_value(), soft.evaluate, detail=soft.parts)
    if weight > 0 and term.max_value > 0:
        term.expr = soft.encode(hints)
    return term


def _preemption(mb: ModelBuilder, weight: float) -> Term:
    """Damage among plans placing the same agents: 1 per eviction + minutes of lost work, and
    in best-effort PDB mode each eviction beyond a budget costs more than all of those."""
    victims, ev = mb.ix.victims, mb.evictions
    if victims is None or ev is None or not len(victims):
        term = Term("preemption", "evictions + minutes of lost work (no victims this window)",
                    weight, 0, lambda counts: 0)
        return _with_damage(mb, term)
    damage = victims.damage
    big = int(damage.sum()) + 1
    members = sum(int(m.size) for m in victims.pdb_members)
    excess_max = members if victims.pdb_mode == "best-effort" else 0

    def of_evicted(evicted: np.ndarray) -> int:
        value = int(damage @ evicted.astype(np.int64))
        if excess_max:
            value += big * pdb_excess(victims, evicted)
        return value

    term = Term("preemption", "evictions + minutes of lost work since the victim's checkpoint"
                + (f"; {big} per eviction beyond a PDB's budget" if excess_max else ""),
                weight, int(damage.sum()) + big * excess_max, lambda counts: 0,
                of_evicted=of_evicted)
    if weight > 0:
        term.expr = (cp_model.LinearExpr.weighted_sum(ev.evict, damage.tolist())
                     + big * cp_model.LinearExpr.sum(ev.excess))
    return _with_damage(mb, term)


def _with_damage(mb: ModelBuilder, term: Term) -> Term:
    """Add the extensions' disruption (mb.damage, e.g. replan's moves) to the term."""
    if not mb.damage:
        return term
    base, parts = term.evaluate, list(mb.damage)
    term.evaluate = lambda counts: base(counts) + sum(int(f(counts)) for _, f, _ in parts)
    term.max_value += sum(int(m) for _, _, m in parts)
    term.description += "; + moves of running agents: 1 per move + minutes of lost work"
    if term.weight > 0:
        extra = sum(e for e, _, _ in parts)
        term.expr = extra if term.expr is None else term.expr + extra
    return term


def encode_objective(mb: ModelBuilder, cfg: SolveConfig) -> Objective:
    ix = mb.ix
    profile, weights = resolve_weights(cfg)
    hints: list[tuple[cp_model.IntVar, Callable[[Counts], int]]] = []
    pricing = pricing_for(ix)
    terms = [
        _balance(mb, weights["balance"], hints, cfg.balance_resources),
        _pack(mb, weights["pack"], hints),
        _cost(mb, weights["cost"], pricing),
        _soft(mb, weights["soft"], hints),
        _preemption(mb, weights["preemption"]),
    ]
    assert [t.name for t in terms] == list(TERMS)
    for t in terms:
        if t.expr is not None and t.max_value > 0:
            t.coef = max(1, round(t.weight * SCALE / t.max_value))
    penalty_range = sum(t.coef * t.max_value for t in terms)
    # the solver may stop `gap` short of the proven optimum of the terms; P exceeds
    # penalty_range + gap, so that slack can never cost one unit of priority weight
    gap = min(int(cfg.term_gap * SCALE), penalty_range)
    pack = terms[1]
    if pack.coef:  # OPTIMAL must never hide an extra node
        gap = min(gap, pack.coef - 1)
    scale = penalty_range + gap + 1
    victims = ix.victims if mb.evictions is not None else None
    w, lexi, vw = priority_weights(ix, (INT_LIMIT - penalty_range) // scale,
                                   victims.priority if victims is not None else None)
    obj = Objective(profile, w, scale, lexi, terms, hints, list(pricing.warnings), gap, vw)
    if not lexi:
        obj.warnings.append("too many priority levels for exact lexicographic weights: "
                            "priorities weighted by rank")
    primary = cp_model.LinearExpr.weighted_sum(mb.placed, [int(x) for x in w])
    if mb.evictions is not None and mb.evictions.evict:
        primary -= cp_model.LinearExpr.weighted_sum(mb.evictions.evict, [int(x) for x in vw])
    penalties = [t.coef * t.expr for t in terms if t.coef and t.expr is not None]
    mb.model.maximize(scale * primary - sum(penalties))
    return obj
