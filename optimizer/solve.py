"""One window, end to end: snapshot -> index -> pre-filter -> encode -> solve -> plan -> verify."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from ortools.sat.python import cp_model

from models import Inventory, Pod
from optimizer.baseline import counts_from_assignment, decreasing_size_order, greedy
from optimizer.candidates import neighbourhood
from optimizer.config import SolveConfig
from optimizer.counterfactual import counterfactual
from optimizer.explain import admission_reason, cluster_usage, explain_agent
from optimizer.index import Index
from optimizer.model import (
    ModelBuilder,
    break_node_symmetry,
    candidate_pairs,
    canonical_counts,
    order_open_flags,
)
from optimizer.objective import Objective, encode_objective
from optimizer.plan import Placement, Plan, PlanInvalidError, Unplaced
from optimizer.rules import RULES
from optimizer.rules.token_budget import budget_report
from optimizer.snapshot import Snapshot, build_snapshot
from optimizer.verify import accounting_violations, verify

log = logging.getLogger("agentplace.solve")
T = TypeVar("T")


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], T]) -> T:
        t = time.perf_counter()
        out = fn()
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t, 6)
        return out


def prefilter(ix: Index) -> tuple[np.ndarray, np.ndarray]:
    """(static mask, full mask), bool[cls, node]: static = every rule but resource fit, which
    the greedy re-checks against its own running totals."""
    static = np.ones((ix.num_classes, ix.num_nodes), dtype=bool)
    full = static.copy()
    for rule in RULES:
        m = rule.prefilter(ix)
        if m is None:
            continue
        full &= m
        if rule.name != "NodeResourcesFit":
            static &= m
    return static, full


def _solve_cp(mb: ModelBuilder, obj: Objective, cfg: SolveConfig, hint: np.ndarray | None,
              clock: _Clock) -> tuple[cp_model.CpSolver, int]:
    if hint is not None:
        hint = canonical_counts(mb, hint)
        for p, (c, n) in enumerate(zip(mb.pair_cls.tolist(), mb.pair_node.tolist(), strict=True)):
            mb.model.add_hint(mb.x[p], min(int(hint[c, n]), int(mb.upper[p])))
        for var, value in obj.hints:
            mb.model.add_hint(var, value(hint))
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.max_time_in_seconds = cfg.time_limit
    p.num_workers = cfg.workers
    p.random_seed = cfg.seed
    p.log_search_progress = cfg.log_search
    p.absolute_gap_limit = float(obj.gap_limit)
    for k, v in cfg.extra_parameters.items():
        setattr(p, k, v)
    status = clock.run("solve", lambda: solver.solve(mb.model))
    return solver, status


def term_bounds(mb: ModelBuilder, obj: Objective, counts: np.ndarray, cfg: SolveConfig,
                clock: _Clock) -> dict[str, dict[str, object]]:
    """Per weighted term, how good it could get on its own: minimise the term alone, with placed
    priority held at least at the plan's, hinted with the plan. The proven lower bound gives the
    term's own gap. Runs after the main solve (it adds the priority floor to the model)."""
    placed = counts.sum(axis=1)
    floor = int(obj.weights @ placed)
    mb.model.add(cp_model.LinearExpr.weighted_sum(mb.placed, [int(w) for w in obj.weights]) >= floor)
    mb.model.clear_hints()
    for p, (c, n) in enumerate(zip(mb.pair_cls.tolist(), mb.pair_node.tolist(), strict=True)):
        mb.model.add_hint(mb.x[p], int(counts[c, n]))
    for var, value in obj.hints:
        mb.model.add_hint(var, value(counts))
    terms = [t for t in obj.terms if t.coef and t.expr is not None]
    out: dict[str, dict[str, object]] = {}
    for t in terms:
        mb.model.minimize(t.expr)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.1, cfg.time_limit / max(1, len(terms)))
        solver.parameters.num_workers = cfg.workers
        solver.parameters.random_seed = cfg.seed
        status = clock.run("term_bounds", lambda solver=solver: solver.solve(mb.model))
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            out[t.name] = {"status": solver.status_name(status)}
            continue
        value, bound = t.evaluate(counts), int(np.ceil(solver.best_objective_bound - 1e-9))
        out[t.name] = {
            "status": solver.status_name(status), "alone_best": int(solver.objective_value),
            "alone_bound": bound, "gap": round((value - bound) / t.max_value, 6) if t.max_value else 0.0,
        }
    return out


