"""`python -m benchmarks kube-perf`: discover, select a tier, build, run, verify, report."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.common import code_version, machine_info
from benchmarks.kube_perf import report
from benchmarks.kube_perf.suite import OURS, KubePerfConfig, ShapeResult, run_shape, skipped_record
from benchmarks.kube_perf.workloads import (
    DATA_DIR,
    SMOKE_NODES,
    SMOKE_PODS,
    discover,
    floor_for,
    select,
)
from benchmarks.kube_perf.workloads import __doc__ as MAPPING

DEFAULT_TIME_LIMIT = {"smoke": 5.0, "standard": 30.0, "stress": 60.0}
EXIT_OK, EXIT_FAILED = 0, 1


def run(args: argparse.Namespace, data: Path, console: Console) -> int:
    root = data / DATA_DIR
    workloads = discover(data) if root.is_dir() else []
    if not workloads:
        console.print(f"[yellow]kube-perf: skipped: no scheduler_perf data under {root} "
                      "(expected */performance-config.yaml and templates/). Pass --data DIR or "
                      "set AGENTPLACE_DATA.[/]")
        return EXIT_OK
    tier = args.tier
    time_limit = args.time_limit if args.time_limit is not None else DEFAULT_TIME_LIMIT[tier]
    smoke = tier == "smoke"
    cfg = KubePerfConfig(time_limit=time_limit, workers=args.workers, seed=args.seed,
                         max_nodes=SMOKE_NODES if smoke else None,
                         max_pods=SMOKE_PODS if smoke else None,
                         solve_options=getattr(args, "solve_options", ()))
    out = Path(args.out) if args.out else Path("bench-out") / f"kube-perf-{tier}"
    started = dt.datetime.now(dt.UTC)
    t_start = time.perf_counter()
    chosen = select(workloads, tier)
    cases = [c.strip() for c in args.sets.split(",")] if getattr(args, "sets", None) else None
    if cases:
        chosen = [w for w in chosen if w.case in cases]
    if args.max_instances:
        chosen = chosen[:args.max_instances]
    skipped = [skipped_record(w, reason, floor_for(w, workloads))
               for w in chosen if (reason := w.skip_reason())]
    runnable = [w for w in chosen if w.skip_reason() is None]
    machine = machine_info()
    parameters: dict[str, Any] = {
        "suite": "kube-perf", "tier": tier, "time_limit": time_limit, "workers": args.workers,
        "seed": args.seed, "max_nodes": cfg.max_nodes, "max_pods_per_op": cfg.max_pods,
        "cases": cases, "max_instances": args.max_instances, "out": str(out), "data": str(data),
        "solve_config": dataclasses.asdict(cfg.solve_config()), "mapping": MAPPING,
    }
    console.print(
        f"[bold]kube-perf[/] tier={tier}: {len(chosen)} shapes ({len(runnable)} to run, "
        f"{len(skipped)} skipped); time limit {time_limit:g} s, {args.workers} workers; "
        f"{machine['usable_cores']} cores, ortools {machine['versions']['ortools']}"
        + (f"; smoke caps: {SMOKE_NODES} nodes, {SMOKE_PODS} pods per op" if smoke else ""))

    results: list[ShapeResult] = []
    for w in runnable:
        with console.status(f"{w.key} {w.sizes()}"):
            r = run_shape(w, cfg, floor_for(w, workloads))
        results.append(r)
        o = r.record["methods"].get(OURS, {})
        console.print(f"  {w.key}: ours {o.get('placed')}/{r.record['measure_pods']} "
                      f"{o.get('status')} in {o.get('seconds', 0):.2f} s")
        for v in r.violations:
            console.print(f"[bold red]VIOLATION[/] {v}")

    records = [r.record for r in results]
    report.print_report(console, [*records, *skipped],
                        f"kube-perf {tier}: scheduler_perf shapes, agentplace vs kube-like greedy")
    violations = [v for r in results for v in r.violations]
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "suite": "kube-perf", "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - t_start, 3),
        "machine": machine, "code": code_version(), "parameters": parameters,
        "data": {"root": str(root), "workloads": len(workloads), "chosen": len(chosen),
                 "skipped": len(skipped), "run": len(runnable)},
        "ok": not violations, "violations": violations,
        "shapes": [*records, *skipped],
    }
    report.write_json(out / "results.json", payload)
    report.write_csv(out / "results.csv", [*records, *skipped])
    console.print(f"written: {out / 'results.json'}, {out / 'results.csv'}")
    if violations:
        console.print(f"[bold red]FAILED: {len(violations)} verifier violation(s)[/]")
        return EXIT_FAILED
    console.print(f"[green]all {len(records)} shapes: every plan (ours and the greedy's) passed "
                  "the verifier[/]")
    return EXIT_OK
