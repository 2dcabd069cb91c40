"""One Tianchi sample through agentplace and the in-run baselines, every plan checked twice.

In one process, on the same sample (instances, machine pool, rules among the sampled apps):
  production   the competition's own placement (instance_deploy) of the sampled instances, on
               the machines it used; the instances it left unplaced stay unplaced
  FFD          the kube-like greedy's machinery (every hard rule checked per step) with first-fit
               on agents in decreasing size order (largest share of the mean machine)
  BFD          the same order, MostAllocated score (best fit by cpu/memory)
  LeastAllocated-bigfirst   the same order, LeastAllocated score (spreads): one of the hints
               agentplace itself starts from, shown so that its own contribution is visible
  greedy-LeastAllocated / greedy-MostAllocated   optimizer.baseline.greedy in queue order
  agentplace   optimizer.optimize, profile `balanced`, balance on cpu only (the official cost
               only reads cpu), the time limit
Every plan goes through optimizer.verify.verify on a Snapshot of its window AND through the
benchmark's own checker on the raw data (benchmarks/tianchi/cost.py: the 98-point series,
disk/P/M/PM and every interference rule); any violation is recorded and fails the run.
No PuLP MILP here: the official cost is non-linear in time-varying cpu, and the assignment MILP
of even the 1k sample (1,000 x 88 binaries plus thousands of pairwise rules per machine) is far
from solvable by CBC in the time limits; the FFD/BFD/greedy baselines are the in-run comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.common import CheckedRun, PlanCheck, check_plan, timed
from benchmarks.tianchi import kube
from benchmarks.tianchi.cost import Evaluation, evaluate
from benchmarks.tianchi.data import Sample, Tianchi
from models import load_documents
from optimizer import PlanInvalidError, SolveConfig, optimize
from optimizer.baseline import decreasing_size_order, greedy
from optimizer.index import Index
from optimizer.snapshot import Snapshot, build_snapshot
from optimizer.solve import prefilter

OURS = "agentplace"
PRODUCTION = "production"
BASELINES = ("FFD", "BFD", "LeastAllocated-bigfirst", "greedy-LeastAllocated",
             "greedy-MostAllocated")
METHODS = (OURS, *BASELINES, PRODUCTION)


@dataclass(frozen=True)
class TianchiConfig:
    time_limit: float
    workers: int
    seed: int = 0
    solve_options: tuple[tuple[str, Any], ...] = ()

    def solve_config(self) -> SolveConfig:
        # presolve off by default: on the 1k sample's model (161k variables, 572k constraints,
        # mostly pairwise anti-affinity) CP-SAT's presolve alone outlasted a 120 s limit on 2
        # loaded cores (UNKNOWN -> the heuristic fallback); without it the complete greedy hint
        # is a first solution at once. --solve-opt extra_parameters={} restores the default.
        options: dict[str, Any] = {"balance_resources": {"cpu": 1},
                                   "extra_parameters": {"cp_model_presolve": False}}
        options |= dict(self.solve_options)
        return SolveConfig(time_limit=self.time_limit, workers=self.workers, seed=self.seed,
                           strategy="LeastAllocated", **options)


class SampleResult(CheckedRun):
    """One sample's figures and checks."""


def machine_lower_bound(ds: Tianchi, s: Sample) -> int:
    """Fewest pool machines whose capacity covers the sample's demand: per resource and time
    point (cpu and mem series summed over instances; disk, P, M, PM), the largest machines
    first. Every used machine costs at least 1, so this also bounds the official cost."""
    apps = ds.inst_app[s.instances]
    demand = np.concatenate([ds.app_cpu[apps].sum(axis=0), ds.app_mem[apps].sum(axis=0),
                             ds.app_scalar[apps].sum(axis=0)])
    caps = ds.machine_cap[s.machines]
    cap = np.concatenate([np.repeat(caps[:, [0]], ds.app_cpu.shape[1], axis=1),
                          np.repeat(caps[:, [1]], ds.app_mem.shape[1], axis=1), caps[:, 2:]], axis=1)
    best = 0
    for r in range(cap.shape[1]):
        cum = np.cumsum(np.sort(cap[:, r])[::-1])
        need = int(np.searchsorted(cum, demand[r] - 1e-6)) + 1 if demand[r] > 0 else 0
        best = max(best, min(need, len(cum) + 1))
    return best


def _method(ev: Evaluation, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"placed": ev.placed, "unplaced": ev.unplaced, "complete": ev.unplaced == 0,
            "machines": ev.machines_used, "cost": ev.cost, "max_cpu_util": ev.max_cpu_util,
            "rule_violations": ev.rule_violations, "capacity_violations": ev.capacity_violations,
            "seconds": round(seconds, 4), **extra}


