"""benchmarks.windows end to end on a small stream: both sides run every window in lockstep,
plans compared, node tables updated (not rebuilt) after the first window, results written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from benchmarks import windows


def test_a_small_stream_runs_both_sides_with_identical_plans_and_writes_results(tmp_path: Path):
    out = tmp_path / "out"
    rc = windows.main(["--nodes", "60", "--agents", "10", "--windows", "3", "--churn", "3",
                       "--det-time", "0.5", "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "results.json").read_text())
    assert result["identical_plans"] is True and result["problems"] == []
    rows = result["windows"]
    assert [(r["window"], r["side"]) for r in rows] == [
        (w, s) for w in range(3) for s in ("tables", "fresh")]
    assert all(r["verified"] for r in rows)
    tables = [r for r in rows if r["side"] == "tables"]
    assert [r["rebuilt"] for r in tables] == [True, False, False]
    assert all(r["nodes_changed"] == 3 for r in tables[1:])
    assert result["summary"]["prepare_speedup"] is not None
    with (out / "results.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


def test_churn_changes_nodes_as_new_objects_and_keeps_the_rest():
    nodes = windows.stream(30, 1, 1).nodes
    changed = windows.churn(nodes, 0, 3)
    moved = [i for i, (a, b) in enumerate(zip(nodes, changed, strict=True)) if a is not b]
    assert len(moved) == 3
    cordoned = [i for i in moved if nodes[i].spec.unschedulable != changed[i].spec.unschedulable]
    relabelled = [i for i in moved if nodes[i].labels != changed[i].labels]
    assert len(cordoned) == 1 and len(relabelled) == 2
