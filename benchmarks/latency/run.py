"""`python -m benchmarks latency`: end-to-end plan latency of interactive windows, every hard rule on.

Per window (seeded; the cluster is built once per run, the 50 agents drawn per window):
  agentplace   optimizer.optimize on the Inventory, timed end to end (snapshot, index, prefilter,
               the greedy hint, model build, solve, decode, verify, explain = everything a caller
               waits for); the plan's own per-phase timings give the split
  greedy       the kube-like greedy (LeastAllocated) on the same window, timed the same way
               (snapshot, index, prefilter, greedy, verify)
Both plans go through optimizer.verify.verify; any violation fails the run. Reported: p50 / p90 /
p99 / max end-to-end, the split (encode = snapshot + index + victims + prefilter + baseline +
trim + build + heuristics + hint completion; solve; decode + verify = verify + explain), the
gap on the weighted terms (bound − objective as a fraction of a weight-1.0 term's full swing,
objective.SCALE), placed agents and placed priority vs the greedy, and a cProfile of a few
extra windows (profile.txt).
Targets (issue 7): p50 <= 250 ms, p99 <= 1 s, gap <= 1 %.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import io
import json
import os
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks.common import check_plan, code_version, machine_info
from benchmarks.latency import workload
from models import Inventory, load_documents
from optimizer import PlanInvalidError, SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.index import Index
from optimizer.objective import SCALE
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter

WINDOWS = {"smoke": 20, "standard": 100, "stress": 300}
DEFAULT_TIME_LIMIT = 1.0
TARGETS = {"p50_seconds": 0.25, "p99_seconds": 1.0, "gap": 0.01}
ENCODE = ("snapshot", "index", "victims", "prefilter", "baseline", "trim", "build", "heuristics",
          "hint")
DECODE = ("verify", "explain")
PROFILED_WINDOWS = 5
EXIT_OK, EXIT_FAILED = 0, 1


def percentile(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): the value at or below which q % of windows fall."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def term_gap(plan: Any) -> float | None:
    """bound − objective as a fraction of one weight-1.0 term's swing (0 when proven)."""
    if plan.bound is None:
        return None
    return round(max(0, plan.bound - plan.objective) / SCALE, 6)


def run_greedy(inv: Inventory) -> tuple[list[tuple[str, str]], float, Any]:
    t = time.perf_counter()
    snap = build_snapshot(inv)
    ix = Index(snap)
    static, _ = prefilter(ix)
    node_of = greedy(ix, static, "LeastAllocated")
    placements = [(p.ref, ix.node_names[int(n)]) for p, n in zip(snap.pending, node_of, strict=True)
                  if n >= 0]
    check = check_plan("greedy-LeastAllocated", placements, snap, require_complete=False)
    return placements, time.perf_counter() - t, (snap, check)