def _own_check(method: str, ev: Evaluation) -> PlanCheck:
    return PlanCheck(f"{method} (tianchi checker)", tuple(ev.examples) if ev.violations else ())


def run_sample(ds: Tianchi, s: Sample, key: str, cfg: TianchiConfig,
               progress: Callable[[str], None] = lambda _: None) -> SampleResult:
    apps = ds.inst_app[s.instances]
    rec: dict[str, Any] = {
        "key": key, "instances": s.size, "apps": int(np.unique(apps).size),
        "machines_offered": int(s.machines.size), "rules": len(s.rules),
        "rules_k0": int((s.rules[:, 2] == 0).sum()),
        "rules_self": int((s.rules[:, 0] == s.rules[:, 1]).sum()),
        "machine_lower_bound": machine_lower_bound(ds, s),
    }
    res = SampleResult(rec)
    methods: dict[str, dict[str, Any]] = {}

    progress("building the window")
    docs, t_docs = timed(lambda: kube.documents(ds, s))
    inv, t_load = timed(lambda: load_documents(docs, source="tianchi"))
    snap: Snapshot = build_snapshot(inv)
    rec["load_seconds"] = round(t_docs + t_load, 4)

    def record(name: str, machine_of: np.ndarray, seconds: float, window: Snapshot,
               **extra: Any) -> None:
        ev = evaluate(ds, s.instances, machine_of, s.rules)
        methods[name] = _method(ev, seconds, **extra)
        progress(f"verifying {name}")
        res.checks.append(check_plan(name, kube.placements(s, machine_of), window,
                                     require_complete=False))
        res.checks.append(_own_check(name, ev))

    # the kube-like baselines, each from a fresh index (what a scheduler would build)
    def run_greedy(strategy: str, decreasing: bool) -> np.ndarray:
        ix = Index(snap)
        static, _ = prefilter(ix)
        order = decreasing_size_order(ix) if decreasing else None
        node_of = greedy(ix, static, strategy, order=order)
        # snap.pending is in the snapshot's queue order, not the sample's: map by agent ref
        assignment = {p.ref: ix.node_names[int(n)]
                      for p, n in zip(snap.pending, node_of, strict=True) if n >= 0}
        return kube.machines_of(assignment, s)

    for name, strategy, decreasing in (("FFD", "FirstFit", True), ("BFD", "MostAllocated", True),
                                       ("LeastAllocated-bigfirst", "LeastAllocated", True),
                                       ("greedy-LeastAllocated", "LeastAllocated", False),
                                       ("greedy-MostAllocated", "MostAllocated", False)):
        progress(name)
        by_agent, dt = timed(lambda st=strategy, d=decreasing: run_greedy(st, d))
        record(name, by_agent, dt, snap)

    # agentplace
    progress(f"agentplace (time limit {cfg.time_limit:g} s)")
    t0 = time.perf_counter()
    try:
        plan = optimize(snap, cfg.solve_config())
    except PlanInvalidError as e:
        res.checks.append(PlanCheck(OURS, (f"optimize raised PlanInvalidError: {e}",)))
        methods[OURS] = {"status": "ERROR", "seconds": round(time.perf_counter() - t0, 4)}
    else:
        wall = time.perf_counter() - t0
        balance = (plan.objective_terms.get("terms") or {}).get("balance") or {}
        record(OURS, kube.machines_of(plan.assignment(), s), wall, snap,
               status=plan.status, objective=plan.objective, bound=plan.bound, gap=plan.gap,
               balance_value=balance.get("value"), timings=plan.timings, model=plan.model,
               warnings=plan.warnings[:5])

    # production: its own machines
    progress("production placement")
    prod = ds.inst_machine[s.instances]
    used = np.unique(prod[prod >= 0])
    prod_docs = [kube.node_doc(ds, int(m)) for m in used] + [
        d for d in docs if d["kind"] == "Pod"]
    prod_snap = build_snapshot(load_documents(prod_docs, source="tianchi-production"))
    record(PRODUCTION, prod, 0.0, prod_snap, note="instance_deploy restricted to the sample; "
           "its machines are the production ones, not the pool")

    rec["methods"] = methods
    ours, lb = methods.get(OURS, {}), rec["machine_lower_bound"]
    for base in (*BASELINES, PRODUCTION):
        b = methods.get(base, {})
        if ours.get("cost") and b.get("cost"):
            rec[f"cost_ours_over_{base}"] = round(ours["cost"] / b["cost"], 4)
    if ours.get("cost") and lb:
        rec["cost_ours_over_lb"] = round(ours["cost"] / lb, 4)
    return res