def _counts_from_solver(mb: ModelBuilder, solver: cp_model.CpSolver) -> np.ndarray:
    counts = np.zeros((mb.ix.num_classes, mb.ix.num_nodes), dtype=np.int64)
    values = np.array([solver.value(x) for x in mb.x], dtype=np.int64)
    np.add.at(counts, (mb.pair_cls, mb.pair_node), values)
    return counts


def _deaggregate(ix: Index, counts: np.ndarray) -> list[tuple[str, str]]:
    """Concrete agents for class counts: members in queue order fill nodes in name order."""
    out = []
    for c, cls in enumerate(ix.classes):
        members = iter(cls.members)
        for n in np.nonzero(counts[c])[0].tolist():
            for _ in range(int(counts[c, n])):
                out.append((ix.snap.pending[next(members)].ref, ix.node_names[n]))
    return out


def _unplaced(snap: Snapshot, ix: Index, placements: list[tuple[str, str]]) -> list[Unplaced]:
    """kube's message for each agent left out, against the cluster after the plan's placements.
    Agents of one class share one explanation."""
    placed = dict(placements)
    usage = cluster_usage(snap, placed)
    by_class: dict[int, tuple[str, str | None]] = {}
    out = []
    for i, pod in enumerate(snap.pending):
        if pod.ref in placed:
            continue
        # an agent admission rejects (quota) is never created: kube's admission error, by name
        admission = admission_reason(pod, snap, placed)
        if admission:
            out.append(Unplaced(pod.ref, admission, admission_counterfactual(pod, snap, placed)))
            continue
        c = int(ix.class_of[i])
        if c not in by_class:
            e = explain_agent(pod, snap, usage, placed)
            by_class[c] = (e.message, counterfactual(pod, snap, usage)) if not e.feasible else (
                f"{len(e.feasible)}/{len(snap.nodes)} nodes could still take it, but placing "
                "it would lower the objective or the solver stopped at its time limit", None)
        out.append(Unplaced(pod.ref, *by_class[c]))
    return out


def admission_counterfactual(pod: Pod, snap: Snapshot, placed: Mapping[str, str]) -> str | None:
    """The first admission rule's own counterfactual, for rules that offer one."""
    for rule in RULES:
        hook = getattr(rule, "admission_counterfactual", None)
        if hook is not None and (text := hook(pod, snap, placed)):
            return str(text)
    return None


def _with_bounds(breakdown: dict[str, Any], bounds: dict[str, dict[str, object]]) -> dict[str, Any]:
    for name, b in bounds.items():
        breakdown["terms"][name]["bound"] = b
    return breakdown


