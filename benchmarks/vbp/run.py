"""`python -m benchmarks vbp`: load, select, run, verify, report."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from benchmarks.common import code_version, machine_info
from benchmarks.vbp import report
from benchmarks.vbp.instances import (
    CAPRARA_TOTH,
    MOMMESSIN,
    TIERS,
    discover,
    load_instances,
    round_robin,
    sample,
    select,
)
from benchmarks.vbp.suite import OURS, InstanceResult, VbpConfig, run_instance, skipped_record

DEFAULT_TIME_LIMIT = {"smoke": 1.0, "standard": 10.0, "stress": 30.0}
DEFAULT_LIMIT = {"smoke": 2, "standard": 3, "stress": 2}  # instances per class; --limit 0 = all
EXIT_OK, EXIT_FAILED = 0, 1


def run(args: argparse.Namespace, data: Path, console: Console) -> int:
    if not ((data / MOMMESSIN).is_dir() or (data / CAPRARA_TOTH).is_dir()):
        console.print(f"[yellow]vbp: skipped: no VBP data under {data} (expected {MOMMESSIN}/ "
                      f"and/or {CAPRARA_TOTH}/). Pass --data DIR or set AGENTPLACE_DATA.[/]")
        return EXIT_OK
    tier = args.tier
    time_limit = args.time_limit if args.time_limit is not None else DEFAULT_TIME_LIMIT[tier]
    limit = args.limit if args.limit is not None else DEFAULT_LIMIT[tier]
    limit = None if limit == 0 else limit
    sets = [s.strip() for s in args.sets.split(",")] if args.sets else None
    out = Path(args.out) if args.out else Path("bench-out") / f"vbp-{tier}"
    cfg = VbpConfig(time_limit=time_limit, workers=args.workers, seed=args.seed,
                    milp=not args.no_milp, solve_options=getattr(args, "solve_options", ()))
    started = dt.datetime.now(dt.UTC)
    t_start = time.perf_counter()

    files, notes = discover(data)
    tier_files = select(files, tier, sets)
    loaded = load_instances(data, tier_files, args.seed)
    skipped = [skipped_record(i, reason) for i in loaded if (reason := i.skip_reason())]
    runnable = [i for i in loaded if i.skip_reason() is None]
    chosen = round_robin(sample(runnable, tier, limit, args.seed), args.max_instances)
    machine = machine_info()
    parameters: dict[str, Any] = {
        "suite": "vbp", "tier": tier, "tier_n_range": TIERS[tier], "time_limit": time_limit,
        "workers": args.workers, "seed": args.seed, "limit_per_class": limit,
        "max_instances": args.max_instances, "sets": sets, "out": str(out), "data": str(data),
        "strategy": "MostAllocated", "solve_config": dataclasses.asdict(cfg.solve_config()),
        "milp": cfg.milp, "milp_warm_start": cfg.milp_warm_start, "item_order": "seeded shuffle",
    }
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    console.print(
        f"[bold]vbp[/] tier={tier} (n in {TIERS[tier]}): {len(tier_files)} files, "
        f"{len(skipped)} skipped (not representable), {len(chosen)} to run; "
        f"time limit {time_limit:g} s, {args.workers} workers; {machine['usable_cores']} cores, "
        f"ortools {machine['versions']['ortools']}, pulp {machine['versions']['pulp']}")
    for reason, count in _count_reasons(skipped).items():
        console.print(f"  [yellow]skipped {count}[/]: {reason}")

    results: list[InstanceResult] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("vbp", total=len(chosen))
        for inst in chosen:
            progress.update(task, description=f"{inst.key} (n={inst.n}, d={inst.d})")
            r = run_instance(inst, cfg)
            results.append(r)
            for v in r.violations:
                progress.console.print(f"[bold red]VIOLATION[/] {v}")
            for e in r.errors:
                progress.console.print(f"[bold red]INCONSISTENT[/] {e}")
            progress.advance(task)

    records = [r.record for r in results]
    summary = report.summarise([*records, *skipped])
    report.print_tables(console, summary)
    violations = [v for r in results for v in r.violations]
    errors = [e for r in results for e in r.errors]

    out.mkdir(parents=True, exist_ok=True)
    plots: list[str] = []
    try:
        plots = [str(p) for p in report.write_plots(out, records, summary)]
    except ImportError:
        console.print("[yellow]matplotlib is not installed: no plots "
                      "(pip install 'agentplace[bench]' or matplotlib)[/]")
    payload = {
        "suite": "vbp", "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - t_start, 3),
        "machine": machine, "code": code_version(), "parameters": parameters,
        "data": {"root": str(data), "notes": notes, "tier_files": len(tier_files),
                 "skipped": len(skipped), "run": len(chosen)},
        "ok": not violations and not errors,
        "violations": violations, "consistency_errors": errors,
        "summary": summary, "plots": plots,
        "instances": [*records, *skipped],
    }
    report.write_json(out / "results.json", payload)
    report.write_csv(out / "results.csv", [*records, *skipped])
    console.print(f"written: {out / 'results.json'}, {out / 'results.csv'}"
                  + (f", {len(plots)} plots" if plots else ""))
    ours_total = sum(1 for r in records if OURS in r["methods"])
    if violations or errors:
        console.print(f"[bold red]FAILED: {len(violations)} verifier violation(s), "
                      f"{len(errors)} inconsistency(ies) over {ours_total} instances[/]")
        return EXIT_FAILED
    console.print(f"[green]all {ours_total} instances: every plan (ours and every baseline's) "
                  "passed the verifier[/]")
    return EXIT_OK


def _count_reasons(skipped: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in skipped:
        reason = s["skip_reason"].split(": ", 1)[-1]
        key = f"{s['class']}: {reason}"
        out[key] = out.get(key, 0) + 1
    return out
