"""One window, end to end: snapshot -> index -> pre-filter -> encode -> solve -> plan -> verify."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from ortools.sat.python import cp_model

from models import Inventory, Pod
from models.gcpause import paused_gc
from optimizer import aggregate, decompose, interchangeable, scoping
from optimizer import preemption as pre
from optimizer.baseline import counts_from_assignment, decreasing_size_order, greedy_plan
from optimizer.config import SolveConfig
from optimizer.counterfactual import counterfactual
from optimizer.explain import admission_reason, cluster_usage, explain_agent
from optimizer.hints import add_hints, complete_hint
from optimizer.index import Index
from optimizer.model import (
    ModelBuilder,
    break_node_symmetry,
    candidate_pairs,
    canonical_counts,
    cp_solver,
    order_open_flags,
)
from optimizer.nodetables import NodeTables
from optimizer.objective import Objective, encode_objective
from optimizer.plan import Eviction, Placement, Plan, PlanInvalidError, Unplaced
from optimizer.rules import RULES
from optimizer.rules.token_budget import budget_report
from optimizer.snapshot import Snapshot, build_snapshot, without_running
from optimizer.verify import accounting_violations, verify

log = logging.getLogger("agentplace.solve")
T = TypeVar("T")
Solution = tuple[np.ndarray, np.ndarray]  # (int64[cls, node] counts, bool[victim] evicted)
LIGHT_PRESOLVE = {"cp_model_probing_level": 0, "max_presolve_iterations": 1, "symmetry_level": 0}
HINT_SHARE = 0.05  # of the time limit, at most, to complete a partial hint (hints.py)


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


def _solve_cp(mb: ModelBuilder, obj: Objective, cfg: SolveConfig, solution: Solution | None,
              clock: _Clock, orbits_cut: bool = False) -> tuple[cp_model.CpSolver, int]:
    if solution is not None:
        hint = canonical_counts(mb, solution[0])
        add_hints(mb.model, mb.x, np.minimum(hint[mb.pair_cls, mb.pair_node], mb.upper).tolist())
        for var, value in obj.hints:
            mb.model.add_hint(var, value(hint))
        _hint_evictions(mb, solution[1])
        for var, value in mb.aux_hints:
            mb.model.add_hint(var, value(hint))
        # the quick phase has no presolve to complete a partial hint: complete it here (hints.py)
        clock.run("hint", lambda: complete_hint(mb.model, HINT_SHARE * cfg.time_limit, cfg.seed))
    share = cfg.quick_phase if "cp_model_presolve" not in cfg.extra_parameters else 0.0
    small = share > 0 and len(mb.model.proto.variables) <= cfg.light_presolve_below
    # a small model: the second phase with the light presolve; the quick phase keeps symmetry
    # detection unless interchangeable.py already cut the node orbits it would find
    # (SchedulingBasic 5,000 x 10,000, nothing to trim: proved in 0.2 s with it, FEASIBLE after
    # 30 s without; the latency windows, trimmed: detection is time the quick phase lacks)
    second = _light(cfg) if small else cfg
    quick = second if small and orbits_cut else cfg
    if share <= 0 or share >= 1:
        solver = cp_solver(second, obj.gap_limit)
        return solver, clock.run("solve", lambda: solver.solve(mb.model))
    return _two_phase(mb, obj, quick, share, clock, second)


def _two_phase(mb: ModelBuilder, obj: Objective, cfg: SolveConfig, share: float,
               clock: _Clock, second_cfg: SolveConfig | None = None
               ) -> tuple[cp_model.CpSolver, int]:
    """A short solve without presolve first, then the configured solve from its solution.

    On big easy models CP-SAT's presolve alone can outlast the limit (kube-perf-like 5,000 x
    5,000: no solution in 10 s with presolve, OPTIMAL in 0.25 s without; Tianchi 1k: presolve
    unfinished after 120 s); on harder ones presolve is what proves the bound (mixed 20,000:
    FEASIBLE with it, nothing without). The first phase takes `share` of the limit: when it
    proves optimality the window is done, else the second phase runs on the same hint and the
    better of the two solutions is returned (the first's when the second finds nothing)."""
    quick = cp_solver(replace(cfg, time_limit=cfg.time_limit * share,
                              extra_parameters={**cfg.extra_parameters, "cp_model_presolve": False}),
                      obj.gap_limit)
    before = clock.timings.get("solve", 0.0)
    status = clock.run("solve", lambda: quick.solve(mb.model))
    clock.timings["solve_quick"] = round(clock.timings["solve"] - before, 6)  # part of "solve"
    if status == cp_model.OPTIMAL:
        return quick, status
    # the second phase keeps the original hint: when a conservative encoding cuts the greedy
    # plan off, the first phase's repair of it can be worse than what presolve + search find
    full = cp_solver(replace(second_cfg or cfg, time_limit=cfg.time_limit * (1 - share)),
                     obj.gap_limit)
    second = clock.run("solve", lambda: full.solve(mb.model))
    if second == cp_model.OPTIMAL or status != cp_model.FEASIBLE:
        return full, second
    if second == cp_model.FEASIBLE and full.objective_value >= quick.objective_value:
        return full, second
    return quick, status


def _light(cfg: SolveConfig) -> SolveConfig:
    """The configuration with the light presolve (no probing, no symmetry detection, one pass),
    for small models; parameters set in extra_parameters win.

    On a small model the full presolve costs more than it proves: the latency window (50 agents
    x 500 nodes, every hard rule, ~4,700 variables) spent ~0.6 s of its 1 s in presolve (four
    symmetry passes, probing) and the two-phase solve proved 8 of 20 windows; one solve with
    the light presolve proved 20 of 20, mean solve 0.25 s (no presolve at all: 18 of 20, 0.43 s).
    Symmetry detection is off: interchangeable.py drops the surplus of the node orbits it would
    find, and on the trimmed model it took 0.5 s alone. With complete hints and trimming the
    quick phase (no presolve) proves most windows first: 50 windows, same session, quick phase
    then light p50 188 ms (solve 88 ms), one light solve p50 250 ms (123 ms), all proven."""
    return replace(cfg, extra_parameters={**LIGHT_PRESOLVE, **cfg.extra_parameters})


def _canonical(cut: interchangeable.Trim | None, sol: Solution) -> Solution:
    """A plan on the full node set mapped onto the nodes the trim kept (interchangeable.py)."""
    if cut is None:
        return sol
    counts, evicted = cut.canonical(sol[0], sol[1])
    return counts, evicted if evicted is not None else sol[1]


def _hint_evictions(mb: ModelBuilder, evicted: np.ndarray) -> None:
    ev, victims = mb.evictions, mb.ix.victims
    if ev is None or victims is None:
        return
    for v, var in enumerate(ev.evict):
        mb.model.add_hint(var, int(evicted[v]))
    for d, var in enumerate(ev.excess):
        members = victims.pdb_members[d]
        mb.model.add_hint(var, max(0, int(evicted[members].sum()) - int(victims.allowed[d])))


def _evicted_from_solver(mb: ModelBuilder, solver: cp_model.CpSolver) -> np.ndarray:
    ev = mb.evictions
    if ev is None:
        return np.zeros(len(mb.ix.victims) if mb.ix.victims is not None else 0, dtype=bool)
    return np.array([bool(solver.value(e)) for e in ev.evict], dtype=bool)


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


def _unplaced(snap: Snapshot, ix: Index, placements: list[tuple[str, str]],
              cfg: SolveConfig | None = None) -> list[Unplaced]:
    """kube's message for each agent left out, against the cluster after the plan's placements
    and evictions, with kube's PostFilter (preemption) part. Agents of one class share one
    explanation."""
    cfg = cfg or SolveConfig()
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
            if e.feasible:
                by_class[c] = (f"{len(e.feasible)}/{len(snap.nodes)} nodes could still take it, "
                               "but placing it would lower the objective or the solver stopped "
                               "at its time limit", None)
            else:
                post, run = pre.postfilter(pod, snap, usage, e.reasons, cfg.preemption,
                                           cfg.pdb_mode)
                message = f"{e.message} {post}" if post else e.message
                blocked = run is not None and (
                    not cfg.preemption or run.pdbs or "Never" in (post or ""))
                cf = (pre.eviction_counterfactual(run, pod, snap, cfg.preemption, cfg.pdb_mode)
                      if blocked and run is not None else counterfactual(pod, snap, usage))
                by_class[c] = (message, cf)
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


def _packing_strategies(strategy: str) -> tuple[str, ...]:
    """The greedy scores run on the big-first order, the configured strategy's first."""
    if strategy == "MostAllocated":
        return ("MostAllocated", "FirstFit", "LeastAllocated")
    return ("LeastAllocated", "MostAllocated", "FirstFit")


def optimize(source: Inventory | Snapshot, cfg: SolveConfig | None = None,
             warm: Mapping[str, str] | None = None, nodes: NodeTables | None = None) -> Plan:
    """Place a window of pending agents; the returned plan has passed the verifier.

    `warm` (agent ref -> node name, e.g. from the previous window, optimizer/windows.py) adds
    one more hint candidate: the greedy taking each named node whenever the checks admit it.
    `nodes`: the node side of the Index kept across windows and already updated for this
    snapshot (optimizer/nodetables.py; only read here)."""
    with paused_gc():  # no cycles to collect; gen-2 passes cost 3x our own time at 50k (gcpause.py)
        return _optimize(source, cfg, warm, nodes)


def _optimize(source: Inventory | Snapshot, cfg: SolveConfig | None,
              warm: Mapping[str, str] | None, nodes: NodeTables | None = None) -> Plan:
    cfg = cfg or SolveConfig()
    clock = _Clock()
    snap = source if isinstance(source, Snapshot) else clock.run(
        "snapshot", lambda: build_snapshot(source))
    if cfg.partitions > 1:  # POP-style parts, each solved by this function (decompose.py)
        plan = decompose.optimize_partitioned(snap, cfg, warm)
        plan.timings = {**clock.timings, **plan.timings}
        return plan
    ix = clock.run("index", lambda: Index(snap, nodes))
    ix.victims = clock.run("victims", lambda: pre.find_victims(ix, cfg.preemption, cfg.pdb_mode,
                                                                cfg.now))
    static, full = clock.run("prefilter", lambda: prefilter(ix))
    for ext in cfg.extensions:  # an extension may narrow the candidate pairs further
        mask = ext.prefilter(ix) if hasattr(ext, "prefilter") else None
        if mask is not None:
            static, full = static & mask, full & mask
    base_nodes, base_evicted = clock.run("baseline", lambda: greedy_plan(ix, static, cfg.strategy))
    base: Solution = (counts_from_assignment(ix, base_nodes), base_evicted)
    if cfg.scope_k > 0 and cfg.scope_by == "tightness":  # GPU fleets (scoping.py)
        full = clock.run("scope", lambda: scoping.tight_scope(ix, full, static, base[0], cfg.scope_k,
                                                              RULES))
    elif cfg.scope_k > 0:  # candidate scoping: fewer pairs (scoping.py)
        full = clock.run("scope", lambda: scoping.scope(ix, full, base_nodes, cfg.scope_k, cfg.strategy))

    def build() -> tuple[ModelBuilder, Objective]:
        cls, node, upper = candidate_pairs(ix, full)
        mb = ModelBuilder(ix, cls, node, upper)
        mb.build_variables()
        if ix.victims is not None and len(ix.victims):
            mb.evictions = pre.encode(mb, ix.victims)
        for rule in RULES:
            rule.encode(mb, ix)
        for ext in cfg.extensions:
            if hasattr(ext, "encode"):
                ext.encode(mb, ix)
        obj = encode_objective(mb, cfg)
        for ext in cfg.extensions:  # (var, value(counts)) hints for the extension's variables
            obj.hints += getattr(ext, "hints", [])
        if cfg.symmetry_breaking == "load":
            break_node_symmetry(mb)
        elif cfg.symmetry_breaking == "auto" and mb.open_flags:
            order_open_flags(mb, mb.open_flags)
        return mb, obj

    # node-class aggregation (aggregate.py) when asked for and the window allows it
    agg = None
    if cfg.aggregate == "auto" and aggregate.applicable(
            ix, cfg, all_placed=bool((base_nodes >= 0).all()) and not base[1].any()) is None:
        # victims left are never worth evicting (the greedy placed everyone): drop them
        ix.victims, base = None, (base[0], np.zeros(0, dtype=bool))
        agg = aggregate.solve(ix, full, base[0], cfg, clock.run)
    names, pick = ["greedy"], 0
    best: Solution = base
    if agg is not None:
        mb, obj, solver, status = agg.mb, agg.obj, agg.solver, agg.status
    else:
        cut = clock.run("trim", lambda: interchangeable.trim(ix, full)) if (
            cfg.trim_interchangeable and not cfg.extensions) else None
        if cut is not None:  # plans on the full node set are mapped onto the kept nodes
            full, base = cut.mask, _canonical(cut, base)
        mb, obj = clock.run("build", build)
        log.info("model: %s", mb.size())
        # the hint: the best by the objective of the kube-like greedy and two packing orders
        # (big agents first, best fit / first fit): the greedy alone often strands big agents
        # the packing orders only pay when the greedy strands agents or when packing is weighted
        packing = bool((base_nodes < 0).any()) or any(t.name == "pack" and t.coef for t in obj.terms)

        big_first = decreasing_size_order(ix)

        def heuristic(strategy: str) -> Solution:
            nodes, evicted = greedy_plan(ix, static, strategy, order=big_first)
            return _canonical(cut, (counts_from_assignment(ix, nodes), evicted))

        # LeastAllocated on the big-first order spreads as it packs: the balance term's hint
        # (Tianchi 1k: every agent placed at official cost 139 vs 215 for the packing orders);
        # on equal objective the first wins, so the configured strategy's own order goes first
        # and, when nothing is stranded, still the balance term's hint: mixed 5,000 x 5,000, the
        # highest utilisation cpu + memory 29 % in queue order, 20 % big-first (the proven
        # optimum at 1,000), which CP-SAT's search did not reach from 29 % in 30 s
        # (skipped when big-first is the queue order: it would be the greedy itself again)
        balance = any(t.name == "balance" and t.coef for t in obj.terms) and not (
            cfg.strategy == "LeastAllocated"
            and bool((big_first == np.arange(len(snap.pending))).all()))
        orders = _packing_strategies(cfg.strategy) if packing else (
            ("LeastAllocated",) if balance else ())
        heuristics = clock.run("heuristics", lambda: [base] + [heuristic(s) for s in orders])
        names = ["greedy"] + [f"greedy-{s}-decreasing" for s in orders]
        if warm:
            prefer = np.array([snap.node_pos.get(warm.get(p.ref, ""), -1) for p in snap.pending],
                              dtype=np.int64)

            def warmed() -> Solution:
                nodes, evicted = greedy_plan(ix, static, cfg.strategy, prefer=prefer)
                return _canonical(cut, (counts_from_assignment(ix, nodes), evicted))

            heuristics.append(clock.run("heuristics", warmed))
            names.append("warm")
        if cfg.extensions:  # an extension's hard constraints may rule out the greedy plans
            kept = [i for i, h in enumerate(heuristics) if all(
                ext.accepts(h[0]) for ext in cfg.extensions if hasattr(ext, "accepts"))]
            extra = [(counts, np.zeros_like(base_evicted)) for ext in cfg.extensions
                     if hasattr(ext, "heuristics") for counts in ext.heuristics(ix)]
            names = [names[i] for i in kept] + [f"extension-{k}" for k in range(len(extra))]
            heuristics = [heuristics[i] for i in kept] + extra
        pick = max(range(len(heuristics)), key=lambda i: obj.value(*heuristics[i]))
        best = heuristics[pick]
        solver, status = _solve_cp(mb, obj, cfg, best if cfg.hint else None, clock,
                                   orbits_cut=cut is not None)  # trim: None unless it cut
    warnings = list(snap.warnings) + obj.warnings
    plan_status = {cp_model.OPTIMAL: "OPTIMAL", cp_model.FEASIBLE: "FEASIBLE"}.get(status)
    if agg is not None and plan_status:  # optimal for the aggregate only: no claim, no bound
        plan_status = "FEASIBLE"
    counts, evicted = best
    if plan_status and agg is not None and agg.counts is not None:
        counts, evicted = agg.counts, base[1]
    elif plan_status:
        counts, evicted = _counts_from_solver(mb, solver), _evicted_from_solver(mb, solver)
    if plan_status is None:
        plan_status = "FALLBACK"
        warnings.append(f"CP-SAT returned {solver.status_name(status)}: best greedy plan returned")

    def checked(sol: Solution) -> tuple[Solution, list[tuple[str, str]], list[Eviction],
                                        list[Any]]:
        """Reprieve, decode and verify one solution."""
        victims = ix.victims
        gone = pre.reprieve(ix, victims, sol[0], sol[1]) if victims is not None else sol[1]
        placements = _deaggregate(ix, sol[0])
        evictions = pre.evictions(ix, sol[0], gone, placements)
        triples = [(e.pod, e.node, e.agent or "") for e in evictions]
        return (sol[0], gone), placements, evictions, verify(
            placements, snap, evictions=triples, pdb_mode=cfg.pdb_mode)

    (counts, evicted), placements, evictions, violations = clock.run(
        "verify", lambda: checked((counts, evicted)))
    bound_known = agg is None
    if violations and plan_status != "FALLBACK":
        log.error("solver plan failed verification: %s", violations[:5])
        warnings.append(f"solver plan failed verification ({violations[0]}): greedy plan returned")
        plan_status = "FALLBACK"
        (counts, evicted), placements, evictions, violations = checked(best)
    if violations:
        raise PlanInvalidError("; ".join(str(v) for v in violations[:10]))
    if plan_status != "FALLBACK" and obj.value(*best) > obj.value(counts, evicted):
        # a conservative encoding (see the rules' docstrings) cut off the greedy's valid plan:
        # keep the better verified plan, and claim no optimality nor bound for it
        other, best_placements, best_evictions, best_violations = checked(best)
        if not best_violations and obj.value(*other) > obj.value(counts, evicted):
            warnings.append("the greedy plan is better than the solver's: " + (
                "candidate scoping (scope_k) or " if cfg.scope_k > 0 else "") + "a conservative "
                "rule encoding excluded it; greedy plan returned, no optimality claimed")
            plan_status, (counts, evicted) = "FEASIBLE", other
            placements, evictions = best_placements, best_evictions
            bound_known = False
    gone = {e.pod for e in evictions}
    bounds = (term_bounds(mb, obj, counts, cfg, clock)
              if cfg.term_bounds and plan_status != "FALLBACK" and agg is None else {})
    after = without_running(snap, gone)
    unplaced = clock.run("explain", lambda: _unplaced(after, ix, placements, cfg))
    objective = obj.value(counts, evicted)
    bound = int(solver.best_objective_bound) if plan_status != "FALLBACK" and bound_known else None
    plan = Plan(
        status=plan_status,
        placements=[Placement(a, n) for a, n in placements],
        unplaced=unplaced,
        evictions=evictions,
        objective=objective,
        bound=bound,
        gap=None if bound is None else round((bound - objective) / max(1, abs(objective)), 9),
        verified=True,
        objective_terms=_with_bounds(obj.breakdown(ix, counts, evicted), bounds),
        baseline={"name": f"greedy-{cfg.strategy}", **obj.breakdown(ix, *base)},
        timings=clock.timings,
        model={**mb.size(), **(agg.size if agg is not None else {}),
               "solver_status": solver.status_name(status),
               "hint": {"source": names[pick], "objective": obj.value(*best), "used": cfg.hint},
               "time_limit": cfg.time_limit, "workers": cfg.workers,
               **({"scope": {"k": cfg.scope_k, "by": cfg.scope_by}} if cfg.scope_k else {})},
        warnings=warnings,
        budgets=budget_report(dict(placements), snap),
    )
    # the unplaced list must cover exactly the agents not placed: nothing accepted is lost
    final = accounting_violations(placements, snap, [u.agent for u in unplaced])
    if final:
        raise PlanInvalidError("; ".join(str(v) for v in final[:10]))
    return plan
