"""CP-SAT parameters measured on scale windows: `python -m benchmarks.scale.params`.

Each variant solves the same seeded window in a fresh process (benchmarks.scale.run.run_one),
so timings and peak RSS are comparable; the result says which defaults the figures support.
Variants: num_workers 1/2/8, linearization_level 0/1/2, cp_model_probing_level 0/2,
no hint, relative_gap_limit 1e-4, and the aggregated and scoped models for reference.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.common import code_version, machine_info
from benchmarks.scale.run import run_one

VARIANTS: dict[str, tuple[int | None, dict[str, Any]]] = {
    # name: (workers override, SolveConfig fields)
    "default (2 workers)": (None, {}),
    "num_workers=1": (1, {}),
    "num_workers=8": (8, {}),
    "linearization_level=0": (None, {"extra_parameters": {"linearization_level": 0}}),
    "linearization_level=2": (None, {"extra_parameters": {"linearization_level": 2}}),
    "cp_model_probing_level=0": (None, {"extra_parameters": {"cp_model_probing_level": 0}}),
    "cp_model_presolve=false": (None, {"extra_parameters": {"cp_model_presolve": False}}),
    "no hint": (None, {"hint": False}),
    "relative_gap_limit=1e-4": (None, {"extra_parameters": {"relative_gap_limit": 1e-4}}),
    "aggregate=auto": (None, {"aggregate": "auto"}),
    "scope_k=64": (None, {"scope_k": 64}),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", default="basic")
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cap", type=float, default=240.0)
    ap.add_argument("--out", type=Path, default=Path("bench-out/scale-params"))
    args = ap.parse_args(argv)
    console = Console(width=200)
    records = []
    for name, (workers, opts) in VARIANTS.items():
        r = run_one(args.shape, args.nodes, args.nodes, "agentplace", args.time_limit,
                    workers or args.workers, opts, args.cap)
        r["variant"] = name
        records.append(r)
        t = r.get("timings") or {}
        console.print(f"{name:28s} {r.get('status')!s:9s} {r.get('seconds', r.get('error'))!s:>8} s "
                      f"solve {t.get('solve', 0):6.2f} s  objective_ref {r.get('objective_ref')} "
                      f"RSS {r.get('peak_rss_mib')} MiB")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"params-{args.shape}-{args.nodes}.json").write_text(json.dumps(
        {"machine": machine_info(), "code": code_version(), "parameters": vars(args) | {
            "out": str(args.out)}, "records": records}, indent=2, default=str))
    with (args.out / f"params-{args.shape}-{args.nodes}.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "status", "seconds", "solve", "objective_ref", "placed",
                    "peak_rss_mib"])
        for r in records:
            w.writerow([r["variant"], r.get("status"), r.get("seconds"),
                        (r.get("timings") or {}).get("solve"), r.get("objective_ref"),
                        r.get("placed"), r.get("peak_rss_mib")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
