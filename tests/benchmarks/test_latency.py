"""The latency suite: the workload exercises every hard rule; percentiles; a short end-to-end run;
(slow) the smoke tier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import cli
from benchmarks.latency import workload
from benchmarks.latency.run import percentile
from optimizer.index import Index
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter


def test_the_window_has_50_agents_500_nodes_and_every_hard_rule():
    snap = build_snapshot(workload.inventory(3))
    assert len(snap.pending) == workload.AGENTS and len(snap.nodes) == workload.NODES
    specs = [p.spec for p in snap.pending]
    assert any(p.requests().get("nvidia.com/gpu") for p in snap.pending)  # GPU resources
    assert any(n.spec.taints for n in snap.nodes) and any(s.tolerations for s in specs)
    assert any(s.affinity and s.affinity.node_affinity for s in specs)  # node affinity
    assert any(s.affinity and s.affinity.pod_affinity for s in specs)
    assert any(s.affinity and s.affinity.pod_anti_affinity for s in specs)
    assert any(s.topology_spread_constraints for s in specs)
    assert snap.quotas and snap.token_budgets and snap.pod_groups
    assert len(set(snap.priority)) == 3
    assert any(n.spec.unschedulable for n in snap.nodes)
    # the rules do bite: some classes are kept off most nodes
    _, full = prefilter(Index(snap))
    assert full.sum(axis=1).min() < workload.NODES // 5


def test_windows_differ_and_are_seeded():
    assert workload.window(1) == workload.window(1)
    assert workload.window(1) != workload.window(2)


@pytest.mark.parametrize(("q", "want"), [(50, 5), (99, 10), (100, 10), (1, 1), (10, 1), (11, 2)])
def test_nearest_rank_percentile(q, want):
    assert percentile([float(x) for x in range(10, 0, -1)], q) == want


def test_percentile_of_nothing():
    assert percentile([], 50) is None


def test_a_short_run_end_to_end(tmp_path: Path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["latency", "--max-instances", "1", "--time-limit", "0.2", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    res = json.loads((out / "results.json").read_text())
    assert res["ok"] and len(res["windows"]) == 1
    s = res["summary"]
    assert s["p50_seconds"] > 0 and s["targets"] == {"p50_seconds": 0.25, "p99_seconds": 1.0,
                                                     "gap": 0.01}
    for w in res["windows"]:
        o = w["ours"]
        assert o["encode_seconds"] + o["solve_seconds"] + o["decode_verify_seconds"] <= o["seconds"]
    assert (out / "profile.txt").read_text().count("function calls") >= 1
    assert (out / "results.csv").read_text().count("\n") == 2


@pytest.mark.slow
def test_smoke_tier(tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert cli.main(["latency", "--tier", "smoke", "--out", str(out)]) == 0, capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["ok"] and res["summary"]["windows"] == 20
