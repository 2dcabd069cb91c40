"""`agentplace whatif` and `agentplace sweep` end to end: outputs, plots, bad scenarios."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from tests.builders import node, pod

runner = CliRunner()
ZONE = "topology.kubernetes.io/zone"


@pytest.fixture
def cluster(tmp_path):
    d = tmp_path / "cluster"
    d.mkdir()
    (d / "nodes.yaml").write_text(yaml.safe_dump_all([
        node("a1", "4", labels={ZONE: "a"}), node("b1", "4", labels={ZONE: "b"})]))
    (d / "pods.yaml").write_text(yaml.safe_dump_all(
        [pod(f"agent-{i}", "2", namespace="t") for i in range(1, 5)]))
    return d


def write_scenario(path, name, *changes):
    path.write_text(yaml.safe_dump({"apiVersion": "agentplace.io/v1alpha1", "kind": "Scenario",
                                    "metadata": {"name": name}, "changes": list(changes)}))
    return path


LOSE_B = {"removeNodes": {"selector": {"matchLabels": {ZONE: "b"}}}}


def test_whatif_json_and_plot(cluster, tmp_path):
    sc = write_scenario(tmp_path / "s.yaml", "lose-b", LOSE_B)
    png = tmp_path / "u.png"
    res = runner.invoke(app, ["whatif", "-f", str(cluster), "--scenario", str(sc), "-o", "json",
                              "--time-limit", "5", "--plot", str(png), "--plans"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["summary"]["counts"]["newly_unplaced"] == 2
    assert sorted(u["was_on"] for u in out["newly_unplaced"]) == ["b1", "b1"]
    assert out["plans"]["scenario"]["verified"] and out["plans"]["baseline"]["verified"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_whatif_table(cluster, tmp_path):
    sc = write_scenario(tmp_path / "s.yaml", "lose-b", LOSE_B)
    res = runner.invoke(app, ["whatif", "-f", str(cluster), "--scenario", str(sc), "--time-limit", "5"])
    assert res.exit_code == 0, res.output
    for text in ("What-if lose-b", "Newly unplaced (2)", "Utilisation per zone", "Tenants"):
        assert text in res.stdout


def test_whatif_bad_scenario_exits_2_naming_the_field(cluster, tmp_path):
    sc = write_scenario(tmp_path / "s.yaml", "typo", {"removeNodes": {"names": ["b9"]}})
    res = runner.invoke(app, ["whatif", "-f", str(cluster), "--scenario", str(sc)])
    assert res.exit_code == 2
    assert "Scenario typo: changes[0].removeNodes.names[0]: Not found: no Node named 'b9'" in res.stderr


def test_sweep_without_ray_uses_a_process_pool_and_says_so(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr("optimizer.sweep.ray_installed", lambda: False)
    d = tmp_path / "scenarios"
    d.mkdir()
    write_scenario(d / "1.yaml", "lose-b", LOSE_B)
    write_scenario(d / "2.yaml", "grow", {"addNodes": {"copyOf": "a1", "count": 1}})
    table = tmp_path / "rows.csv"
    res = runner.invoke(app, ["sweep", "-f", str(cluster), "--scenarios", str(d), "--out", str(table),
                              "--processes", "1", "--time-limit", "5"])
    assert res.exit_code == 0, res.output
    assert "Ray is not installed" in res.stderr and "process pool of 1 process instead" in res.stderr
    rows = {r["scenario"]: r for r in csv.DictReader(table.open())}
    assert rows["lose-b"]["newly_unplaced"] == "2" and rows["grow"]["newly_placed"] == "0"


def test_sweep_reports_every_bad_scenario_before_running(cluster, tmp_path):
    d = tmp_path / "scenarios"
    d.mkdir()
    write_scenario(d / "1.yaml", "a", {"drainNodes": {}})
    write_scenario(d / "2.yaml", "b", LOSE_B)
    write_scenario(d / "3.yaml", "b", LOSE_B)
    res = runner.invoke(app, ["sweep", "-f", str(cluster), "--scenarios", str(d), "--pool"])
    assert res.exit_code == 2
    assert "Scenario a: changes[0].drainNodes.names: Required value" in res.stderr
    assert "Scenario b: metadata.name: Duplicate value" in res.stderr
