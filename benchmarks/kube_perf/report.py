"""The kube-perf table, results.json and results.csv."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.kube_perf.suite import GREEDY, OURS


def _f(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _top_phases(timings: dict[str, float] | None, k: int = 2, untimed: float | None = None) -> str:
    if not timings:
        return "–"
    phases = dict(timings)
    if untimed is not None:
        phases["untimed"] = untimed
    top = sorted(phases.items(), key=lambda kv: -kv[1])[:k]
    return " ".join(f"{name} {sec:.2f}" for name, sec in top)


def table(records: Sequence[dict[str, Any]], title: str) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for head, just in (("shape", "left"), ("nodes", "right"), ("init", "right"),
                       ("pods", "right"), ("ours\nplaced", "right"), ("greedy\nplaced", "right"),
                       ("ours\npods/s", "right"), ("greedy\npods/s", "right"),
                       ("floor\npods/s", "right"), ("ours\n/floor", "right"),
                       ("greedy\n/floor", "right"), ("status", "left"), ("gap", "right"),
                       ("ours s", "right"), ("ours top phases (s)", "left"),
                       ("greedy s\n(verify)", "right"),
                       ("verified\nours/greedy", "left")):
        t.add_column(head, justify=just)  # type: ignore[arg-type]
    for r in records:
        if r.get("skipped"):
            continue
        o, g = r["methods"].get(OURS, {}), r["methods"].get(GREEDY, {})
        s = r["sizes"]
        t.add_row(r["key"], str(s["nodes"]), str(s["init_pods"]), str(s["measure_pods"]),
                  _f(o.get("placed")), _f(g.get("placed")), _f(o.get("throughput")),
                  _f(g.get("throughput")), _f(r.get("floor"), 0), _f(o.get("vs_floor"), 2),
                  _f(g.get("vs_floor"), 2), _f(o.get("status")),
                  _f(o.get("gap"), 6) if o.get("gap") is not None else "–",
                  _f(o.get("seconds"), 2), _top_phases(o.get("timings"), 2, o.get("untimed_seconds")),
                  f"{_f(g.get('seconds'), 2)} ({_f((g.get('timings') or {}).get('verify'), 2)})",
                  f"{_f(o.get('verified'))}/{_f(g.get('verified'))}")
    return t


def print_report(console: Console, records: Sequence[dict[str, Any]], title: str) -> None:
    console.print(table(records, title))
    skipped = [r for r in records if r.get("skipped")]
    if skipped:
        t = Table(title="skipped shapes", title_justify="left", header_style="bold")
        t.add_column("shape")
        t.add_column("reason")
        for r in skipped:
            t.add_row(r["key"], r["skip_reason"])
        console.print(t)
    console.print(
        "[dim]pods/s = measured pods placed / wall seconds end to end (ours: optimize(): "
        "snapshot, index, prefilter, greedy hint, build, solve, verify, explain; greedy: snapshot, "
        "index, prefilter, greedy, verify); floor = upstream scheduler_perf threshold (pods/s) "
        "of the workload, or of the test case's performance workload when the tier's size has "
        "none (floor_from in results.json); gap = (bound − objective) / |objective|.[/]")


CSV_FIELDS = ("key", "case", "workload", "config", "skipped", "skip_reason", "floor", "floor_from",
              "sizes.nodes", "sizes.init_pods", "sizes.measure_pods", "init_placement.method")
CSV_METHOD_FIELDS = ("placed", "unplaced", "seconds", "throughput", "vs_floor", "status",
                     "objective", "bound", "gap", "verified")


def _get(r: dict[str, Any], dotted: str) -> Any:
    cur: Any = r
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    methods = (OURS, GREEDY)
    phases = sorted({p for r in records for p in (_get(r, f"methods.{OURS}.timings") or {})})
    header = [*CSV_FIELDS, *(f"{m}.{f}" for m in methods for f in CSV_METHOD_FIELDS),
              *(f"{OURS}.timings.{p}" for p in phases)]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in records:
            row = [_get(r, f) for f in CSV_FIELDS]
            row += [_get(r, f"methods.{m}.{f}") for m in methods for f in CSV_METHOD_FIELDS]
            row += [_get(r, f"methods.{OURS}.timings.{p}") for p in phases]
            w.writerow(["" if v is None else v for v in row])


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, default=str))