def optimize(source: Inventory | Snapshot, cfg: SolveConfig | None = None) -> Plan:
    """Place a window of pending agents; the returned plan has passed the verifier."""
    cfg = cfg or SolveConfig()
    clock = _Clock()
    snap = source if isinstance(source, Snapshot) else clock.run(
        "snapshot", lambda: build_snapshot(source))
    ix = clock.run("index", lambda: Index(snap))
    static, full = clock.run("prefilter", lambda: prefilter(ix))
    base_nodes = clock.run("baseline", lambda: greedy(ix, static, cfg.strategy))
    base_counts = counts_from_assignment(ix, base_nodes)
    if cfg.max_candidates:
        full = clock.run("prefilter", lambda: neighbourhood(
            ix, full, static, base_counts, cfg.max_candidates, RULES))

    def build() -> tuple[ModelBuilder, Objective]:
        cls, node, upper = candidate_pairs(ix, full)
        mb = ModelBuilder(ix, cls, node, upper)
        mb.build_variables()
        for rule in RULES:
            rule.encode(mb, ix)
        obj = encode_objective(mb, cfg)
        if cfg.symmetry_breaking == "load":
            break_node_symmetry(mb)
        elif cfg.symmetry_breaking == "auto" and mb.open_flags:
            order_open_flags(mb, mb.open_flags)
        return mb, obj

    mb, obj = clock.run("build", build)
    log.info("model: %s", mb.size())
    # the hint: the best by the objective of the kube-like greedy and two packing orders
    # (big agents first, best fit / first fit): the greedy alone often strands big agents
    # the packing orders only pay when the greedy strands agents or when packing is weighted
    packing = bool((base_nodes < 0).any()) or any(t.name == "pack" and t.coef for t in obj.terms)
    heuristics = clock.run("heuristics", lambda: [base_counts] + [
        counts_from_assignment(ix, greedy(ix, static, strategy, order=decreasing_size_order(ix)))
        for strategy in (("MostAllocated", "FirstFit") if packing else ())])
    best_counts = max(heuristics, key=obj.value)
    solver, status = _solve_cp(mb, obj, cfg, best_counts if cfg.hint else None, clock)
    warnings = list(snap.warnings) + obj.warnings
    plan_status = {cp_model.OPTIMAL: "OPTIMAL", cp_model.FEASIBLE: "FEASIBLE"}.get(status)
    counts = _counts_from_solver(mb, solver) if plan_status else best_counts
    if plan_status is None:
        plan_status = "FALLBACK"
        warnings.append(f"CP-SAT returned {solver.status_name(status)}: best greedy plan returned")
    placements = _deaggregate(ix, counts)
    bound_known = True
    violations = clock.run("verify", lambda: verify(placements, snap))
    if violations and plan_status != "FALLBACK":
        log.error("solver plan failed verification: %s", violations[:5])
        warnings.append(f"solver plan failed verification ({violations[0]}): greedy plan returned")
        plan_status, counts = "FALLBACK", best_counts
        placements = _deaggregate(ix, counts)
        violations = verify(placements, snap)
    if violations:
        raise PlanInvalidError("; ".join(str(v) for v in violations[:10]))
    if plan_status != "FALLBACK" and obj.value(best_counts) > obj.value(counts):
        # a conservative encoding (see the rules' docstrings) cut off the greedy's valid plan:
        # keep the better verified plan, and claim no optimality nor bound for it
        best_placements = _deaggregate(ix, best_counts)
        if not verify(best_placements, snap):
            warnings.append("the greedy plan is better than the solver's: a conservative rule "
                            "encoding excluded it; greedy plan returned, no optimality claimed")
            plan_status, counts, placements = "FEASIBLE", best_counts, best_placements
            bound_known = False
    bounds = (term_bounds(mb, obj, counts, cfg, clock)
              if cfg.term_bounds and plan_status != "FALLBACK" else {})
    unplaced = clock.run("explain", lambda: _unplaced(snap, ix, placements))
    objective = obj.value(counts)
    bound = int(solver.best_objective_bound) if plan_status != "FALLBACK" and bound_known else None
    plan = Plan(
        status=plan_status,
        placements=[Placement(a, n) for a, n in placements],
        unplaced=unplaced,
        objective=objective,
        bound=bound,
        gap=None if bound is None else round((bound - objective) / max(1, abs(objective)), 9),
        verified=True,
        objective_terms=_with_bounds(obj.breakdown(ix, counts), bounds),
        baseline={"name": f"greedy-{cfg.strategy}", **obj.breakdown(ix, base_counts)},
        timings=clock.timings,
        model={**mb.size(), "solver_status": solver.status_name(status),
               "time_limit": cfg.time_limit, "workers": cfg.workers,
               **({"max_candidates": cfg.max_candidates} if cfg.max_candidates else {})},
        warnings=warnings,
        budgets=budget_report(dict(placements), snap),
    )
    # the unplaced list must cover exactly the agents not placed: nothing accepted is lost
    final = accounting_violations(placements, snap, [u.agent for u in unplaced])
    if final:
        raise PlanInvalidError("; ".join(str(v) for v in final[:10]))
    return plan
