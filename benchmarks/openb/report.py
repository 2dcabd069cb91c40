"""The rich tables, results.json / results.csv and PNG plots of the openb suite."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HEADLINE = 100  # % of GPU demand


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def print_tables(doc: dict[str, Any], console: Console) -> None:
    p = doc["parameters"]
    for wl in doc["workloads"]:
        ours = wl["methods"]["agentplace"]["alloc_pct"].get(HEADLINE)
        t = Table(title=f"openb {wl['workload']}: {wl['nodes']} nodes, {wl['gpus']} GPUs, window "
                        f"{p['window']} arrivals; % of GPUs allocated at {HEADLINE} % demand",
                  title_justify="left")
        for col in ("method", "kind", f"alloc@{HEADLINE}", "ours ÷ it", "alloc@max",
                    f"frag@{HEADLINE}", "placed", "time s", "verified", "solver"):
            t.add_column(col, justify="left" if col in ("method", "kind", "solver") else "right")
        last = max(int(k) for k in wl["methods"]["agentplace"]["alloc_pct"])
        for name, m in wl["methods"].items():
            a = m["alloc_pct"].get(HEADLINE)
            solver = ""
            if "solver" in m:
                s = m["solver"]
                solver = (f"{s['windows']} windows, {s['optimal']} optimal, {s['fallback']} "
                          f"fallback, mean gap {_fmt(s['mean_gap'])}")
            t.add_row(name, m.get("kind", ""), _fmt(a),
                      _fmt(round(ours / a, 4)) if ours is not None and a else "",
                      _fmt(m["alloc_pct"].get(last)), _fmt(m["frag_pct"].get(HEADLINE)),
                      str(m.get("placed", "")), _fmt(m.get("seconds")),
                      "yes" if not m["violations"] else f"NO ({len(m['violations'])})", solver)
        for name, m in wl.get("published", {}).items():
            a = m["alloc_pct"].get(HEADLINE)
            t.add_row(f"{name} (published)", "FGD simulator, 10 seeds", _fmt(a),
                      _fmt(round(ours / a, 4)) if ours is not None and a else "",
                      _fmt(m["alloc_pct"].get(last)), _fmt(m["frag_pct"].get(HEADLINE)), "", "",
                      "", "")
        console.print(t)


def write_outputs(doc: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "results.csv"]
    paths[0].write_text(json.dumps(doc, indent=1, default=str))
    with paths[1].open("w", newline="") as f:
        w = csv.writer(f)
        marks = sorted({int(k) for wl in doc["workloads"] for m in wl["methods"].values()
                        for k in m["alloc_pct"]})
        w.writerow(["workload", "method", "kind", *[f"alloc_{k}" for k in marks],
                    *[f"frag_{k}" for k in marks], "seconds", "verified"])
        for wl in doc["workloads"]:
            rows = [(n, m.get("kind", ""), m) for n, m in wl["methods"].items()]
            rows += [(f"{n} (published)", "published", m) for n, m in wl.get("published", {}).items()]
            for name, kind, m in rows:
                w.writerow([wl["workload"], name, kind,
                            *[m["alloc_pct"].get(k, m["alloc_pct"].get(str(k))) for k in marks],
                            *[m["frag_pct"].get(k, m["frag_pct"].get(str(k))) for k in marks],
                            m.get("seconds", ""), "" if kind == "published" else not m.get("violations")])
    paths += _plots(doc, out)
    return paths


def _plots(doc: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    for wl in doc["workloads"]:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for name, m in wl["methods"].items():
            xs = sorted(int(k) for k in m["alloc_pct"])
            style = "-" if name == "agentplace" else "--"
            axes[0].plot(xs, [m["alloc_pct"][k] for k in xs], style, marker="o", ms=3, label=name)
            axes[1].plot(xs, [m["frag_pct"].get(k) for k in xs], style, marker="o", ms=3, label=name)
        for name, m in wl.get("published", {}).items():
            xs = sorted(int(k) for k in m["alloc_pct"] if m["alloc_pct"][k] is not None)
            axes[0].plot(xs, [m["alloc_pct"][k] for k in xs], ":", label=f"{name} (published)")
        axes[0].plot([0, 130], [0, 100], color="grey", lw=0.5)
        axes[0].set(xlabel="arrived GPU demand, % of capacity", ylabel="% of GPUs allocated",
                    title=f"{wl['workload']}: allocation")
        axes[1].set(xlabel="arrived GPU demand, % of capacity", ylabel="fragmentation, % of GPUs",
                    title="FGD fragmentation measure")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"alloc_{wl['workload']}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
