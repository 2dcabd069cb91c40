"""The Tianchi suite: loader, sampling, the Kubernetes mapping, the checker and the official cost;
end to end on a tiny archive in the competition's layout, and (slow) on the real smoke tier."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks import cli
from benchmarks.common import default_data_dir
from benchmarks.tianchi import kube
from benchmarks.tianchi.cost import evaluate, official_cost
from benchmarks.tianchi.data import ARCHIVE, DATA_DIR, FILES, POINTS, load, sample, stratified_instances
from benchmarks.tianchi.suite import machine_lower_bound
from optimizer.rules.colocation import ANNOTATION
from optimizer.snapshot import build_snapshot
from optimizer.verify import verify


def series(v: float, peak: float | None = None) -> str:
    vals = [v] * POINTS
    if peak is not None:
        vals[17] = peak
    return "|".join(f"{x:.6f}" for x in vals)


def write_archive(root: Path) -> Path:
    """4 machines (2 small, 2 large), 4 apps, 8 instances, rules of every kind."""
    machines = ["machine_1,32,64,1440,7,3,7", "machine_2,32,64,1440,7,3,7",
                "machine_3,92,288,2457,7,7,9", "machine_4,92,288,2457,7,7,9"]
    apps = [f"app_1,{series(4, 10)},{series(8)},60,0,0,0",
            f"app_2,{series(2)},{series(4, 6)},40,1,0,0",
            f"app_3,{series(8)},{series(16)},100,0,1,1",
            f"app_4,{series(1)},{series(2)},20,0,0,0"]
    instances = ["inst_1,app_1,machine_1", "inst_2,app_1,machine_3", "inst_3,app_2,machine_2",
                 "inst_4,app_2,", "inst_5,app_3,machine_4", "inst_6,app_3,machine_4",
                 "inst_7,app_4,", "inst_8,app_4,machine_2"]
    rules = ["app_1,app_2,0", "app_3,app_3,1", "app_1,app_4,1", "app_4,app_4,0"]
    d = root / DATA_DIR
    d.mkdir(parents=True)
    with zipfile.ZipFile(d / ARCHIVE, "w") as zf:
        for key, rows in (("machines", machines), ("apps", apps), ("instances", instances),
                          ("rules", rules)):
            zf.writestr(f"data/{FILES[key]}", "\n".join(rows) + "\n")
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_archive(tmp_path / "data")


def test_load_reads_the_four_files(tiny: Path):
    ds = load(tiny)
    assert ds.machine_ids == ["machine_1", "machine_2", "machine_3", "machine_4"]
    assert ds.app_cpu.shape == (4, POINTS) and ds.app_cpu[0].max() == 10
    assert ds.inst_machine.tolist() == [0, 2, 1, -1, 3, 3, -1, 1]
    assert ds.rules.tolist() == [[0, 1, 0], [2, 2, 1], [0, 3, 1], [3, 3, 0]]


def test_official_cost_matches_the_formula():
    cap = np.array([32.0, 92.0])
    cpu = np.array([[16.0] * POINTS, [0.75 * 92] * POINTS])  # u = 0.5 (no penalty) and 0.75
    want = 1.0 + (1 + 10 * (math.exp(0.25) - 1))
    assert official_cost(cpu, cap) == pytest.approx(want)
    assert official_cost(np.zeros((0, POINTS)), np.zeros(0)) == 0.0


def test_checker_counts_capacity_and_rule_violations(tiny: Path):
    ds = load(tiny)
    inst = np.arange(8)
    # production: valid
    assert evaluate(ds, inst, ds.inst_machine, ds.rules).violations == 0
    # instances: 0,1 app_1; 2,3 app_2; 4,5 app_3; 6,7 app_4
    ok = np.array([2, 2, 1, 1, 3, 3, 3, 1])  # app_3 x2 (self k = 1 -> 2) + app_4 x1 on machine_4
    assert evaluate(ds, inst, ok, ds.rules).violations == 0
    assert evaluate(ds, inst, np.array([0, 2, 0, 1, 3, 3, -1, 1]), ds.rules).rule_violations == 1
    crowd = np.array([2, 2, 1, 1, 3, 3, 1, 1])  # app_4 x2 on machine_2: self k = 0 -> at most 1
    assert evaluate(ds, inst, crowd, ds.rules).rule_violations == 1
    near = np.array([0, 2, 1, 1, 3, 3, 0, 0])  # app_4 x2 next to app_1 (k = 1), and self k = 0
    assert evaluate(ds, inst, near, ds.rules).rule_violations == 2
    # capacity: every instance on a small machine (cpu peaks 10 + 10 + ... > 32)
    assert evaluate(ds, inst, np.zeros(8, dtype=np.int64), ds.rules).capacity_violations > 0


def test_mapping_to_kubernetes_objects(tiny: Path):
    ds = load(tiny)
    s = sample(ds, 8, 0)
    docs = kube.documents(ds, s)
    nodes = [d for d in docs if d["kind"] == "Node"]
    pods = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Pod"}
    assert len(pods) == 8
    assert nodes[0]["status"]["allocatable"]["cpu"] == "32000m"
    assert nodes[0]["status"]["allocatable"]["memory"] == "65536Mi"
    assert nodes[0]["status"]["allocatable"]["tianchi.alibaba.com/pm"] == "7"
    p1 = pods["inst-0"]["spec"]
    assert p1["containers"][0]["resources"]["requests"] == {
        "cpu": "10000m", "memory": "8192Mi", "ephemeral-storage": "60Gi"}  # cpu = the peak
    # k = 0, a != b: anti-affinity on the app_2 pods against app_1
    anti = pods["inst-2"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti == [{"labelSelector": {"matchLabels": {"app": "app-0"}},
                     "topologyKey": "kubernetes.io/hostname"}]
    # self k = 0: anti-affinity to its own app
    assert pods["inst-6"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"] == {
        "matchLabels": {"app": "app-3"}}
    # k >= 1: ColocationLimit entries; self-rules read k + 1
    limits = json.loads(pods["inst-4"]["metadata"]["annotations"][ANNOTATION])
    assert limits == [{"ifPresent": {"app": "app-2"}, "selector": {"app": "app-2"}, "max": 2}]
    limits = json.loads(pods["inst-7"]["metadata"]["annotations"][ANNOTATION])
    assert limits == [{"ifPresent": {"app": "app-0"}, "selector": {"app": "app-3"}, "max": 1}]


def test_the_project_verifier_and_the_checker_agree_on_the_mapping(tiny: Path):
    ds = load(tiny)
    s = sample(ds, 8, 0)
    snap = build_snapshot(kube.inventory(ds, s))
    for machine_of in (np.array([2, 2, 1, 1, 3, 3, 3, 1]), np.array([2, 2, 1, 1, 3, 3, 1, 1]),
                       np.array([0, 2, 0, 1, 3, 3, -1, 1]), np.array([0, 2, 1, 1, 3, 3, 0, 0])):
        ev = evaluate(ds, s.instances, machine_of, s.rules)
        found = verify(kube.placements(s, machine_of), snap)
        assert (ev.rule_violations > 0) == any(
            v.rule in ("InterPodAffinity", "ColocationLimit") for v in found), (machine_of, found)
    back = kube.machines_of(dict(kube.placements(s, np.array([2, 2, 1, 1, 3, 3, 3, 1]))), s)
    assert back.tolist() == [2, 2, 1, 1, 3, 3, 3, 1]


def test_stratified_sample_keeps_each_apps_share(tiny: Path):
    ds = load(tiny)
    got = stratified_instances(ds, 4, 0)
    assert len(got) == 4 and len(set(got.tolist())) == 4
    assert sorted(np.bincount(ds.inst_app[got], minlength=4).tolist()) == [1, 1, 1, 1]
    assert stratified_instances(ds, 4, 0).tolist() == got.tolist()  # seeded


def test_machine_lower_bound_covers_the_peak_demand(tiny: Path):
    ds = load(tiny)
    s = sample(ds, 8, 0)
    assert machine_lower_bound(ds, s) >= 1


def test_end_to_end_on_the_tiny_archive(tiny: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["tianchi", "--data", str(tiny), "--out", str(out), "--time-limit", "2",
                   "--workers", "1", "--max-instances", "8"])
    text = capsys.readouterr().out
    assert rc == 0, text
    res = json.loads((out / "results.json").read_text())
    assert res["ok"] and res["machine"]["cores"] and res["parameters"]["instances"] == 8
    rec = res["samples"][0]
    assert set(rec["methods"]) == {"agentplace", "FFD", "BFD", "LeastAllocated-bigfirst",
                                   "greedy-LeastAllocated", "greedy-MostAllocated", "production"}
    for m in rec["methods"].values():
        assert m["rule_violations"] == 0 and m["capacity_violations"] == 0
    assert (out / "results.csv").read_text().count("\n") == 8


def test_skip_message_without_the_data(tmp_path: Path, capsys):
    assert cli.main(["tianchi", "--data", str(tmp_path / "none")]) == 0
    assert "skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_smoke_tier_on_the_real_data(tmp_path: Path, capsys):
    data = default_data_dir()
    if not (data / DATA_DIR / ARCHIVE).is_file():
        pytest.skip(f"no Tianchi data under {data}")
    out = tmp_path / "out"
    rc = cli.main(["tianchi", "--tier", "smoke", "--data", str(data), "--out", str(out)])
    assert rc == 0, capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["ok"]
    for m in res["samples"][0]["methods"].values():
        assert m["rule_violations"] == 0 and m["capacity_violations"] == 0
