"""What-if diffs on small hand-built clusters, with the moves and unplaced agents asserted."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

from models import InputErrors
from models.scenario import parse_scenario
from optimizer import SolveConfig
from optimizer.sweep import run_sweep, write_table
from optimizer.whatif import run_whatif
from tests.builders import inventory, node, pod

ZONE = "topology.kubernetes.io/zone"
CFG = SolveConfig(time_limit=5, workers=1)
PRICING = {"apiVersion": "agentplace.io/v1alpha1", "kind": "PricingTable",
           "metadata": {"name": "flat"},
           "spec": {"nodeClasses": [{"name": "any", "pricePerHour": "1",
                                     "tokensPerSecond": {"default": "10"}}]}}


def owned(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    doc["metadata"]["ownerReferences"] = [{"kind": kind, "name": "web", "controller": True}]
    doc["metadata"]["uid"] = f"uid-{doc['metadata']['name']}"
    return doc


def zones_cluster() -> Any:
    """a1, b1, b2 with 4 cpu each; b1 and b2 run a 1-cpu pod each; four 2-cpu agents pending.
    The baseline must put two agents on a1 and one on each b node."""
    return inventory(
        node("a1", "4", labels={ZONE: "a"}), node("b1", "4", labels={ZONE: "b"}),
        node("b2", "4", labels={ZONE: "b"}),
        owned(pod("web-1", "1", namespace="t", node_name="b1", priority=100), "ReplicaSet"),
        pod("bare", "1", namespace="t", node_name="b2"),
        *(pod(f"agent-{i}", "2", namespace="t", priority=10) for i in range(1, 5)),
        PRICING,
    )


def scenario(*changes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "agentplace.io/v1alpha1", "kind": "Scenario",
            "metadata": {"name": "s", "labels": {"axis": "x"}}, "changes": list(changes), **extra}


LOSE_B = scenario({"removeNodes": {"selector": {"matchLabels": {ZONE: "b"}}}})


@pytest.fixture(scope="module")
def lose_b() -> dict[str, Any]:
    return run_whatif(zones_cluster(), LOSE_B, CFG)


def test_losing_a_zone_unplaces_agents_and_reschedules_controlled_pods(lose_b):
    s = lose_b["summary"]
    assert s["baseline"]["verified"] and s["scenario"]["verified"]
    assert (s["baseline"]["placed"], s["baseline"]["unplaced"]) == (4, 0)
    # a1 alone: web-1 (priority 100, 1 cpu) and one 2-cpu agent
    assert (s["scenario"]["placed"], s["scenario"]["unplaced"]) == (2, 3)
    # the agent that keeps its a1 slot is matched to it: nobody moves, three lose their node
    assert lose_b["moves"] == []
    assert sorted(u["was_on"] for u in lose_b["newly_unplaced"]) == ["a1", "b1", "b2"]
    assert {u["reason"] for u in lose_b["newly_unplaced"]} == {
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."}
    ev = {e["pod"]: (e["fate"], e.get("node_after")) for e in lose_b["evictions"]}
    assert ev == {"t/web-1": ("rescheduled", "a1"), "t/bare": ("lost", None)}
    assert s["counts"]["removed_nodes"] == 2 and s["counts"]["evicted"] == 2


def test_spend_per_tenant_and_utilisation_per_zone(lose_b):
    # flat 1/h per node, no token demand: an agent costs its dominant share of its node
    (t,) = lose_b["tenants"]
    assert t["name"] == "t"
    assert t["before"] == {"agents": 6, "tokens_per_hour": 0, "spend_per_hour": 2.5}
    assert t["after"] == {"agents": 2, "tokens_per_hour": 0, "spend_per_hour": 0.75}
    assert t["delta"]["spend_per_hour"] == -1.75
    zones = {z["name"]: z for z in lose_b["zones"]}
    assert zones["a"]["before"]["cpu"] == 1.0 and zones["a"]["after"]["cpu"] == 0.75
    assert zones["b"]["before"]["cpu"] == 0.75 and zones["b"]["after"] is None
    assert json.loads(json.dumps(lose_b)) == lose_b  # JSON-able as it is


def test_added_nodes_place_what_was_left_out():
    inv = inventory(node("a1", "4"), *(pod(f"agent-{i}", "2", namespace="t") for i in range(1, 4)))
    r = run_whatif(inv, scenario({"addNodes": {"copyOf": "a1", "count": 1}}), CFG)
    assert r["summary"]["baseline"]["unplaced"] == 1
    assert r["moves"] == [] and r["newly_unplaced"] == []
    assert [x["node"] for x in r["newly_placed"]] == ["a1-copy-1"]
    assert r["summary"]["counts"]["added_nodes"] == 1


def test_a_burst_with_higher_priority_pushes_the_window_out():
    inv = inventory(node("a1", "4"), *(pod(f"agent-{i}", "2", namespace="t", priority=10)
                                       for i in range(1, 3)))
    r = run_whatif(inv, scenario(
        {"addAgents": {"copyOf": "t/agent-1", "count": 2, "namePrefix": "rush"}},
        {"setPriority": {"agents": {"names": ["t/rush-1", "t/rush-2"]}, "priority": 1000}}), CFG)
    assert [a["node"] for a in r["added_agents"]] == ["a1", "a1"]
    assert sorted(u["agent"] for u in r["newly_unplaced"]) == ["t/agent-1", "t/agent-2"]
    assert r["summary"]["counts"]["added_placed"] == 2


def test_a_tighter_quota_shows_up_as_unplaced_agents_with_the_admission_reason():
    inv = inventory(node("a1", "8"), *(pod(f"agent-{i}", "2", namespace="t") for i in range(1, 4)),
                    {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "t"},
                     "spec": {"hard": {"requests.cpu": "10"}}, "status": {"used": {"requests.cpu": "0"}}})
    tighter = {"setQuota": {"namespace": "t", "name": "q", "hard": {"requests.cpu": "4"}}}
    r = run_whatif(inv, scenario(tighter), CFG)
    assert len(r["newly_unplaced"]) == 1
    assert "exceeded quota: q" in r["newly_unplaced"][0]["reason"]


def test_scenario_solve_options_override_the_commands():
    inv = inventory(node("a1", "4"), pod("agent-1", "1"))
    r = run_whatif(inv, scenario(solve={"profile": "pack", "weights": {"balance": 0.5}}), CFG)
    assert r["summary"]["baseline"]["profile"] == "balanced"
    assert r["summary"]["scenario"]["profile"] == "pack"
    assert r["scenario"]["solve"] == {"profile": "pack", "weights": {"balance": 0.5}}


def test_a_bad_scenario_document_raises_input_errors():
    with pytest.raises(InputErrors, match=r"changes\[0\]\.removeNodes\.names\[0\]: Not found"):
        run_whatif(zones_cluster(), scenario({"removeNodes": {"names": ["zz"]}}), CFG)
    with pytest.raises(InputErrors, match=r"Scenario s: solve: weights.speed: unknown term"):
        run_whatif(zones_cluster(), scenario(solve={"weights": {"speed": 1}}), CFG)


def test_the_plot_is_written(lose_b, tmp_path):
    from api.plots import plot_whatif

    out = plot_whatif(lose_b, tmp_path / "whatif.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_sweep_in_a_process_pool_writes_one_row_per_scenario(tmp_path):
    scenarios = [("a.yaml", parse_scenario(LOSE_B)),
                 ("b.yaml", parse_scenario({**scenario({"addNodes": {"copyOf": "a1", "count": 1}}),
                                            "metadata": {"name": "grow", "labels": {"axis": "y"}}}))]
    res = run_sweep(zones_cluster(), scenarios, CFG, pool=True, processes=2)
    assert res.backend == "process pool (2 processes)"
    assert [r["scenario"] for r in res.rows] == ["s", "grow"]
    assert all(not r["error"] and r["verified"] for r in res.rows)
    assert [r["newly_unplaced"] for r in res.rows] == [3, 0]
    assert [r["label.axis"] for r in res.rows] == ["x", "y"]
    path = write_table(res.rows, tmp_path / "rows.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["unplaced"] for r in rows] == ["3", "0"] and rows[0]["spend_delta"] == "-1.75"
    from api.plots import plot_sweep

    assert plot_sweep(res.rows, tmp_path / "sweep.png").stat().st_size > 10_000


def test_sweep_checks_every_scenario_before_solving_any():
    bad = parse_scenario({**scenario(solve={"profile": "nope"}), "metadata": {"name": "bad"}})
    with pytest.raises(InputErrors, match="Scenario bad: solve: profile 'nope': not found"):
        run_sweep(zones_cluster(), [("bad.yaml", bad)], CFG, pool=True)


def test_identical_agents_swapped_by_the_plan_do_not_count_as_moves():
    from models import load_documents
    from optimizer.whatif import _match

    inv = load_documents([pod("x1", "1", namespace="t"), pod("x2", "1", namespace="t"),
                          pod("y", "2", namespace="t")])
    before = {"t/x1": "n1", "t/x2": "n2", "t/y": "n1"}
    after = {"t/x1": "n2", "t/x2": "n1", "t/y": "n2"}  # the twins swapped; y really moved
    got = _match(inv, inv.pending, before, after, {})
    assert got == {"t/x1": ("n1", "n1", None), "t/x2": ("n2", "n2", None), "t/y": ("n1", "n2", None)}


def test_draining_a_node_moves_its_agents_and_respects_the_disruption_budget():
    inv = inventory(
        node("n1", "4"), node("n2", "4"),
        owned(pod("web-1", "1", namespace="t", node_name="n1", labels={"app": "web"}), "ReplicaSet"),
        owned(pod("web-2", "1", namespace="t", node_name="n1", labels={"app": "web"}), "ReplicaSet"),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "web", "namespace": "t"},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
         "status": {"disruptionsAllowed": 1}},
        pod("agent-1", "2", namespace="t"), pod("agent-2", "2", namespace="t"),
    )
    r = run_whatif(inv, scenario({"drainNodes": {"names": ["n1"]}}), CFG)
    ev = {e["pod"]: (e["fate"], e.get("node_after")) for e in r["evictions"]}
    assert ev == {"t/web-1": ("rescheduled", "n2"), "t/web-2": ("blocked", None)}
    c = r["summary"]["counts"]
    assert (c["evicted"], c["drain_blocked"], c["evicted_rescheduled"]) == (1, 1, 1)
    # n2 now holds web-1 (1 cpu): one 2-cpu agent fits; the cordoned n1 takes none
    assert r["summary"]["scenario"]["placed"] == 2 and len(r["newly_unplaced"]) == 1
    assert {m["to"] for m in r["moves"]} <= {"n2"}


def test_parquet_needs_pyarrow_and_says_so(tmp_path):
    import importlib.util

    rows = [{"scenario": "s", "unplaced": 3, "label.axis": "x"}]
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(InputErrors, match="writing Parquet needs pyarrow"):
            write_table(rows, tmp_path / "rows.parquet")
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(write_table(rows, tmp_path / "rows.parquet"))
        assert table.column("unplaced").to_pylist() == [3]
        assert table.column("label.axis").to_pylist() == ["x"]


def test_a_scenario_that_changes_nothing_has_an_empty_diff(lose_b):
    r = run_whatif(zones_cluster(), scenario(solve={"seed": 0}), CFG)
    c = r["summary"]["counts"]
    assert all(v == 0 for v in c.values()), c
    assert all(t["delta"] == {"agents": 0, "tokens_per_hour": 0, "spend_per_hour": 0.0}
               for t in r["tenants"])
    assert all(z["before"] == z["after"] for z in r["zones"])


def test_the_shipped_scenarios_apply_to_the_example_fleet():
    from pathlib import Path

    from models import load_paths
    from models.scenario import apply_scenario, load_scenario
    from optimizer.sweep import check_scenarios, load_scenarios

    root = Path(__file__).parents[2] / "examples"
    fleet = load_paths([root / "fleet"])
    zone_b = apply_scenario(fleet, load_scenario(root / "scenarios" / "lose-zone-b.yaml"))
    assert len(zone_b.removed_nodes) == 9 and zone_b.added_nodes == ["standby-1a-1", "standby-1a-2"]
    sweep = load_scenarios(root / "scenarios" / "sweep")
    assert len(sweep) == 24
    check_scenarios(fleet, sweep, SolveConfig())


def test_preemptions_only_the_scenarios_plan_makes_are_listed():
    inv = inventory(node("n1", "4"),
                    owned(pod("low", "3", namespace="t", node_name="n1", priority=1), "Job"),
                    pod("agent", "1", namespace="t", priority=10))
    burst = {"addAgents": {"copyOf": "t/agent", "count": 1, "namePrefix": "more"}}
    r = run_whatif(inv, scenario(burst), CFG)
    assert r["summary"]["baseline"]["preempted"] == 0
    (e,) = r["preemptions"]["newly_preempted"]
    assert (e["pod"], e["node"], e["priority"]) == ("t/low", "n1", 1)
    assert e["agent"] in ("t/agent", "t/more-1")
    assert r["summary"]["counts"]["newly_preempted"] == 1
    # the preempted pod no longer counts as served
    (t,) = r["tenants"]
    assert (t["before"]["agents"], t["after"]["agents"]) == (2, 2)
    r = run_whatif(inv, scenario(burst, solve={"preemption": False}), CFG)
    assert r["preemptions"]["newly_preempted"] == []
    assert [a["node"] for a in r["added_agents"]] == [None]


def budget_cluster(spent: int) -> Any:
    job = owned(pod("job-1", "1", namespace="t", node_name="b1"), "Job")
    job["metadata"]["annotations"] = {"agentplace.io/tokens-per-hour": "1000"}
    return inventory(node("a1", "4"), node("b1", "4"), job,
                     {"apiVersion": "agentplace.io/v1alpha1", "kind": "TokenBudget",
                      "metadata": {"name": "b", "namespace": "t"}, "spec": {"tokens": "1500"},
                      "status": {"spentTokens": spent}})


def test_a_pod_lost_with_its_node_releases_its_token_commitment_before_it_is_placed_again():
    # spent 1000 is job-1's own commitment: charged again on top, it would exceed 1500
    r = run_whatif(budget_cluster(1000), scenario({"removeNodes": {"names": ["b1"]}}), CFG)
    assert [(e["pod"], e["fate"], e["node_after"]) for e in r["evictions"]] == [
        ("t/job-1", "rescheduled", "a1")]
    assert r["budgets_released"] == [{"budget": "t/b", "pods": ["t/job-1"], "tokens": 1000,
                                      "dollars": 0.0}]
    assert r["warnings"] == []
    r = run_whatif(budget_cluster(400), scenario({"removeNodes": {"names": ["b1"]}}), CFG)
    assert r["evictions"][0]["fate"] == "rescheduled"
    assert r["warnings"][0].startswith("TokenBudget t/b: status holds less than the pods lost")
