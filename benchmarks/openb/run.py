"""`python -m benchmarks openb`: replay the openb GPU cluster, agentplace next to the baselines.

Per workload (default, and with --sets the variants of fgd-atc23-expected-results): the same
arrival sequence for every method; agentplace (optimize() per window, see replay.py), the
kube-like greedy per window (optimizer/baseline.py), and the five published online policies
re-implemented (policies.py); the published means (10 seeds of the FGD simulator) are shown
next to them, labelled as published. Reported: % of the cluster's GPUs allocated at each 10 %
of arrived GPU demand (100 % is the headline), FGD's fragmentation measure at the same
points, times, and the solver's per-window status, bound and gap. Every plan goes through
optimizer.verify: each window's (agentplace: inside optimize; greedy: here), and every online
policy's final placement of all arrived pods.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from benchmarks.common import check_plan, code_version, machine_info
from benchmarks.openb import data as D
from benchmarks.openb import policies as P
from benchmarks.openb import replay as R
from benchmarks.openb.report import print_tables, write_outputs
from models import Inventory
from optimizer import SolveConfig
from optimizer.snapshot import build_snapshot

EXIT_OK, EXIT_FAILED = 0, 1
OURS, GREEDY = "agentplace", "kube-greedy"
MILESTONES = tuple(range(10, 140, 10))


@dataclass(frozen=True)
class Tier:
    node_fraction: float
    max_demand: float  # replay until this % of GPU demand has arrived
    window: int
    time_limit: float
    scope_k: int  # candidate nodes per class, ranked by tightness (optimizer/scoping.py)
    workloads: tuple[str, ...]


TIERS = {
    "smoke": Tier(0.1, 110.0, 100, 1.0, 24, ("default",)),
    "standard": Tier(1.0, 130.0, 400, 10.0, 40, ("default",)),
    "stress": Tier(1.0, 130.0, 400, 10.0, 40, (
        "default", "cpu050", "cpu100", "cpu200", "cpu250", "gpushare40", "gpushare60",
        "gpushare80", "gpushare100", "gpuspec10", "gpuspec20", "gpuspec25", "gpuspec33",
        "multigpu20", "multigpu30", "multigpu40", "multigpu50")),
}


def _at(demand: np.ndarray, values: list[float], pct: float) -> float | None:
    """The value after the last arrival with demand <= pct (None beyond the replay)."""
    if pct > float(demand[-1]) + 0.5:
        return None
    i = int(np.searchsorted(demand, pct, side="right")) - 1
    return values[i] if i >= 0 else 0.0


def run(args: argparse.Namespace, data: Path, console: Console) -> int:
    root = data / D.DATA_DIR
    if not (root / D.NODE_YAML).is_file():
        console.print(f"[yellow]openb: skipped: no {D.NODE_YAML} under {root}. Pass --data DIR "
                      "or set AGENTPLACE_DATA.[/]")
        return EXIT_OK
    tier = TIERS[args.tier]
    time_limit = args.time_limit if args.time_limit is not None else tier.time_limit
    window = getattr(args, "window", None) or tier.window
    workloads = tuple(s.strip() for s in args.sets.split(",")) if args.sets else tier.workloads
    known = set(D.available_workloads(data))
    missing = [w for w in workloads if w not in known]
    if missing:
        console.print(f"[red]openb: unknown workload(s) {', '.join(missing)}; known: "
                      f"{', '.join(sorted(known))}[/]")
        return 2
    seed = args.seed if args.seed else 42
    extra = dict(getattr(args, "solve_options", ()))
    params = dict(extra.pop("extra_parameters", {}) or {})
    params.setdefault("cp_model_probing_level", 0)  # probing alone ate 5 s windows (1,213 nodes)
    cfg = SolveConfig(time_limit=time_limit, workers=args.workers, seed=seed, profile="gpu",
                      scope_k=extra.pop("scope_k", tier.scope_k), scope_by="tightness",
                      extra_parameters=params, **extra)
    out = Path(args.out) if args.out else Path("bench-out") / f"openb-{args.tier}"
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    parameters: dict[str, Any] = {
        "suite": "openb", "tier": args.tier, "workloads": list(workloads), "seed": seed,
        "node_fraction": tier.node_fraction, "tune_ratio": 1.3, "max_demand_pct": tier.max_demand,
        "window": window, "window_closes_at_demand_pct": R.MILESTONE_STEP,
        "time_limit": time_limit, "workers": args.workers, "profile": cfg.profile,
        "scope_k": cfg.scope_k, "scope_by": cfg.scope_by, "cp_sat_parameters": params,
        "solve_options": {k: v for k, v in extra.items()}}
    console.print(f"openb {args.tier}: workloads {', '.join(workloads)}; window {window} "
                  f"arrivals (and every {R.MILESTONE_STEP:g} % of demand); {time_limit:g} s per "
                  f"window, {args.workers} workers; max {cfg.scope_k} candidate nodes per class")
    results = []
    failed = False
    for name in workloads:
        res = run_workload(data, name, tier, window, cfg, seed, console)
        failed |= any(m["violations"] for m in res["methods"].values())
        results.append(res)
    doc = {"suite": "openb", "started": started.isoformat(),
           "seconds": round(time.perf_counter() - t0, 2), "machine": machine_info(),
           "code": code_version(), "parameters": parameters, "workloads": results}
    print_tables(doc, console)
    paths = write_outputs(doc, out)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")
    if failed:
        console.print("[red]a plan failed the verifier (see results.json)[/]")
    return EXIT_FAILED if failed else EXIT_OK


def run_workload(data: Path, name: str, tier: Tier, window: int, cfg: SolveConfig, seed: int,
                 console: Console) -> dict[str, Any]:
    wl = D.load_workload(data, name, node_fraction=tier.node_fraction, tune_ratio=1.3, seed=seed)
    demand_all = wl.demand_pct()
    end = int(np.searchsorted(demand_all, tier.max_demand, side="right"))
    rows, demand = wl.rows[:end], demand_all[:end]
    original = D.read_rows(data / D.DATA_DIR / D.POD_CSV.format(workload=name))
    cluster = P.Cluster.of(wl.nodes)
    tp = P.typical_pods(original, cluster.models)
    node_pos = {n: i for i, n in enumerate(cluster.names)}
    console.print(f"[bold]{name}[/]: {len(wl.nodes)} nodes, {wl.capacity_milli // 1000} GPUs, "
                  f"{len(rows)} pods up to {float(demand[-1]):.1f} % of GPU demand")
    methods: dict[str, dict[str, Any]] = {}
    pods = D.to_pods(rows)
    marks = [m for m in MILESTONES if m <= tier.max_demand]

    def curve(allocated: list[float], frag_at: dict[int, float]) -> dict[str, Any]:
        return {"alloc_pct": {m: _pct(_at(demand, allocated, m), wl.capacity_milli) for m in marks},
                "frag_pct": frag_at}

    for label, solver in ((OURS, R.agentplace_solver(cfg)), (GREEDY, R.greedy_solver())):
        def progress(rec: R.WindowRecord, label: str = label) -> None:
            console.print(f"  {label} window {rec.index}: demand {rec.demand_pct:.1f} %, "
                          f"allocated {rec.allocated_pct:.2f} %, placed {rec.placed}/{rec.agents}"
                          f", dropped {rec.dropped}, {rec.status}, {rec.seconds:.1f} s",
                          highlight=False)
        rr = R.replay(label, wl.nodes, pods, rows, wl.capacity_milli, window, solver, progress)
        methods[label] = replay_summary(rr, rows, pods, demand, wl, tp, node_pos, marks)
    for policy in P.POLICIES:
        t = time.perf_counter()
        res = P.replay_online(policy, wl.nodes, rows, seed, typical=original)
        secs = round(time.perf_counter() - t, 2)
        frag_at = {m: P.cluster_frag(wl.nodes, rows[:i], res.node_of[:i], res.cards_of[:i], tp)
                   for m in marks if (i := int(np.searchsorted(demand, m, side="right"))) > 0}
        placed = [(p.ref, cluster.names[n]) for p, n in zip(pods, res.node_of, strict=True) if n >= 0]
        check = check_plan(policy, placed, build_snapshot(Inventory(nodes=wl.nodes, pods=pods)),
                           require_complete=False)
        methods[f"{policy} (ours)"] = {**curve([float(a) for a in res.allocated], frag_at),
                                       "seconds": secs, "violations": list(check.violations),
                                       "placed": len(placed), "kind": "re-implemented online"}
        console.print(f"  {policy} (re-implemented): {methods[f'{policy} (ours)']['alloc_pct'].get(100)} "
                      f"% at 100 % demand, {secs} s, verified {check.ok}", highlight=False)
    pub = D.published(data, name) if tier.node_fraction >= 1 else {}
    pub_frag = D.published_frag(data, name) if tier.node_fraction >= 1 else {}
    return {"workload": name, "nodes": len(wl.nodes), "gpus": wl.capacity_milli // 1000,
            "pods": len(rows), "max_demand_pct": round(float(demand[-1]), 2), "methods": methods,
            "published": {p: {"alloc_pct": {m: v.get(m) for m in marks},
                              "frag_pct": {m: pub_frag.get(p, {}).get(m) for m in marks}}
                          for p, v in pub.items()},
            "published_note": "mean of 10 seeds of the FGD simulator (fgd-atc23-expected-results), "
                              "full cluster only" if pub else "not comparable at this scale"}


def _pct(v: float | None, capacity: int) -> float | None:
    return None if v is None else round(100.0 * v / capacity, 2)


def replay_summary(rr: R.ReplayResult, rows: list[D.Row], pods: list[Any], demand: np.ndarray,
                   wl: D.Workload, tp: P.TypicalPods, node_pos: dict[str, int],
                   marks: list[int]) -> dict[str, Any]:
    ends = [w.demand_pct for w in rr.windows]
    alloc = [w.allocated_pct for w in rr.windows]
    alloc_at = {}
    for m in marks:
        got = [a for e, a in zip(ends, alloc, strict=True) if e <= m + 1e-9]
        alloc_at[m] = got[-1] if got else 0.0
    node_of = [node_pos[rr.placements[p.ref]] if p.ref in rr.placements else -1 for p in pods]
    cards_of = [rr.cards.get(p.ref, []) for p in pods]
    # fragmentation at the milestones: the agents placed by then (placement order = windows)
    placed_by: dict[int, set[str]] = {}
    order = list(rr.placements)  # insertion order = window order
    counts = np.cumsum([w.placed for w in rr.windows])
    for m in marks:
        k = max([int(c) for e, c in zip(ends, counts, strict=True) if e <= m + 1e-9], default=0)
        placed_by[m] = set(order[:k])
    frag_at = {}
    for m in marks:
        i = int(np.searchsorted(demand, m, side="right"))
        keep = placed_by[m]
        frag_at[m] = P.cluster_frag(
            wl.nodes, rows[:i], [n if p.ref in keep else -1 for p, n in zip(pods[:i], node_of[:i],
                                                                            strict=True)],
            cards_of[:i], tp)
    gaps = [w.gap for w in rr.windows if w.gap is not None]
    return {"alloc_pct": alloc_at, "frag_pct": frag_at, "seconds": rr.seconds,
            "violations": rr.violations, "placed": len(rr.placements),
            "kind": "windowed", "windows": [w.as_dict() for w in rr.windows],
            "solver": {"windows": len(rr.windows),
                       "optimal": sum(w.status == "OPTIMAL" for w in rr.windows),
                       "fallback": sum(w.status == "FALLBACK" for w in rr.windows),
                       "mean_gap": round(float(np.mean(gaps)), 9) if gaps else None,
                       "max_gap": max(gaps) if gaps else None}}
