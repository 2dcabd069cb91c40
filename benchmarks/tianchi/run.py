"""`python -m benchmarks tianchi`: load the competition data, draw the tier's sample, run, report."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.common import code_version, machine_info
from benchmarks.tianchi import kube
from benchmarks.tianchi.cost import evaluate
from benchmarks.tianchi.data import archive_path, load, sample
from benchmarks.tianchi.suite import METHODS, OURS, SampleResult, TianchiConfig, run_sample

SIZES = {"smoke": 1_000, "standard": 5_000, "stress": 20_000}
DEFAULT_TIME_LIMIT = {"smoke": 10.0, "standard": 120.0, "stress": 300.0}
EXIT_OK, EXIT_FAILED = 0, 1


def production_reference(ds: Any) -> dict[str, Any]:
    """The production placement of the whole dataset (every placed instance), as a reference."""
    inst = np.arange(ds.num_instances, dtype=np.int64)
    ev = evaluate(ds, inst, ds.inst_machine, ds.rules)
    return {"placed": ev.placed, "unplaced": ev.unplaced, "machines": ev.machines_used,
            "cost": ev.cost, "rule_violations": ev.rule_violations,
            "capacity_violations": ev.capacity_violations, "max_cpu_util": ev.max_cpu_util}


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 10 else f"{v:.3f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_table(console: Console, rec: dict[str, Any]) -> None:
    t = Table(title=f"tianchi {rec['key']}: {rec['instances']:,} instances of {rec['apps']:,} apps, "
                    f"{rec['machines_offered']} machines offered, {rec['rules']:,} rules "
                    f"({rec['rules_k0']:,} with k = 0); machine lower bound "
                    f"{rec['machine_lower_bound']}", title_justify="left", header_style="bold")
    for col in ("method", "placed", "machines", "official cost", "cost / LB", "ours / it",
                "max cpu util", "rule viol.", "cap. viol.", "verifier", "status", "gap", "seconds"):
        t.add_column(col, justify="left" if col == "method" else "right")
    ok = {c.method: c.ok for c in rec["_checks"]}
    ours = rec["methods"].get(OURS, {})
    for name in METHODS:
        m = rec["methods"].get(name)
        if m is None:
            continue
        lb = rec["machine_lower_bound"]
        ratio = (ours.get("cost") / m["cost"]) if ours.get("cost") and m.get("cost") else None
        t.add_row(name, f"{m.get('placed', 0):,}/{rec['instances']:,}", _fmt(m.get("machines")),
                  _fmt(m.get("cost")), _fmt(round(m["cost"] / lb, 3) if m.get("cost") and lb else None),
                  _fmt(round(ratio, 3) if ratio and name != OURS else None),
                  _fmt(m.get("max_cpu_util")), _fmt(m.get("rule_violations")),
                  _fmt(m.get("capacity_violations")),
                  "ok" if ok.get(name) and ok.get(f"{name} (tianchi checker)") else "[red]FAIL[/]",
                  m.get("status", ""), _fmt(m.get("gap")), _fmt(m.get("seconds")))
    console.print(t)
    console.print("[dim]official cost = the competition's (1/98) Σ_t Σ_used machines "
                  "1 + 10(e^max(0, u_t − 0.5) − 1) on the placed instances (an incomplete plan's cost "
                  "is not comparable); LB = fewest pool machines covering the demand (each used "
                  "machine costs ≥ 1); ours / it = agentplace's cost over the method's; gap = CP-SAT's "
                  "on agentplace's own objective; production = instance_deploy on its own machines "
                  "(it leaves the competition's to-place instances unplaced).[/]")


CSV_FIELDS = ("placed", "unplaced", "machines", "cost", "max_cpu_util", "rule_violations",
              "capacity_violations", "status", "gap", "seconds")


def write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    head = ["key", "instances", "apps", "machines_offered", "rules", "machine_lower_bound"]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*head, "method", *CSV_FIELDS])
        for r in records:
            for name, m in r["methods"].items():
                w.writerow([r[h] for h in head] + [name] + ["" if m.get(f) is None else m.get(f)
                                                            for f in CSV_FIELDS])


def write_plots(out: Path, records: list[dict[str, Any]]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for r in records:
        names = [n for n in METHODS if n in r["methods"] and r["methods"][n].get("cost") is not None]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        costs = [r["methods"][n]["cost"] for n in names]
        machines = [r["methods"][n]["machines"] for n in names]
        axes[0].bar(names, costs, color=["C0" if n == OURS else "C7" for n in names])
        axes[0].axhline(r["machine_lower_bound"], color="black", linestyle="--", linewidth=0.8,
                        label="machine lower bound")
        axes[0].set_ylabel("official cost (lower is better)")
        axes[0].legend(fontsize=8)
        axes[1].bar(names, machines, color=["C0" if n == OURS else "C7" for n in names])
        axes[1].set_ylabel("machines used")
        for ax in axes:
            ax.tick_params(axis="x", rotation=35, labelsize=8)
        fig.suptitle(f"tianchi {r['key']}: {r['instances']:,} instances, "
                     f"{r['machines_offered']} machines offered")
        fig.tight_layout()
        p = out / f"cost_{r['key']}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths


def run(args: argparse.Namespace, data: Path, console: Console) -> int:
    if not archive_path(data).is_file():
        console.print(f"[yellow]tianchi: skipped: no {archive_path(data)} (the Alibaba 2018 "
                      "scheduling data). Pass --data DIR or set AGENTPLACE_DATA.[/]")
        return EXIT_OK
    tier = args.tier
    size = args.max_instances or SIZES[tier]
    time_limit = args.time_limit if args.time_limit is not None else DEFAULT_TIME_LIMIT[tier]
    cfg = TianchiConfig(time_limit=time_limit, workers=args.workers, seed=args.seed,
                        solve_options=getattr(args, "solve_options", ()))
    out = Path(args.out) if args.out else Path("bench-out") / f"tianchi-{tier}"
    started = dt.datetime.now(dt.UTC)
    t_start = time.perf_counter()
    machine = machine_info() | {"load_average_at_start": os.getloadavg()}
    with console.status("loading the competition data"):
        ds = load(data)
        s = sample(ds, size, args.seed)
        reference = production_reference(ds)
    parameters: dict[str, Any] = {
        "suite": "tianchi", "tier": tier, "instances": size, "time_limit": time_limit,
        "workers": args.workers, "seed": args.seed, "out": str(out), "data": str(data),
        "sampling": "app-stratified (each app its share n * size / total, largest remainders)",
        "machine_pool": "competition ratio 6,000 machines / 68,224 instances, per machine type",
        "solve_config": dataclasses.asdict(cfg.solve_config()), "mapping": kube.__doc__,
    }
    console.print(f"[bold]tianchi[/] tier={tier}: {s.size:,} instances, {s.machines.size} machines, "
                  f"{len(s.rules):,} rules; time limit {time_limit:g} s, {args.workers} workers; "
                  f"{machine['usable_cores']} cores, ortools {machine['versions']['ortools']}")
    console.print(f"production reference (whole dataset): {reference['placed']:,} placed on "
                  f"{reference['machines']:,} machines, official cost {reference['cost']:,.2f}, "
                  f"{reference['rule_violations']} rule / {reference['capacity_violations']} "
                  "capacity violations")
    key = f"n{s.size}-seed{args.seed}"
    with console.status(key) as status:
        res: SampleResult = run_sample(ds, s, key, cfg,
                                       progress=lambda msg: status.update(f"{key}: {msg}"))
    rec = res.record
    print_table(console, {**rec, "_checks": res.checks})
    violations = res.violations
    for v in violations:
        console.print(f"[bold red]VIOLATION[/] {v}")
    out.mkdir(parents=True, exist_ok=True)
    plots: list[str] = []
    try:
        plots = [str(p) for p in write_plots(out, [rec])]
    except ImportError:
        console.print("[yellow]matplotlib is not installed: no plots[/]")
    machine["load_average_at_end"] = os.getloadavg()
    payload = {
        "suite": "tianchi", "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - t_start, 3),
        "machine": machine, "code": code_version(), "parameters": parameters,
        "production_reference": reference, "ok": not violations, "violations": violations,
        "samples": [rec], "plots": plots,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    write_csv(out / "results.csv", [rec])
    console.print(f"written: {out / 'results.json'}, {out / 'results.csv'}"
                  + (f", {len(plots)} plots" if plots else ""))
    if violations:
        console.print(f"[bold red]FAILED: {len(violations)} violation(s)[/]")
        return EXIT_FAILED
    console.print("[green]every plan (ours and every baseline's) passed the verifier and the "
                  "benchmark's own checker[/]")
    return EXIT_OK