def run_window(w: int, base: list[dict[str, Any]], cfg: SolveConfig, seed: int) -> dict[str, Any]:
    t = time.perf_counter()
    inv = load_documents([*base, *workload.window(w, seed)], source=f"latency-window-{w}")
    parse = time.perf_counter() - t
    rec: dict[str, Any] = {"window": w, "parse_seconds": round(parse, 4)}
    g_pl, g_sec, (snap, g_check) = run_greedy(inv)
    prio = {p.ref: pr for p, pr in zip(snap.pending, snap.priority, strict=True)}
    rec["greedy"] = {"placed": len(g_pl), "placed_priority": sum(prio[a] for a, _ in g_pl),
                     "seconds": round(g_sec, 4)}
    checks = [g_check]
    t = time.perf_counter()
    try:
        plan = optimize(inv, cfg)
    except PlanInvalidError as e:
        rec["ours"] = {"status": "ERROR", "error": str(e), "seconds": time.perf_counter() - t}
        rec["violations"] = [f"window {w}: agentplace: {e}"]
        return rec
    e2e = time.perf_counter() - t
    placements = [(p.agent, p.node) for p in plan.placements]
    checks.append(check_plan("agentplace", placements, snap, require_complete=False))
    tm = plan.timings
    rec["ours"] = {
        "seconds": round(e2e, 4), "status": plan.status,
        "encode_seconds": round(sum(tm.get(k, 0.0) for k in ENCODE), 4),
        "solve_seconds": round(tm.get("solve", 0.0), 4),
        "decode_verify_seconds": round(sum(tm.get(k, 0.0) for k in DECODE), 4),
        "timings": tm, "placed": len(placements),
        "placed_priority": sum(prio[a] for a, _ in placements),
        "objective": plan.objective, "bound": plan.bound, "gap": plan.gap,
        "term_gap": term_gap(plan), "model": plan.model,
    }
    rec["violations"] = [f"window {w}: {c.method}: {v}" for c in checks for v in c.violations]
    return rec


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    ours = [r["ours"] for r in records if r["ours"].get("status") != "ERROR"]
    e2e = [o["seconds"] for o in ours]
    gaps = [o["term_gap"] for o in ours if o["term_gap"] is not None]
    out: dict[str, Any] = {"windows": len(records), "solved": len(ours)}
    for q in (50, 90, 99, 100):
        out[f"p{q}_seconds"] = percentile(e2e, q)
    for part in ("encode_seconds", "solve_seconds", "decode_verify_seconds"):
        vals = [o[part] for o in ours]
        out[f"mean_{part}"] = round(statistics.fmean(vals), 4) if vals else None
        out[f"p50_{part}"] = percentile(vals, 50)
    phases: dict[str, list[float]] = {}
    for o in ours:
        for k, v in o["timings"].items():
            phases.setdefault(k, []).append(v)
    out["mean_phase_seconds"] = {k: round(statistics.fmean(v), 4) for k, v in phases.items()}
    out["status_counts"] = {s: sum(1 for o in ours if o["status"] == s)
                            for s in sorted({o["status"] for o in ours})}
    out["gap_p50"], out["gap_p99"] = percentile(gaps, 50), percentile(gaps, 99)
    out["gap_max"] = max(gaps) if gaps else None
    out["gap_known_pct"] = round(100 * len(gaps) / len(ours), 1) if ours else None
    plan_gaps = [o["gap"] for o in ours if o["gap"] is not None]
    out["plan_gap_p50"], out["plan_gap_p99"] = percentile(plan_gaps, 50), percentile(plan_gaps, 99)
    out["gap_within_target_pct"] = (round(100 * sum(g <= TARGETS["gap"] for g in gaps) / len(ours), 1)
                                    if ours else None)
    g = [r["greedy"] for r in records]
    out["greedy_p50_seconds"] = percentile([x["seconds"] for x in g], 50)
    out["greedy_p99_seconds"] = percentile([x["seconds"] for x in g], 99)
    paired = [(r["ours"], r["greedy"]) for r in records if r["ours"].get("status") != "ERROR"]
    out["placed_mean"] = round(statistics.fmean(o["placed"] for o, _ in paired), 2) if paired else None
    out["greedy_placed_mean"] = round(statistics.fmean(x["placed"] for x in g), 2) if g else None
    greedy_prio = max(1, sum(x["placed_priority"] for _, x in paired))
    out["placed_priority_over_greedy"] = round(
        sum(o["placed_priority"] for o, _ in paired) / greedy_prio, 4)
    out["wins_ties_losses_vs_greedy"] = [
        sum(o["placed_priority"] > x["placed_priority"] for o, x in paired),
        sum(o["placed_priority"] == x["placed_priority"] for o, x in paired),
        sum(o["placed_priority"] < x["placed_priority"] for o, x in paired)]
    out["targets"] = TARGETS
    out["meets"] = {
        "p50": out["p50_seconds"] is not None and out["p50_seconds"] <= TARGETS["p50_seconds"],
        "p99": out["p99_seconds"] is not None and out["p99_seconds"] <= TARGETS["p99_seconds"],
        "gap": out["gap_p99"] is not None and out["gap_p99"] <= TARGETS["gap"]
        and out["gap_known_pct"] == 100.0,
    }
    return out


