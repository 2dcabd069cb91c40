"""The openb suite: data mapping, windows, the re-implemented online policies, end to end (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import cli
from benchmarks.common import default_data_dir
from benchmarks.openb import data as D
from benchmarks.openb import policies as P
from benchmarks.openb.replay import cut
from models import Inventory, load_documents
from optimizer import SolveConfig, optimize
from optimizer.gpu_cards import gpu_ask
from optimizer.index import Index
from optimizer.rules import RULES
from optimizer.scoping import tightest
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from tests.builders import node

GPU = {"alibabacloud.com/gpu-count": "2", "alibabacloud.com/gpu-milli": "2000"}


def gpu_nodes(*models: str) -> list:
    docs = [node(f"n{i}", cpu="16", memory="64Gi", extra=GPU,
                 labels={"alibabacloud.com/gpu-card-model": m}) for i, m in enumerate(models)]
    return list(load_documents(docs).nodes)


def test_a_csv_row_becomes_a_pod_with_the_card_convention_and_model_affinity() -> None:
    share = D.Row("p-1", 4000, 1024, 1, 460, ("T4", "P100"))
    whole = D.Row("p-2", 8000, 2048, 2, 1000, ())
    cpu = D.Row("p-3", 1000, 512, 0, 0, ())
    pods = D.to_pods([share, whole, cpu])
    assert [gpu_ask(p).share for p in pods] == [460, 0, 0]
    assert [gpu_ask(p).whole for p in pods] == [0, 2, 0]
    assert pods[0].requests()["cpu"] == 4000 and pods[0].requests()["memory"] == 1024 * 2**20
    term = pods[0].spec.affinity.node_affinity  # type: ignore[union-attr]
    req = term.required_during_scheduling_ignored_during_execution  # type: ignore[union-attr]
    expr = req.node_selector_terms[0].match_expressions[0]  # type: ignore[union-attr]
    assert (expr.key, expr.operator, expr.values) == ("alibabacloud.com/gpu-card-model", "In",
                                                      ["T4", "P100"])
    assert pods[1].spec.affinity is None


def test_tuning_reaches_the_ratio_of_capacity_and_shuffles_deterministically() -> None:
    rows = [D.Row(f"p{i}", 1000, 1, 1, 500, ()) for i in range(10)]  # 5 GPUs of demand
    up = D.tune(rows, 4000, 1.3, seed=1)  # target 5200 milli
    assert 5000 <= sum(r.gpu_total for r in up) <= 5200 and len(up) == 10
    down = D.tune(rows, 2000, 1.0, seed=1)  # target 2000 milli
    assert sum(r.gpu_total for r in down) <= 2000
    assert [r.name for r in D.tune(rows, 4000, 1.3, 7)] == [r.name for r in D.tune(rows, 4000, 1.3, 7)]


def test_windows_close_at_size_and_at_every_ten_percent_of_demand() -> None:
    demand = np.array([3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0])
    assert cut(demand, 2) == [(0, 2), (2, 3), (3, 5), (5, 6), (6, 7)]


def test_online_policies_respect_cards_models_and_cpu() -> None:
    nodes = gpu_nodes("T4", "P100")
    rows = [D.Row("a", 1000, 1, 1, 600, ("P100",)), D.Row("b", 1000, 1, 1, 600, ("P100",)),
            D.Row("c", 1000, 1, 1, 600, ("P100",)),  # a third 600m share fits no P100 card
            D.Row("d", 15000, 1, 2, 1000, ()),  # two whole cards: only the T4 node has them
            D.Row("e", 2000, 1, 0, 0, ())]  # cpu: the T4 node has 1 core left, P100 has 13
    for policy in P.POLICIES:
        res = P.replay_online(policy, nodes, rows, seed=0, typical=rows)
        assert res.node_of[:4] == [1, 1, -1, 0], policy
        assert res.node_of[4] == 1, policy
        assert sorted(res.cards_of[0] + res.cards_of[1]) == [0, 1], policy
        assert res.allocated[-1] == 3200


def test_fgd_fragmentation_counts_what_typical_pods_cannot_use() -> None:
    c = P.Cluster.of(gpu_nodes("T4"))
    tp = P.typical_pods([D.Row("s", 1000, 1, 1, 500, ()), D.Row("w", 1000, 1, 2, 1000, ())],
                        c.models)
    assert P.frag(tp, c.cpu, c.free, c.model).tolist() == [0.0]  # both fit an empty node
    free = np.array([[500, 1000]])  # a share on card 0: the 2-GPU pod no longer fits
    assert P.frag(tp, c.cpu, free, c.model).tolist() == [0.5 * 1500]


def test_gpu_soft_penalty_keeps_cpu_agents_off_nodes_with_free_gpus() -> None:
    inv = Inventory(nodes=gpu_nodes("T4") + list(load_documents([node("cpu-only", cpu="16")]).nodes),
                    pods=D.to_pods([D.Row("cpu-agent", 8000, 1, 0, 0, ())]))
    plan = optimize(inv, SolveConfig(time_limit=5, workers=1, profile="gpu"))
    assert plan.assignment() == {"openb/cpu-agent": "cpu-only"}


def test_the_neighbourhood_keeps_the_tightest_nodes_and_the_hint() -> None:
    nodes = gpu_nodes("T4", "T4", "T4")
    inv = Inventory(nodes=nodes, pods=D.to_pods([D.Row("a", 1000, 1, 1, 500, ())]))
    ix = Index(build_snapshot(inv))
    _, full = prefilter(ix)
    keep = np.zeros_like(full)
    keep[0, 2] = True
    got = tightest(ix, full, 1, keep, RULES)
    assert int(got.sum()) == 2 and got[0, 2]


@pytest.mark.slow
def test_openb_smoke_tier_end_to_end(tmp_path: Path) -> None:
    data = default_data_dir()
    if not (data / D.DATA_DIR / D.NODE_YAML).is_file():
        pytest.skip(f"no openb data under {data}")
    out = tmp_path / "out"
    assert cli.main(["openb", "--tier", "smoke", "--out", str(out), "--data", str(data)]) == 0
    doc = json.loads((out / "results.json").read_text())
    wl = doc["workloads"][0]
    assert doc["parameters"]["window"] == 100 and doc["machine"]["versions"]["ortools"]
    for name, m in wl["methods"].items():
        assert m["violations"] == [], name
        assert 50.0 < m["alloc_pct"]["100"] <= 100.0, name
    assert set(wl["methods"]) >= {"agentplace", "kube-greedy", "FGD (ours)", "BestFit (ours)"}
    assert (out / "results.csv").is_file() and (out / "alloc_default.png").is_file()
