"""`agentplace replan`: JSON migration plan, table, and clear errors for bad options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from tests.builders import node, pod

runner = CliRunner()


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    pods = []
    for i in range(3):
        p = pod(f"p{i}", "1", node_name=f"n{i}")
        p["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "rs", "uid": "rs", "controller": True}]
        pods.append(p)
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump_all(
        [node(f"n{i}") for i in range(3)] + pods))
    return tmp_path


def test_replan_json(fleet: Path) -> None:
    res = runner.invoke(app, ["replan", "-f", str(fleet), "--profile", "pack", "--max-moves", "5",
                              "-o", "json", "--time-limit", "5"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["moves"]) == 2 and len(out["freed_nodes"]) == 2
    assert [s["action"] for s in out["steps"]] == ["move", "move"]
    assert out["plan"]["verified"] is True and out["steps_verified"] is True
    assert out["budgets"]["max-moves"] == {"limit": 5, "used": 2}


def test_replan_table(fleet: Path) -> None:
    res = runner.invoke(app, ["replan", "-f", str(fleet), "--profile", "pack", "--time-limit", "5"])
    assert res.exit_code == 0, res.output
    assert "Migration plan (2 moves" in res.stdout and "frees node" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--max-moves", "-1"], "--max-moves -1: must be an integer >= 0"),
    (["--max-moves-per-node", "-3"], "--max-moves-per-node -3: must be an integer >= 0"),
    (["--max-moves-per-namespace", "-1"], "--max-moves-per-namespace -1"),
    (["--max-targets", "-1"], "--max-targets -1: must be an integer >= 0"),
    (["--move-weight", "-0.5"], "--move-weight -0.5: must be >= 0"),
    (["--profile", "nope"], "profile 'nope': not found"),
])
def test_replan_bad_options(fleet: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["replan", "-f", str(fleet), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_cronjob_manifest_is_read_only_and_its_args_run(fleet: Path) -> None:
    """deploy/replan-cronjob.yaml: RBAC only reads, and the container's own args work."""
    docs = list(yaml.safe_load_all(
        (Path(__file__).parents[2] / "deploy" / "replan-cronjob.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "CronJob"} <= set(kinds)
    verbs = {v for rule in kinds["ClusterRole"]["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    (container,) = kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["agentplace"]
    args = [str(fleet) if a == "/cluster" else a for a in container["args"]]
    args[args.index("--time-limit") + 1] = "5"
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["steps_verified"] is True
