"""PNG figures for `agentplace whatif --plot` and `agentplace sweep --plot` (matplotlib, Agg).

Kept apart from the optimizer: figures are presentation, and importing matplotlib costs time
the solver path should not pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESOURCES = ("cpu", "memory", "nvidia.com/gpu")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _values(rows: Sequence[dict[str, Any]], side: str, res: str) -> list[float]:
    return [100.0 * (r[side] or {}).get(res, 0.0) if r[side] else 0.0 for r in rows]


def plot_whatif(result: dict[str, Any], path: str | Path) -> Path:
    """Utilisation before/after per zone (top) and per node (bottom), one bar pair each."""
    plt = _pyplot()
    import numpy as np

    zones, nodes = result["zones"], result["nodes"]
    present = [r for r in RESOURCES if any(r in (z["before"] or {}) or r in (z["after"] or {})
                                           for z in zones)]
    fig, axes = plt.subplots(2, len(present), figsize=(max(8, 4.5 * len(present)), 8.5),
                             squeeze=False)
    for col, res in enumerate(present):
        for row, (rows, what) in enumerate(((zones, "zone"), (nodes, "node"))):
            rows = [r for r in rows if res in (r["before"] or {}) or res in (r["after"] or {})]
            ax = axes[row][col]
            x = np.arange(len(rows))
            ax.bar(x - 0.2, _values(rows, "before", res), 0.4, label="baseline", color="#8da0cb")
            ax.bar(x + 0.2, _values(rows, "after", res), 0.4, label="scenario", color="#fc8d62")
            ax.set_xticks(x)
            labels = [r["name"] if what == "zone" else r["name"].split(".")[0] for r in rows]
            ax.set_xticklabels(labels, rotation=90 if what == "node" else 0,
                               fontsize=6 if what == "node" else 9)
            ax.set_ylabel(f"{res} requested / allocatable (%)")
            ax.set_ylim(0, 105)
            ax.set_title(f"{res} per {what}")
            if row == 0 and col == 0:
                ax.legend(loc="upper right", fontsize=8)
    c = result["summary"]["counts"]
    fig.suptitle(f"what-if {result['scenario']['name']}: {c['moved']} moved, "
                 f"{c['newly_unplaced']} newly unplaced, {c['evicted']} evicted "
                 "(a missing bar: no such node or zone on that side)", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_sweep(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One point per scenario: spend per hour against agents left unplaced; and the unplaced
    count per scenario, sorted, so the worst scenarios stand out."""
    plt = _pyplot()

    ok = [r for r in rows if not r.get("error")]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5))
    dots = a.scatter([r["spend_per_hour"] for r in ok], [r["unplaced"] for r in ok],
                     c=[r["evicted"] for r in ok], cmap="viridis", s=28)
    fig.colorbar(dots, ax=a, label="pods evicted")
    a.set_xlabel("spend per hour (PricingTable's currency, assumed prices)")
    a.set_ylabel("agents unplaced")
    a.set_title("one point per scenario")
    worst = sorted(ok, key=lambda r: (-r["unplaced"], r["scenario"]))
    b.bar(range(len(worst)), [r["unplaced"] for r in worst], color="#fc8d62", label="unplaced")
    b.bar(range(len(worst)), [r["newly_unplaced"] for r in worst], color="#8da0cb",
          label="of which placed in the baseline")
    b.set_xticks(range(len(worst)))
    b.set_xticklabels([r["scenario"] for r in worst], rotation=90, fontsize=6)
    b.set_ylabel("agents")
    b.legend(fontsize=8)
    b.set_title("unplaced per scenario")
    failed = len(rows) - len(ok)
    fig.suptitle(f"sweep: {len(rows)} scenarios" + (f", {failed} failed" if failed else ""))
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
