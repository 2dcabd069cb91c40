"""Run the VBP suite: every instance through agentplace and the in-run baselines, verified.

Per instance, in one process and on the same items:
  1. FFD and BFD (max and sum keys) on the numpy arrays;
  2. the instance as Kubernetes objects with one Node per item (a window no heuristic can
     overflow); the kube-like greedy (optimizer.baseline.greedy, MostAllocated) on it;
  3. K = the fewest bins any of those used: the window offered to the solvers has K Nodes;
  4. agentplace: optimizer.optimize on that window, strategy MostAllocated (fewest nodes opened
     once every agent is placed = fewest bins);
  5. the PuLP/CBC assignment MILP on the same K bins, same time limit and thread count,
     warm-started from the packing that set K;
  6. every plan (ours and every baseline's) through optimizer.verify.verify on a Snapshot, and
     the bins cross-checked against the known optimum and the proven lower bounds.
Any verifier violation or inconsistency is recorded, printed, and makes the run exit non-zero.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.baselines import HEURISTICS, Packing, solve_milp
from benchmarks.common import CheckedRun, PlanCheck, check_plan, timed
from benchmarks.vbp import kube
from benchmarks.vbp.instances import VbpInstance
from models import Inventory
from optimizer import PlanInvalidError, SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.index import Index
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter

OURS = "agentplace"
GREEDY = "greedy-MostAllocated"
MILP = "PuLP-CBC"
# the columns of the summary; FFD and BFD are the better of their two sort keys per instance
SUMMARY_METHODS = (OURS, "FFD", "BFD", GREEDY, MILP)


@dataclass(frozen=True)
class VbpConfig:
    time_limit: float
    workers: int
    seed: int = 0
    milp: bool = True
    milp_warm_start: bool = True
    hint: bool = True
    # further SolveConfig fields (e.g. symmetry_breaking=True), from --solve-opt KEY=VALUE
    solve_options: tuple[tuple[str, Any], ...] = ()

    def solve_config(self) -> SolveConfig:
        options = dict(self.solve_options)
        # the bin count is what is measured: the solver must not stop within a bin of its
        # bound (a relative term gap of 2 % is less than one bin only while K < 50 nodes)
        if "term_gap" in {f.name for f in dataclasses.fields(SolveConfig)}:
            options.setdefault("term_gap", 0.0)
        return SolveConfig(time_limit=self.time_limit, workers=self.workers, seed=self.seed,
                           strategy="MostAllocated", hint=self.hint, **options)


@dataclass
class InstanceResult(CheckedRun):
    errors: list[str] = field(default_factory=list)  # consistency failures (not the verifier's)


def _bins(bin_of: np.ndarray) -> int:
    return int(np.unique(bin_of[bin_of >= 0]).size)


def _method(bins: int | None, complete: bool, seconds: float, unplaced: int = 0,
            **extra: Any) -> dict[str, Any]:
    """`bins` only for a complete packing; `bins_effective` charges each unplaced item one
    extra bin (every item fits an empty bin), so incomplete plans still aggregate honestly."""
    return {"bins": bins if complete else None, "complete": complete,
            "unplaced": unplaced,
            "bins_effective": None if bins is None else bins + unplaced,
            "seconds": round(seconds, 6), **extra}


def skipped_record(inst: VbpInstance, reason: str) -> dict[str, Any]:
    return {**_identity(inst), "skipped": True, "skip_reason": reason}


def _identity(inst: VbpInstance) -> dict[str, Any]:
    ref = inst.reference
    l1 = None
    if (inst.sizes >= 0).all() and (inst.capacity > 0).all():
        l1 = int(np.max(-(-inst.sizes.sum(axis=0) // inst.capacity))) if inst.n else 0
    return {
        "l1_bound": l1,
        "key": inst.key, "set": inst.set, "class": inst.klass, "name": inst.name, "n": inst.n,
        "d": inst.d, "capacity": inst.capacity.tolist(), "source": inst.source,
        "ref": ref.value if ref else None, "ref_kind": ref.kind if ref else None,
        "paper_lb": ref.lb if ref else None,
        "paper_best_IC": ref.best_ic if ref else None,
        "paper_best_overall": ref.best_overall if ref else None,
    }


def _pack_terms(terms: dict[str, Any]) -> tuple[int, int, int] | None:
    """(priority scale P, priority weight per agent, coefficient c of "nodes opened") when the
    objective is exactly P * placed_weight - c * nodes_opened, else None. Reads both objective
    layouts: the weighted one (`priority_scale`, `terms`) and the earlier one (`scale`,
    `secondary`)."""
    placed = int(terms.get("placed_agents") or 0)
    per_agent = int(terms.get("priority_weight") or 0) // placed if placed else 1
    if "terms" in terms:
        pack = terms["terms"].get("pack") or {}
        others = [t for name, t in terms["terms"].items() if name != "pack" and t.get("coefficient")]
        c = int(pack.get("coefficient") or 0)
        if others or c <= 0:
            return None
        return int(terms["priority_scale"]), max(per_agent, 1), c
    if "scale" in terms:
        return int(terms["scale"]), max(per_agent, 1), 1
    return None


def nodes_opened(terms: dict[str, Any]) -> int | None:
    if "terms" in terms:
        return (terms["terms"].get("pack") or {}).get("value")
    return (terms.get("secondary") or {}).get("value")


def bins_lower_bound(plan_bound: int | None, terms: dict[str, Any], n: int) -> int | None:
    """The bins CP-SAT's proven objective bound forces. With objective P * w * placed - c * opened
    (c * opened < P), a bound B above P * w * (n - 1) leaves room for placing all n items and
    forces opened >= ceil((P * w * n - B) / c). None when the bound says nothing about bins."""
    layout = _pack_terms(terms)
    if plan_bound is None or layout is None:
        return None
    p, w, c = layout
    full = p * w * n
    if plan_bound <= full - p * w:
        return None
    return max(0, -(-(full - plan_bound) // c))


def run_instance(inst: VbpInstance, cfg: VbpConfig) -> InstanceResult:
    rec: dict[str, Any] = {**_identity(inst), "skipped": False}
    res = InstanceResult(rec)
    cap, sizes, n = inst.capacity, inst.sizes, inst.n
    methods: dict[str, dict[str, Any]] = {}

    # 1. heuristics on the arrays
    packings: dict[str, Packing] = {}
    for name, h in HEURISTICS.items():
        p, dt = timed(lambda h=h: h(cap, sizes))
        packings[name] = p
        methods[name] = _method(p.bins, p.complete, dt)

    # 2. the Kubernetes window with one node per item, and the kube-like greedy on it
    (inv_all, snap_all), t_load = timed(lambda: _load(cap, sizes, n))
    rec["load_seconds"] = round(t_load, 6)

    def run_greedy() -> np.ndarray:
        ix = Index(snap_all)
        static, _ = prefilter(ix)
        return greedy(ix, static, "MostAllocated")

    g, dt = timed(run_greedy)
    g_pl = [(p.ref, snap_all.nodes[int(b)].name) for p, b in zip(snap_all.pending, g, strict=True)
            if b >= 0]
    g_bin = kube.bins_from_plan(dict(g_pl), n)
    methods[GREEDY] = _method(_bins(g_bin), bool((g_bin >= 0).all()), dt)
    res.checks.append(check_plan(GREEDY, g_pl, snap_all, require_complete=True))
    for name, p in packings.items():
        res.checks.append(check_plan(name, kube.placements(p.bin_of), snap_all,
                                     require_complete=True))

    # 3. the window the solvers get: as many nodes as the best heuristic needed
    candidates = [(p.bins, name, p.bin_of) for name, p in packings.items() if p.complete]
    if methods[GREEDY]["complete"]:
        candidates.append((methods[GREEDY]["bins"], GREEDY, g_bin))
    k, k_from, k_assign = min(candidates, key=lambda c: c[0])
    rec["bins_offered"], rec["bins_offered_by"] = k, k_from
    inv_k = Inventory(nodes=inv_all.nodes[:k], pods=inv_all.pods)
    snap_k = build_snapshot(inv_k)

    # 4. agentplace
    t0 = time.perf_counter()
    try:
        plan = optimize(inv_k, cfg.solve_config())
    except PlanInvalidError as e:  # the optimizer's own verifier refused every plan it had
        res.checks.append(PlanCheck(OURS, (f"optimize raised PlanInvalidError: {e}",)))
        methods[OURS] = _method(None, False, time.perf_counter() - t0, status="ERROR")
    else:
        wall = time.perf_counter() - t0
        ours_pl = [(p.agent, p.node) for p in plan.placements]
        ours_bin = kube.bins_from_plan(plan.assignment(), n)
        complete = bool((ours_bin >= 0).all())
        lb = bins_lower_bound(plan.bound, plan.objective_terms, n)
        # proven: the solver says OPTIMAL and its own bound meets the bins used (with a
        # non-zero stopping gap OPTIMAL alone may sit a bin above the bound)
        proven = plan.status == "OPTIMAL" and complete and lb == _bins(ours_bin)
        methods[OURS] = _method(
            _bins(ours_bin), complete, wall, unplaced=int((ours_bin < 0).sum()),
            status=plan.status, proven=proven, lower_bound=lb,
            solve_seconds=plan.timings.get("solve"), placed=len(ours_pl),
            objective=plan.objective, bound=plan.bound, gap=plan.gap, verified=plan.verified,
            model=plan.model, timings=plan.timings,
            in_window_greedy={"placed": plan.baseline.get("placed_agents"),
                              "nodes_opened": nodes_opened(plan.baseline)})
        res.checks.append(check_plan(OURS, ours_pl, snap_k, require_complete=False))

    # 5. the MILP on the same K bins
    if cfg.milp:
        warm = k_assign if cfg.milp_warm_start else None
        r, dt = timed(lambda: solve_milp(cap, sizes, k, cfg.time_limit, cfg.workers, warm))
        complete = r.bins is not None
        # no solution at all: charge the packing it was offered (K bins), as a fallback would
        methods[MILP] = _method(r.bins if complete else k, complete, dt,
                                status=r.status, proven=r.proven, lower_bound=r.lower_bound,
                                build_seconds=r.build_seconds, solve_seconds=r.solve_seconds,
                                **r.info)
        if r.status not in ("NO_SOLUTION",):
            res.checks.append(check_plan(MILP, kube.placements(r.bin_of), snap_k,
                                         require_complete=False))

    # the summary columns: FFD / BFD = the better of the two keys
    for fam in ("FFD", "BFD"):
        best = min((m for name, m in methods.items() if name.startswith(fam + "-")),
                   key=lambda m: m["bins"] if m["complete"] else 10**9)
        methods[fam] = {**best, "alias_of": next(
            name for name, m in methods.items() if name.startswith(fam + "-") and m is best)}
    rec["methods"] = methods
    res.errors.extend(_consistency(rec))
    return res


def _load(cap: np.ndarray, sizes: np.ndarray, bins: int) -> tuple[Inventory, Any]:
    inv = kube.inventory(cap, sizes, bins)
    return inv, build_snapshot(inv)


def _consistency(rec: dict[str, Any]) -> list[str]:
    """Bins below a proven optimum or a proven bound above a found packing: a bug somewhere."""
    out = []
    key, ref, kind = rec["key"], rec["ref"], rec["ref_kind"]
    methods = rec["methods"]
    found = {m: v["bins"] for m, v in methods.items() if v.get("bins") is not None}
    bounds = {m: v["lower_bound"] for m, v in methods.items() if v.get("lower_bound") is not None}
    if kind == "OPT":
        for m, b in found.items():
            if b < ref:
                out.append(f"{key}: {m} used {b} bins, below the known optimum {ref}")
        for m, lb in bounds.items():
            if lb > ref:
                out.append(f"{key}: {m} proved a lower bound {lb} above the known optimum {ref}")
    for m, lb in bounds.items():
        for m2, b in found.items():
            if b < lb:
                out.append(f"{key}: {m2} used {b} bins, below {m}'s proven lower bound {lb}")
    return out


def run_all(instances: list[VbpInstance], cfg: VbpConfig,
            on_start: Callable[[VbpInstance], None] | None = None,
            on_done: Callable[[VbpInstance, InstanceResult], None] | None = None,
            ) -> list[InstanceResult]:
    out = []
    for inst in instances:
        if on_start:
            on_start(inst)
        r = run_instance(inst, cfg)
        out.append(r)
        if on_done:
            on_done(inst, r)
    return out


def write_path(out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out / name
