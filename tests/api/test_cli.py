"""The agentplace command line: plan and explain, output formats, bad input, stdin."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from tests.builders import node, pod, taint

runner = CliRunner()


@pytest.fixture
def cluster(tmp_path):
    (tmp_path / "nodes.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [
        node("n1", "2"), node("n2", "2", taints=[taint("dedicated", "gpu")]),
        node("n3", "8", unschedulable=True)]}))
    (tmp_path / "pods.yaml").write_text(yaml.safe_dump_all([
        pod("fits", "1", namespace="team"), pod("too-big", "4", namespace="team")]))
    return tmp_path


def test_plan_json_has_the_documented_schema(cluster):
    res = runner.invoke(app, ["plan", "-f", str(cluster), "-o", "json", "--time-limit", "5"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"status", "placements", "unplaced", "evictions", "objective", "bound", "gap",
            "verified", "timings", "model"} <= set(out)
    assert out["status"] == "OPTIMAL" and out["verified"] is True
    assert out["placements"] == [{"agent": "team/fits", "node": "n1"}]
    assert out["unplaced"] == [{
        "agent": "team/too-big",
        "reason": "0/3 nodes are available: 1 Insufficient cpu, "
                  "1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable. "
                  "preemption: 0/3 nodes are available: 1 No preemption victims found for "
                  "incoming pod., 2 Preemption is not helpful for scheduling.",
        "counterfactual": "fits on n3 if the node were uncordoned",
    }]
    assert out["evictions"] == []


def test_plan_yaml_and_table_outputs(cluster):
    res = runner.invoke(app, ["plan", "-f", str(cluster), "-o", "yaml"])
    assert res.exit_code == 0
    assert yaml.safe_load(res.stdout)["status"] == "OPTIMAL"
    res = runner.invoke(app, ["plan", "-f", str(cluster)])
    assert res.exit_code == 0
    assert "team/too-big" in res.stdout and "verified" in res.stdout


def test_plan_accepts_the_preemption_flags_before_preemption_exists(cluster):
    res = runner.invoke(app, ["plan", "-f", str(cluster), "--no-preemption", "--pdb",
                              "best-effort", "-o", "json"])
    assert res.exit_code == 0, res.output


def test_explain_gives_kube_reasons_per_node(cluster):
    res = runner.invoke(app, ["explain", "-f", str(cluster), "-o", "json"])
    assert res.exit_code == 0, res.output
    agents = {a["agent"]: a for a in json.loads(res.stdout)["agents"]}
    assert agents["team/fits"]["feasible"] == ["n1"]
    assert agents["team/fits"]["rejected"] == {
        "n2": "node(s) had untolerated taint {dedicated: gpu}",
        "n3": "node(s) were unschedulable"}
    assert agents["team/too-big"]["feasible"] == []
    assert agents["team/too-big"]["message"].startswith("0/3 nodes are available: ")


def test_stdin_input(cluster):
    text = (cluster / "nodes.yaml").read_text() + "---\n" + (cluster / "pods.yaml").read_text()
    res = runner.invoke(app, ["plan", "-f", "-", "-o", "json"], input=text)
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["placements"]) == 1


def test_bad_input_exits_2_naming_object_field_and_reason(tmp_path):
    bad = pod("broken", "12x", namespace="team-a")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    res = runner.invoke(app, ["plan", "-f", str(tmp_path / "bad.yaml")])
    assert res.exit_code == 2
    assert "Pod team-a/broken" in res.stderr
    assert "spec.containers[0].resources.requests.cpu" in res.stderr
    assert "Traceback" not in res.output + res.stderr


def test_missing_path_is_an_error_not_a_crash(tmp_path):
    res = runner.invoke(app, ["explain", "-f", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "no such file or directory" in res.stderr


def test_profile_and_weight_overrides_and_their_errors(cluster):
    res = runner.invoke(app, ["plan", "-f", str(cluster), "-o", "json", "--profile", "cost",
                              "--weight", "soft=2", "--weight", "balance=0.5"])
    assert res.exit_code == 0, res.output
    terms = json.loads(res.stdout)["objective_terms"]
    assert terms["profile"] == "cost"
    assert terms["terms"]["soft"]["weight"] == 2.0 and terms["terms"]["balance"]["weight"] == 0.5
    res = runner.invoke(app, ["plan", "-f", str(cluster), "--weight", "speed=1"])
    assert res.exit_code == 2 and "weights.speed: unknown term" in res.stderr
    res = runner.invoke(app, ["plan", "-f", str(cluster), "--weight", "soft"])
    assert res.exit_code == 2 and "expected TERM=NUMBER" in res.stderr
    res = runner.invoke(app, ["plan", "-f", str(cluster), "--profile", "nope"])
    assert res.exit_code == 2 and "profile 'nope': not found" in res.stderr


def test_balance_resources_option(cluster):
    res = runner.invoke(app, ["plan", "-f", str(cluster), "-o", "json", "--balance", "cpu=2"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["objective_terms"]["terms"]["balance"]["max"] == 200
    res = runner.invoke(app, ["plan", "-f", str(cluster), "--balance", "cpu"])
    assert res.exit_code == 2 and "expected RESOURCE=INTEGER" in res.stderr
