"""`python -m benchmarks scale`: time and peak memory vs window size, agentplace vs the greedy.

Every (shape, size, method) runs in a fresh spawned process (so its peak RSS is its own), with
a wall-clock cap; the window is generated as kubectl-shaped dicts there, then timed end to end:
parse (models.load_documents), then the method's own phases. Methods:
  greedy                the kube-like greedy: snapshot, index, prefilter, greedy, verify
  agentplace            optimizer.optimize, per-node model (the default configuration)
  agentplace+aggregate  SolveConfig(aggregate="auto"): node-class aggregation where it applies
  agentplace+scope      SolveConfig(scope_k=K): candidate scoping
  agentplace+partition  SolveConfig(partitions=K): POP-style parts in a process pool, merged,
                        one repair pass (optimizer/decompose.py)
Every plan goes through optimizer.verify (optimize does; the greedy's is checked here). After
the timed part, each plan is scored by one reference objective (the full per-node model's, the
default profile) on the same index, so quality compares across methods: objective_ref,
placed, placed priority; ratios vs the greedy and vs the unscaled agentplace of the same size.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import code_version, machine_info

TIERS: dict[str, dict[str, list[int]]] = {
    "smoke": {"basic": [500, 2000], "mixed": [500, 2000]},
    # mixed goes to 50,000 since the greedy keeps spread and pod-affinity counts per domain
    # (optimizer/greedy_gates.py; its vector form took 34 s at 5,000 and ~200 s at 50,000)
    "standard": {"basic": [1000, 5000, 20000, 50000], "mixed": [1000, 5000, 20000, 50000]},
    "stress": {"basic": [5000, 20000, 50000], "mixed": [5000, 20000, 50000]},
}
METHODS = ("greedy", "agentplace", "agentplace+aggregate", "agentplace+scope", "agentplace+partition")
DEFAULT_TIME_LIMIT = {"smoke": 5.0, "standard": 30.0, "stress": 30.0}


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def method_options(method: str, scope_k: int, partitions: int = 4) -> dict[str, Any]:
    """SolveConfig fields of a named method."""
    return {"agentplace+aggregate": {"aggregate": "auto"},
            "agentplace+scope": {"scope_k": scope_k},
            "agentplace+partition": {"partitions": partitions}}.get(method, {})


def _child(shape: str, nodes: int, agents: int, method: str, time_limit: float, workers: int,
           opts: dict[str, Any], queue: Any) -> None:
    """One timed run in a fresh process; puts a result dict on `queue`."""

    from benchmarks.common import check_plan
    from benchmarks.scale.reference import reference_score
    from benchmarks.scale.shapes import SHAPES
    from models import load_documents
    from models.gcpause import paused_gc
    from optimizer import SolveConfig, optimize
    from optimizer.baseline import greedy
    from optimizer.index import Index
    from optimizer.snapshot import build_snapshot
    from optimizer.solve import prefilter

    docs = SHAPES[shape](nodes, agents)
    rss_input = _rss_mib()
    t0 = time.perf_counter()
    inv = load_documents(docs, source=f"scale-{shape}")
    timings: dict[str, float] = {"parse": round(time.perf_counter() - t0, 6)}
    out: dict[str, Any] = {"shape": shape, "nodes": nodes, "agents": agents, "method": method}
    if method == "greedy":
        pause = paused_gc()  # as optimize() and the loader do: the same footing
        pause.__enter__()
        t = time.perf_counter()
        snap = build_snapshot(inv)
        timings["snapshot"] = round(time.perf_counter() - t, 6)
        t = time.perf_counter()
        ix = Index(snap)
        timings["index"] = round(time.perf_counter() - t, 6)
        t = time.perf_counter()
        static, _ = prefilter(ix)
        timings["prefilter"] = round(time.perf_counter() - t, 6)
        t = time.perf_counter()
        assign = greedy(ix, static, "LeastAllocated")
        timings["greedy"] = round(time.perf_counter() - t, 6)
        placements = [(p.ref, snap.nodes[int(b)].name)
                      for p, b in zip(snap.pending, assign, strict=True) if b >= 0]
        t = time.perf_counter()
        check = check_plan(method, placements, snap, require_complete=False)
        timings["verify"] = round(time.perf_counter() - t, 6)
        out |= {"status": "GREEDY", "verified": check.ok, "violations": list(check.violations[:5])}
        pause.__exit__(None, None, None)
    else:
        cfg = SolveConfig(time_limit=time_limit, workers=workers, **opts)
        plan = optimize(inv, cfg)  # verified inside; raises PlanInvalidError otherwise
        timings |= plan.timings
        placements = [(p.agent, p.node) for p in plan.placements]
        out |= {"status": plan.status, "verified": plan.verified, "objective": plan.objective,
                "bound": plan.bound, "gap": plan.gap, "model": plan.model,
                "warnings": plan.warnings[-2:]}
    wall = time.perf_counter() - t0
    # a pool's processes (agentplace+partition) are not in the own RSS: the largest of them
    children = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    out |= {"seconds": round(wall, 3), "timings": timings, "peak_rss_mib": _rss_mib(),
            "children_peak_rss_mib": children,
            "input_rss_mib": rss_input}
    # untimed: placed and one reference objective for every method (reference.py)
    t = time.perf_counter()
    out |= reference_score(Index(build_snapshot(inv)))(placements)
    out["reference_seconds"] = round(time.perf_counter() - t, 3)
    queue.put(out)


def run_one(shape: str, nodes: int, agents: int, method: str, time_limit: float, workers: int,
            opts: dict[str, Any], cap: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(shape, nodes, agents, method, time_limit, workers,
                                             opts, queue))
    t = time.perf_counter()
    proc.start()
    result: dict[str, Any] | None = None
    try:
        result = queue.get(timeout=cap)
    except Exception:  # queue.Empty on the cap, or the child died
        result = None
    proc.join(timeout=30)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if result is None:
        why = (f"no result within {cap:g} s" if time.perf_counter() - t >= cap
               else f"child exited with {proc.exitcode}")
        return {"shape": shape, "nodes": nodes, "agents": agents, "method": method,
                "status": "TIMEOUT" if "within" in why else "ERROR", "error": why}
    return result


def _ratios(records: list[dict[str, Any]]) -> None:
    """Per record: throughput, placed and objective vs the greedy and vs plain agentplace."""
    by = {(r["shape"], r["nodes"], r["method"]): r for r in records}
    for r in records:
        if "seconds" not in r:
            continue
        r["agents_per_s"] = round(r["placed"] / r["seconds"], 1) if r["seconds"] else None
        g = by.get((r["shape"], r["nodes"], "greedy"), {})
        a = by.get((r["shape"], r["nodes"], "agentplace"), {})
        if "placed" in g:
            r["placed_minus_greedy"] = r["placed"] - g["placed"]
            r["objective_vs_greedy"] = r["objective_ref"] - g["objective_ref"]
        if a.get("objective_ref"):
            r["objective_loss_vs_unscaled"] = round(
                (a["objective_ref"] - r["objective_ref"]) / abs(a["objective_ref"]), 9)


def _table(records: list[dict[str, Any]]) -> Table:
    t = Table(title="scale: agentplace vs kube-like greedy (agents = nodes)", title_justify="left")
    for h in ("shape", "nodes", "method", "status", "placed", "Δ greedy", "s", "agents/s",
              "RSS MiB", "loss vs unscaled", "top phases (s)", "verified"):
        t.add_column(h)
    for r in records:
        top = sorted((r.get("timings") or {}).items(), key=lambda kv: -kv[1])[:3]
        t.add_row(r["shape"], str(r["nodes"]), r["method"], str(r.get("status")),
                  str(r.get("placed", "–")), str(r.get("placed_minus_greedy", "–")),
                  str(r.get("seconds", r.get("error", "–"))), str(r.get("agents_per_s", "–")),
                  str(r.get("peak_rss_mib", "–")), str(r.get("objective_loss_vs_unscaled", "–")),
                  " ".join(f"{k} {v:.2f}" for k, v in top), str(r.get("verified", "–")))
    return t


def _plot(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for shape, style in (("basic", "-"), ("mixed", "--")):
        for method in METHODS:
            pts = sorted((r["nodes"], r["seconds"], r["peak_rss_mib"]) for r in records
                         if r["shape"] == shape and r["method"] == method and "seconds" in r)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            axes[0].plot(xs, [p[1] for p in pts], style, marker="o", label=f"{method} ({shape})")
            axes[1].plot(xs, [p[2] for p in pts], style, marker="o", label=f"{method} ({shape})")
    for ax, what in zip(axes, ("seconds end to end", "peak RSS (MiB)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("nodes (= agents)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].axhline(60, color="grey", lw=0.8)
    axes[1].axhline(4096, color="grey", lw=0.8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


CSV_FIELDS = ("shape", "nodes", "agents", "method", "status", "verified", "placed",
              "placed_minus_greedy", "placed_priority", "seconds", "agents_per_s", "peak_rss_mib",
              "objective_ref", "objective_vs_greedy", "objective_loss_vs_unscaled", "balance_ref",
              "error")


def _write(records: list[dict[str, Any]], out: Path, tier: str, started: dt.datetime,
           time_limit: float, args: argparse.Namespace, grid: dict[str, list[int]],
           methods: list[str], plot: bool = False, console: Console | None = None) -> None:
    """results.json and results.csv (after every run, so an interrupted run keeps its rows);
    the plot at the end."""
    _ratios(records)
    bad = [r for r in records if r.get("verified") is False]
    payload = {"suite": "scale", "tier": tier, "started_at": started.isoformat(timespec="seconds"),
               "machine": machine_info(), "code": code_version(),
               "parameters": {"time_limit": time_limit, "workers": args.workers,
                              "scope_k": args.scope_k,
                              "partitions": getattr(args, "partitions", 4), "cap_seconds": args.cap,
                              "grid": grid,
                              "methods": methods},
               "ok": not bad, "records": records}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS)
        for r in records:
            w.writerow(["" if r.get(f) is None else r.get(f) for f in CSV_FIELDS])
    if not plot or console is None:
        return
    try:
        _plot(records, out / "scaling.png")
        console.print(f"written: {out / 'results.json'}, results.csv, scaling.png")
    except ImportError:
        console.print("[yellow]matplotlib is not installed: no plot (pip install -e '.[bench]')[/]")


def run(args: argparse.Namespace, console: Console) -> int:
    tier = args.tier if args.tier in TIERS else "standard"
    time_limit = args.time_limit if args.time_limit is not None else DEFAULT_TIME_LIMIT[tier]
    grid = TIERS[tier]
    if args.sets:
        grid = {k: v for k, v in grid.items() if k in args.sets.split(",")}
    sizes_cap = getattr(args, "max_nodes", None)
    methods = [m for m in METHODS if not args.methods or m in args.methods.split(",")]
    out = Path(args.out) if args.out else Path("bench-out") / f"scale-{tier}"
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    records: list[dict[str, Any]] = []
    for shape, sizes in grid.items():
        for n in sizes:
            if sizes_cap and n > sizes_cap:
                continue
            for method in methods:
                with console.status(f"{shape} {n} {method}"):
                    r = run_one(shape, n, n, method, time_limit, args.workers,
                                method_options(method, args.scope_k,
                                               getattr(args, "partitions", 4)), args.cap)
                records.append(r)
                _write(records, out, tier, started, time_limit, args, grid, methods)
                console.print(f"  {shape} {n}x{n} {method}: {r.get('status')} "
                              f"{r.get('seconds', r.get('error'))} s, placed {r.get('placed')}, "
                              f"RSS {r.get('peak_rss_mib')} MiB")
    _write(records, out, tier, started, time_limit, args, grid, methods, plot=True, console=console)
    console.print(_table(records))
    bad = [r for r in records if r.get("verified") is False]
    if bad:
        console.print(f"[bold red]FAILED: {len(bad)} plan(s) failed the verifier[/]")
        return 1
    return 0
