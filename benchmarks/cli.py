"""`python -m benchmarks SUITE [--tier smoke|standard|stress] [--time-limit S] [--workers N]
[--out DIR] [--data DIR] [--limit K]`

Suites: vbp (vector bin packing on academic instances), kube-perf (kube-scheduler's scheduler_perf
workloads: throughput of agentplace and the kube-like greedy against upstream's floors), scale
(time and peak memory vs window size up to 50,000 x 50,000, log-log plot), tianchi (the Alibaba
2018 scheduling competition: co-location rules, official cost), latency (end-to-end latency of
50-agent x 500-node windows with every hard rule), openb (the Alibaba openb GPU cluster replay,
whole and fractional GPUs per card).

The data directory comes from --data, else $AGENTPLACE_DATA, else ../shared/data relative to the
repository root; when it is absent the suite prints why it is skipped and exits 0.
Exit status: 0 done (or skipped for lack of data), 1 a plan failed the verifier or the results
are inconsistent with a known optimum / proven bound, 2 usage error or suite not implemented.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from benchmarks.common import DATA_ENV, resolve_data_dir

EXIT_USAGE = 2
PLANNED: dict[str, str] = {}  # suites registered before they exist (exit 2)


def _vbp(args: argparse.Namespace, console: Console) -> int:
    from benchmarks.vbp.run import run  # imported late: keeps `--help` and the stubs fast

    return run(args, resolve_data_dir(args.data), console)


def _kube_perf(args: argparse.Namespace, console: Console) -> int:
    from benchmarks.kube_perf.run import run

    return run(args, resolve_data_dir(args.data), console)


def _scale(args: argparse.Namespace, console: Console) -> int:
    from benchmarks.scale.run import run

    return run(args, console)


def _openb(args: argparse.Namespace, console: Console) -> int:
    from benchmarks.openb.run import run

    return run(args, resolve_data_dir(args.data), console)


def _tianchi(args: argparse.Namespace, console: Console) -> int:
    from benchmarks.tianchi.run import run

    return run(args, resolve_data_dir(args.data), console)


def _latency(args: argparse.Namespace, console: Console) -> int:
    from benchmarks.latency.run import run

    return run(args, console)


SUITES: dict[str, Callable[[argparse.Namespace, Console], int] | None] = {
    "vbp": _vbp, "kube-perf": _kube_perf, "scale": _scale, "tianchi": _tianchi,
    "latency": _latency, "openb": _openb, **dict.fromkeys(PLANNED),
}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", choices=list(SUITES), metavar="SUITE",
                    help=f"one of: {', '.join(SUITES)}")
    ap.add_argument("--tier", choices=("smoke", "standard", "stress"), default="smoke",
                    help="smoke: n <= 60, standard: n 120-250, stress: n ~ 500 (default smoke)")
    ap.add_argument("--time-limit", type=float, default=None, metavar="S",
                    help="seconds per solver call, CP-SAT and CBC alike "
                         "(default: smoke 1, standard 10, stress 30)")
    ap.add_argument("--workers", type=int, default=2, metavar="N",
                    help="CP-SAT workers and CBC threads (default 2)")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="results.json, results.csv and plots (default bench-out/SUITE-TIER)")
    ap.add_argument("--data", default=None, metavar="DIR",
                    help=f"data directory (default ${DATA_ENV}, else ../shared/data)")
    ap.add_argument("--limit", type=int, default=None, metavar="K",
                    help="at most K instances per class, a fixed seeded sample "
                         "(default: smoke 2, standard 3, stress 2; 0 = all)")
    ap.add_argument("--max-instances", type=int, default=None, metavar="N",
                    help="at most N instances in all, taken one class at a time")
    ap.add_argument("--sets", default=None, metavar="LIST",
                    help="comma-separated sets to run: Panigrahy,New,Triplet,CT01 (default all)")
    ap.add_argument("--seed", type=int, default=0, help="sampling, item shuffle and CP-SAT seed")
    ap.add_argument("--window", type=int, default=None, metavar="N",
                    help="openb: arrivals per window (default: smoke 100, standard/stress 400)")
    ap.add_argument("--no-milp", action="store_true", help="skip the PuLP/CBC baseline")
    ap.add_argument("--solve-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="set a further optimizer SolveConfig field, e.g. symmetry_breaking=true "
                         "(repeatable; values are read as JSON, else as a string)")
    scale = ap.add_argument_group("scale suite")
    scale.add_argument("--methods", default=None, metavar="LIST",
                       help="scale: comma-separated subset of greedy,agentplace,"
                            "agentplace+aggregate,agentplace+scope,agentplace+partition (default all)")
    scale.add_argument("--scope-k", type=int, default=64, metavar="K",
                       help="scale: SolveConfig.scope_k for agentplace+scope (default 64)")
    scale.add_argument("--partitions", type=int, default=4, metavar="K",
                       help="scale: SolveConfig.partitions for agentplace+partition (default 4)")
    scale.add_argument("--cap", type=float, default=300.0, metavar="S",
                       help="scale: wall-clock cap per run, after which it counts as TIMEOUT")
    scale.add_argument("--max-nodes", type=int, default=None, metavar="N",
                       help="scale: skip sizes above N nodes")
    return ap


def solve_options(pairs: list[str]) -> tuple[tuple[str, Any], ...]:
    """KEY=VALUE strings -> SolveConfig fields, checked against the dataclass."""
    from optimizer.config import SolveConfig

    fields = {f.name for f in dataclasses.fields(SolveConfig)}
    reserved = {"time_limit", "workers", "seed", "strategy"}
    out = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields or key in reserved:
            allowed = ", ".join(sorted(fields - reserved))
            raise ValueError(f"--solve-opt {pair!r}: expected KEY=VALUE with KEY one of {allowed}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.append((key, value))
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 220)
    run = SUITES[args.suite]
    if run is None:
        console.print(f"[red]suite {args.suite!r} is not implemented yet[/] "
                      f"(planned: {PLANNED[args.suite]}). Implemented: "
                      f"{', '.join(k for k, v in SUITES.items() if v is not None)}.")
        return EXIT_USAGE
    if args.workers < 1 or (args.time_limit is not None and args.time_limit <= 0):
        console.print("[red]--workers must be >= 1 and --time-limit > 0[/]")
        return EXIT_USAGE
    if args.limit is not None and args.limit < 0:
        console.print("[red]--limit must be >= 0[/]")
        return EXIT_USAGE
    try:
        args.solve_options = solve_options(args.solve_opt)
    except ValueError as e:
        console.print(f"[red]{e}[/]")
        return EXIT_USAGE
    return run(args, console)
