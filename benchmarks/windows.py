"""Incremental windows: a stream of windows on one big cluster, with and without node tables.

    python -m benchmarks.windows [--nodes 20000] [--agents 200] [--windows 8] [--churn 2]
                                 [--det-time 1.0] [--out DIR]

One seeded cluster (benchmarks/scale/shapes.py `mixed` nodes: three zones, two sizes) and a
stream of `mixed` agents cut into windows of `--agents`; between windows `--churn` nodes change
(one cordoned or uncordoned, the rest relabelled), as a node watch would deliver them. Two
Planners replay the same stream in lockstep, one keeping the node side of the Index across
windows (WindowConfig.incremental, optimizer/nodetables.py), one rebuilding it per window;
each window runs on both before the next (taking turns at going first), so machine noise hits
both alike.

Per window and side: snapshot, node tables, Index and pre-filter seconds (their sum is
"prepare"), the model build, the solve, and the Planner step end to end. The solver runs on
one worker with a deterministic time limit (CP-SAT's max_deterministic_time) and no presolve,
so both sides must return identical plans: any difference (placements, unplaced, evictions, objective,
status, model) exits 1, as does a plan the verifier did not pass (optimize verifies each).
Writes DIR/results.json and DIR/results.csv (one row per window and side).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import code_version, machine_info
from benchmarks.scale.shapes import mixed
from models import Inventory, Node, load_documents
from optimizer.config import SolveConfig
from optimizer.windows import Planner, WindowConfig, WindowResult, cut_windows

PREPARE = ("snapshot", "node_tables", "index", "prefilter")
SIDES = {"tables": True, "fresh": False}


def stream(nodes: int, agents: int, windows: int) -> Inventory:
    """`mixed` nodes and windows x agents `mixed` agents, one second apart per window."""
    docs = mixed(nodes, agents * windows)
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    k = 0
    for d in docs:
        if d["kind"] == "Pod":
            stamp = start + timedelta(seconds=k // agents)
            d["metadata"]["creationTimestamp"] = stamp.isoformat().replace("+00:00", "Z")
            k += 1
    return load_documents(docs)


def churn(nodes: list[Node], window: int, count: int) -> list[Node]:
    """`count` nodes changed as new objects: one cordon flipped, the rest relabelled."""
    out = list(nodes)
    for j in range(count):
        i = (window * 7919 + j * 104729) % len(out)
        n = out[i]
        if j == 0:
            spec = n.spec.model_copy(update={"unschedulable": not n.spec.unschedulable})
            out[i] = n.model_copy(update={"spec": spec})
        else:
            labels = {**n.labels, "size": "small" if n.labels.get("size") == "big" else "big"}
            out[i] = n.model_copy(update={"metadata": n.metadata.model_copy(
                update={"labels": labels})})
    return out


def _plan_key(result: WindowResult) -> dict[str, Any]:
    out = dataclasses.asdict(result.plan)
    out.pop("timings")
    return out


def _row(side: str, result: WindowResult, wall: float, planner: Planner) -> dict[str, Any]:
    t = result.plan.timings
    row: dict[str, Any] = {"window": result.index, "side": side,
                           "agents": result.new_agents + result.carried,
                           "placed": len(result.plan.placements), "status": result.plan.status,
                           "verified": result.plan.verified}
    row |= {k: round(t.get(k, 0.0), 6) for k in PREPARE}
    row["prepare"] = round(sum(t.get(k, 0.0) for k in PREPARE), 6)
    row |= {k: round(t.get(k, 0.0), 6) for k in ("build", "solve", "verify")}
    row["step"] = round(wall, 6)
    stats = planner.tables.stats if planner.tables is not None and side == "tables" else None
    row |= ({"rebuilt": stats.rebuilt, "nodes_changed": stats.nodes_changed,
             "pods_added": stats.pods_added, "pods_removed": stats.pods_removed,
             "columns_patched": stats.columns_patched,
             "columns_rebuilt": stats.columns_rebuilt} if stats else {})
    return row


def run(args: argparse.Namespace, console: Console) -> int:
    t = time.perf_counter()
    inv = stream(args.nodes, args.agents, args.windows)
    console.print(f"{args.nodes} nodes, {len(inv.pending)} agents loaded in "
                  f"{time.perf_counter() - t:.1f} s")
    # deterministic: one worker, a deterministic limit, no presolve (CP-SAT's presolve outran
    # the deterministic limit here: 10-12 s wall at 0.05-0.2, then nothing found)
    solve = SolveConfig(time_limit=args.time_limit, workers=1, seed=args.seed,
                        extra_parameters={"max_deterministic_time": args.det_time,
                                          "cp_model_presolve": False})
    planners = {side: Planner(inv, WindowConfig(max_agents=args.agents, max_age=1e9,
                                                incremental=inc, solve=solve), run_id=side)
                for side, inc in SIDES.items()}
    arrivals = cut_windows(inv.pending, args.agents, 1e9)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for w, batch in enumerate([*arrivals, []]):
        if not batch and not planners["tables"].waiting:
            break
        results, done = {}, {}
        for side in (list(SIDES) if w % 2 == 0 else list(reversed(SIDES))):  # who goes first
            planner = planners[side]
            t = time.perf_counter()
            results[side] = planner.step(batch)
            done[side] = _row(side, results[side], time.perf_counter() - t, planner)
        rows += [done[side] for side in SIDES]
        if _plan_key(results["tables"]) != _plan_key(results["fresh"]):
            problems.append(f"window {w}: the plans with and without node tables differ")
        problems += [f"window {w}: {side}: plan not verified"
                     for side, r in results.items() if not r.plan.verified]
        console.print(f"window {w}: prepare {rows[-2]['prepare']:.3f} s with tables, "
                      f"{rows[-1]['prepare']:.3f} s fresh; step {rows[-2]['step']:.2f} / "
                      f"{rows[-1]['step']:.2f} s")
        changed = churn(planners["tables"].inv.nodes, w, args.churn)
        for planner in planners.values():
            planner.inv.nodes = list(changed)
    summary = _summary(rows)
    _write(args.out, args, rows, summary, problems)
    _print(console, rows, summary)
    for p in problems:
        console.print(f"[red]{p}[/red]")
    console.print(f"identical plans in every window: {not problems}; written: "
                  f"{args.out / 'results.json'}, results.csv")
    return 1 if problems else 0


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the windows after the first (the first builds the tables on both sides)."""
    out: dict[str, Any] = {}
    for side in SIDES:
        later = [r for r in rows if r["side"] == side and r["window"] > 0]
        out[side] = {k: round(statistics.median(r[k] for r in later), 6) if later else None
                     for k in (*PREPARE, "prepare", "build", "solve", "step")}
    a, b = out["tables"], out["fresh"]
    if a["prepare"] is None:
        return out
    node_side = {side: out[side]["node_tables"] + out[side]["index"] for side in SIDES}
    out["node_side_seconds"] = {side: round(v, 6) for side, v in node_side.items()}
    out["node_side_speedup"] = round(node_side["fresh"] / max(node_side["tables"], 1e-9), 1)
    out["prepare_speedup"] = round(b["prepare"] / max(a["prepare"], 1e-9), 2)
    # everything after prepare is the same computation on both sides: a step's expected saving
    # is the prepare difference; the medians' difference also carries the solve's wall noise
    out["prepare_saved_seconds"] = round(b["prepare"] - a["prepare"], 6)
    out["step_median_difference_seconds"] = round(b["step"] - a["step"], 6)
    return out


