"""The sweep on a real local Ray runtime (ray.init(num_cpus=2)); needs the `ray` extra."""

from __future__ import annotations

import pytest

from models.scenario import parse_scenario
from optimizer import SolveConfig
from optimizer.sweep import run_sweep
from tests.optimizer.test_whatif import LOSE_B, scenario, zones_cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_sweep_runs_its_scenarios_as_ray_tasks(local_ray):
    scenarios = [("a.yaml", parse_scenario(LOSE_B))] + [
        (f"{n}.yaml", parse_scenario({**scenario({"addNodes": {"copyOf": "a1", "count": n}}),
                                      "metadata": {"name": f"grow-{n}"}}))
        for n in (1, 2, 3)]
    res = run_sweep(zones_cluster(), scenarios, SolveConfig(time_limit=5, workers=1))
    assert res.backend == "ray (existing runtime, 2 CPUs)"  # the runtime the caller started is reused
    assert local_ray.is_initialized()  # and left running for its owner
    assert [r["scenario"] for r in res.rows] == ["s", "grow-1", "grow-2", "grow-3"]
    assert all(not r["error"] and r["verified"] for r in res.rows)
    assert [r["newly_unplaced"] for r in res.rows] == [3, 0, 0, 0]
    assert [r["added_nodes"] for r in res.rows] == [0, 1, 2, 3]


def test_sweep_starts_and_stops_its_own_local_runtime():
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    res = run_sweep(zones_cluster(), [("a.yaml", parse_scenario(LOSE_B))],
                    SolveConfig(time_limit=5, workers=1), ray_address="local")
    assert res.backend.startswith("ray (local") and res.rows[0]["newly_unplaced"] == 3
    assert not ray.is_initialized()