def profile(base: list[dict[str, Any]], cfg: SolveConfig, seed: int, first: int,
            count: int = PROFILED_WINDOWS) -> tuple[str, list[dict[str, Any]]]:
    """cProfile of optimize() on `count` extra windows (not the timed ones: profiling slows Python
    code down): the top functions by cumulative and own time, per window."""
    invs = [load_documents([*base, *workload.window(first + k, seed)]) for k in range(count)]
    prof = cProfile.Profile()
    prof.enable()
    for inv in invs:
        optimize(inv, cfg)
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("cumulative").print_stats(40)
    st.sort_stats("tottime").print_stats(25)
    top = []
    for (file, line, fn), (_, ncalls, tottime, cumtime, _) in st.stats.items():  # type: ignore[attr-defined]
        top.append({"function": f"{file}:{line}({fn})", "calls": ncalls,
                    "own_seconds": round(tottime / count, 5),
                    "cumulative_seconds": round(cumtime / count, 5)})
    top.sort(key=lambda r: -r["own_seconds"])
    return buf.getvalue(), top[:25]


def print_summary(console: Console, s: dict[str, Any], cfg: SolveConfig) -> None:
    def ms(v: float | None) -> str:
        return "–" if v is None else f"{1000 * v:,.0f} ms"

    t = Table(title=f"latency: {s['windows']} windows of {workload.AGENTS} agents x {workload.NODES} "
                    f"nodes, every hard rule (time limit {cfg.time_limit:g} s, term gap "
                    f"{cfg.term_gap:g}, {cfg.workers} workers)", title_justify="left",
              header_style="bold")
    for col in ("figure", "agentplace", "target", "met", "greedy"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    yes = {True: "[green]yes[/]", False: "[red]no[/]"}
    t.add_row("p50 end-to-end", ms(s["p50_seconds"]), "250 ms", yes[s["meets"]["p50"]],
              ms(s["greedy_p50_seconds"]))
    t.add_row("p90 end-to-end", ms(s["p90_seconds"]), "", "", "")
    t.add_row("p99 end-to-end", ms(s["p99_seconds"]), "1,000 ms", yes[s["meets"]["p99"]],
              ms(s["greedy_p99_seconds"]))
    t.add_row("max end-to-end", ms(s["p100_seconds"]), "", "", "")
    t.add_row("mean encode / solve / decode+verify",
              " / ".join(ms(s[f"mean_{k}"]) for k in ("encode_seconds", "solve_seconds",
                                                       "decode_verify_seconds")), "", "", "")
    gap = "–" if s["gap_p99"] is None else f"{100 * s['gap_p99']:.3f} %"
    t.add_row("term gap p99 (in weight-1 term swings)", f"{gap} ({s['gap_known_pct']} % have one)", "1 %",
              yes[s["meets"]["gap"]], "")
    pg = "–" if s["plan_gap_p99"] is None else f"{100 * s['plan_gap_p99']:.4f} %"
    t.add_row("plan gap p99 ((bound − obj) / obj, priority incl.)", pg, "", "", "")
    t.add_row("status", ", ".join(f"{k} {v}" for k, v in s["status_counts"].items()), "", "", "")
    t.add_row("placed agents (mean)", str(s["placed_mean"]), "", "", str(s["greedy_placed_mean"]))
    wtl = s["wins_ties_losses_vs_greedy"]
    t.add_row("placed priority / greedy",
              f"{s['placed_priority_over_greedy']:.4f} (W/T/L {wtl[0]}/{wtl[1]}/{wtl[2]})", "", "", "1")
    console.print(t)
    console.print("[dim]mean per phase: " + ", ".join(
        f"{k} {1000 * v:.0f} ms" for k, v in s["mean_phase_seconds"].items()) + "[/]")


def write_plots(out: Path, records: list[dict[str, Any]], s: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = sorted(1000 * r["ours"]["seconds"] for r in records if "seconds" in r["ours"])
    greedy_ms = sorted(1000 * r["greedy"]["seconds"] for r in records)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for vals, name in ((ours, "agentplace"), (greedy_ms, "kube-like greedy")):
        axes[0].plot(vals, [100 * (k + 1) / len(vals) for k in range(len(vals))], label=name)
    axes[0].axvline(250, color="green", linestyle="--", linewidth=0.8, label="p50 target")
    axes[0].axvline(1000, color="red", linestyle="--", linewidth=0.8, label="p99 target")
    axes[0].set_xlabel("end-to-end ms per window")
    axes[0].set_ylabel("% of windows")
    axes[0].legend(fontsize=8)
    phases = s["mean_phase_seconds"]
    axes[1].bar(list(phases), [1000 * v for v in phases.values()])
    axes[1].set_ylabel("mean ms per window")
    axes[1].tick_params(axis="x", rotation=35, labelsize=8)
    fig.suptitle(f"latency: {len(records)} windows, {workload.AGENTS} agents x {workload.NODES} nodes")
    fig.tight_layout()
    p = out / "latency.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return [p]


def run(args: argparse.Namespace, console: Console) -> int:
    tier = args.tier
    windows = args.max_instances or WINDOWS[tier]
    options = dict(getattr(args, "solve_options", ()))
    options.setdefault("term_gap", TARGETS["gap"])
    cfg = SolveConfig(time_limit=args.time_limit if args.time_limit is not None else DEFAULT_TIME_LIMIT,
                      workers=args.workers, seed=args.seed, **options)
    out = Path(args.out) if args.out else Path("bench-out") / f"latency-{tier}"
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    machine = machine_info() | {"load_average_at_start": os.getloadavg()}
    base = workload.cluster(args.seed)
    console.print(f"[bold]latency[/] tier={tier}: {windows} windows of {workload.AGENTS} agents x "
                  f"{workload.NODES} nodes; time limit {cfg.time_limit:g} s, {cfg.workers} workers, "
                  f"term gap {cfg.term_gap:g}; {machine['usable_cores']} cores, "
                  f"ortools {machine['versions']['ortools']}")
    # one untimed window first: imports, caches and CP-SAT's first start are not a window's cost
    run_window(-1, base, cfg, args.seed)
    records = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("windows", total=windows)
        for w in range(windows):
            rec = run_window(w, base, cfg, args.seed)
            records.append(rec)
            for v in rec["violations"]:
                progress.console.print(f"[bold red]VIOLATION[/] {v}")
            progress.update(task, advance=1, description=f"window {w}: "
                            f"{1000 * rec['ours'].get('seconds', 0):.0f} ms {rec['ours'].get('status')}")
    s = summarise(records)
    print_summary(console, s, cfg)
    with console.status("profiling"):
        profiled = min(PROFILED_WINDOWS, windows)
        prof_text, prof_top = profile(base, cfg, args.seed, windows, profiled)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.txt").write_text(prof_text)
    console.print(f"top own time per window (cProfile, {profiled} windows): " + "; ".join(
        f"{r['function'].rsplit('/', 1)[-1]} {1000 * r['own_seconds']:.0f} ms" for r in prof_top[:6]))
    plots: list[str] = []
    try:
        plots = [str(p) for p in write_plots(out, records, s)]
    except ImportError:
        console.print("[yellow]matplotlib is not installed: no plots[/]")
    violations = [v for r in records for v in r["violations"]]
    machine["load_average_at_end"] = os.getloadavg()
    payload = {
        "suite": "latency", "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - t0, 3), "machine": machine,
        "code": code_version(),
        "parameters": {"suite": "latency", "tier": tier, "windows": windows, "agents": workload.AGENTS,
                       "nodes": workload.NODES, "seed": args.seed, "out": str(out),
                       "solve_config": dataclasses.asdict(cfg), "workload": workload.__doc__},
        "ok": not violations, "violations": violations, "summary": s,
        "profile_top_own_time": prof_top, "plots": plots, "windows": records,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    with (out / "results.csv").open("w") as fh:
        fh.write("window,status,seconds,encode,solve,decode_verify,placed,greedy_placed,"
                 "placed_priority,greedy_placed_priority,term_gap,greedy_seconds\n")
        for r in records:
            o, g = r["ours"], r["greedy"]
            fh.write(",".join(str("" if v is None else v) for v in (
                r["window"], o.get("status"), o.get("seconds"), o.get("encode_seconds"),
                o.get("solve_seconds"), o.get("decode_verify_seconds"), o.get("placed"), g["placed"],
                o.get("placed_priority"), g["placed_priority"], o.get("term_gap"), g["seconds"])) + "\n")
    console.print(f"written: {out / 'results.json'}, {out / 'results.csv'}, {out / 'profile.txt'}"
                  + (f", {len(plots)} plots" if plots else ""))
    if violations:
        console.print(f"[bold red]FAILED: {len(violations)} verifier violation(s)[/]")
        return EXIT_FAILED
    console.print(f"[green]all {len(records)} windows: every plan (ours and the greedy's) passed the "
                  "verifier[/]")
    return EXIT_OK