def _write(out: Path, args: argparse.Namespace, rows: list[dict[str, Any]],
           summary: dict[str, Any], problems: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = {"suite": "windows", "args": {k: str(v) for k, v in vars(args).items()},
               "machine": machine_info(), "code": code_version(), "summary": summary,
               "identical_plans": not problems, "problems": problems, "windows": rows}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _print(console: Console, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    cols = ("snapshot", "node_tables", "index", "prefilter", "prepare", "build", "solve", "step")
    t = Table(title="seconds per window, with node tables and fresh")
    for col in ("window", "side", "agents", "placed", *cols):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["window"]), r["side"], str(r["agents"]), str(r["placed"]),
                  *(f"{r[c]:.3f}" for c in cols))
    console.print(t)
    a, b = summary["tables"], summary["fresh"]
    if a["prepare"] is None:
        return
    ns = summary["node_side_seconds"]
    console.print(f"medians after the first window: node tables + Index {ns['tables']:.3f} s with "
                  f"tables vs {ns['fresh']:.3f} s fresh ({summary['node_side_speedup']}x); "
                  f"prepare {a['prepare']:.3f} vs {b['prepare']:.3f} s "
                  f"({summary['prepare_speedup']}x); step {a['step']:.2f} vs {b['step']:.2f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.windows", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=20_000)
    ap.add_argument("--agents", type=int, default=200, help="agents per window")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--churn", type=int, default=2, help="nodes changed between windows")
    ap.add_argument("--det-time", type=float, default=1.0,
                    help="CP-SAT max_deterministic_time per solve phase (default 1.0)")
    ap.add_argument("--time-limit", type=float, default=120.0,
                    help="wall-clock limit per window, a safety net above the deterministic one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench-out/windows"))
    return run(ap.parse_args(argv), Console(width=140))


if __name__ == "__main__":
    sys.exit(main())
