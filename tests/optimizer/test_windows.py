"""Rolling windows: cutting, carrying, ageing, and hard caps that hold across windows."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from typer.testing import CliRunner

from api.cli import app
from models import load_documents
from optimizer import SolveConfig
from optimizer.baseline import greedy
from optimizer.index import Index
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.windows import WindowConfig, _boosted, cut_windows, replay
from tests.builders import inventory, node, pod

FAST = WindowConfig(max_agents=2, max_age=60, solve=SolveConfig(time_limit=5))


def arriving(name: str, second: int, cpu: str = "1", **kw: Any) -> dict[str, Any]:
    p = pod(name, cpu, namespace="team", **kw)
    p["metadata"]["creationTimestamp"] = f"2026-11-24T10:00:{second:02d}Z"
    return p


def test_windows_close_on_size_and_on_age():
    inv = inventory(*[arriving(f"a{i}", s) for i, s in enumerate([0, 1, 2, 30, 31, 59])])
    sizes = [[p.name for p in w] for w in cut_windows(inv.pending, max_agents=2, max_age=5)]
    assert sizes == [["a0", "a1"], ["a2"], ["a3", "a4"], ["a5"]]


def test_placements_of_earlier_windows_hold_capacity_in_later_ones():
    inv = inventory(node("n", "3"), *[arriving(f"a{i}", i) for i in range(5)])
    results = list(replay(inv, FAST))
    assert [len(r.plan.placements) for r in results] == [2, 1, 0, 0]
    assert all(r.plan.verified for r in results)
    assert results[-1].carried == 2 and results[-1].new_agents == 0


def test_a_token_budget_holds_across_windows():
    budget = {"apiVersion": "agentplace.io/v1alpha1", "kind": "TokenBudget",
              "metadata": {"name": "b", "namespace": "team"}, "spec": {"tokens": "100k"}}
    agents = []
    for i in range(4):
        a = arriving(f"a{i}", i)
        a["metadata"]["annotations"] = {"agentplace.io/tokens-per-hour": "40000"}
        agents.append(a)
    results = list(replay(inventory(node("n", "8"), budget, *agents), FAST))
    assert sum(len(r.plan.placements) for r in results) == 2
    assert results[1].plan.budgets[0]["spent_tokens"] == 80_000
    assert "80000 earlier" in results[1].plan.unplaced[0].reason


def test_a_quota_holds_across_windows():
    quota = {"apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "q", "namespace": "team"},
             "spec": {"hard": {"pods": "3"}}, "status": {"hard": {"pods": "3"}, "used": {"pods": "0"}}}
    results = list(replay(inventory(node("n", "8"), quota,
                                    *[arriving(f"a{i}", i) for i in range(5)]), FAST))
    assert sum(len(r.plan.placements) for r in results) == 3
    assert "exceeded quota: q" in results[-1].plan.unplaced[0].reason


def test_ageing_lifts_a_waiting_agent_inside_its_level_only():
    p = load_documents([arriving("a", 0, priority=100)]).pending[0]
    assert _boosted(p, waited=3, base=100, ceiling=1000, cap=10).spec.priority == 103
    assert _boosted(p, waited=30, base=100, ceiling=1000, cap=10).spec.priority == 110
    assert _boosted(p, waited=30, base=100, ceiling=102, cap=10).spec.priority == 101
    assert _boosted(p, waited=0, base=100, ceiling=1000, cap=10) is p


def test_waiting_agents_are_aged_each_window_but_never_above_the_next_level():
    cfg = WindowConfig(max_agents=2, max_age=5, solve=SolveConfig(time_limit=5))
    waiting = [arriving(f"a{i}", i, priority=100) for i in range(4)]  # the node takes two
    results = list(replay(inventory(node("n", "2"), *waiting), cfg))
    assert [r.carried for r in results] == [0, 0, 2]
    assert [r.boosted for r in results] == [0, 0, 2]
    # with an agent of priority 101 in the window, 100 + 1 would reach its level: no boost
    vip = arriving("late-vip", 30, cpu="4", priority=101)
    results = list(replay(inventory(node("n", "2"), *waiting, vip), cfg))
    assert [r.carried for r in results] == [0, 0, 2, 3]
    assert [r.boosted for r in results] == [0, 0, 0, 1]  # only the vip, with nothing above it


def test_run_command_reports_every_window(tmp_path):
    docs = [node("n", "3"), *[arriving(f"a{i}", i) for i in range(5)]]
    f = tmp_path / "stream.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    res = CliRunner().invoke(app, ["run", "-f", str(f), "--max-agents", "2", "--max-age", "60",
                                   "-o", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["windows"]
    assert [r["placed"] for r in rows] == [2, 1, 0, 0]
    assert all(r["verified"] for r in rows)


def _binder(tmp_path):
    from optimizer.binder import Binder, DryRunSink, Outbox
    return Binder(Outbox(tmp_path / "outbox.db"), DryRunSink())


def test_each_window_is_bound_through_the_binder_and_a_rerun_resumes(tmp_path):
    inv = inventory(node("n", "3"), *[arriving(f"a{i}", i) for i in range(5)])
    binder = _binder(tmp_path)
    results = list(replay(inv, FAST, binder, run_id="r1"))
    assert [r.binding.get("bound", 0) for r in results] == [2, 1, 0, 0]
    assert binder.outbox.counts()["bound"] == 3
    assert len(binder.sink.bindings) == 3
    list(replay(inv, FAST, binder, run_id="r1"))  # same run id: nothing new to bind
    assert binder.outbox.counts()["bound"] == 3 and len(binder.sink.bindings) == 3


def test_an_agent_the_binder_sends_back_waits_for_the_next_window(tmp_path, monkeypatch):
    import optimizer.windows as windows

    class RejectA0Once:
        rejected = False

        def __init__(self, snap, outbox):
            pass

        def __call__(self, agent, node):
            if agent == "team/a0" and not RejectA0Once.rejected:
                RejectA0Once.rejected = True
                return False
            return True

    monkeypatch.setattr(windows, "SnapshotFit", RejectA0Once)
    inv = inventory(node("n", "8"), *[arriving(f"a{i}", i) for i in range(3)])
    results = list(replay(inv, FAST, _binder(tmp_path), run_id="r2"))
    assert results[0].binding["sent_back"] == 1 and results[0].binding["conflict"] == 1
    assert results[1].carried == 1
    bound = [a for r in results for a in r.plan.assignment()]
    assert bound.count("team/a0") == 2  # planned again in the next window, bound there
    assert results[-1].binding["bound"] >= 1


def test_the_previous_windows_plan_warm_starts_the_next_one(capfd: Any) -> None:
    """Agents that prefer each other's company (preferred pod affinity per host): the first
    window puts two on one node; the greedy would spread the next two onto emptier nodes, the
    warm start (same kind -> the node the previous plan used) joins them, scores better, and
    CP-SAT reports that hint complete and feasible."""
    together = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "x"}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}}
    agents = [arriving(f"x{i}", i, labels={"app": "x"}, affinity=together) for i in range(4)]
    cfg = WindowConfig(max_agents=2, max_age=60, solve=SolveConfig(
        time_limit=5, weights={"balance": 0.0}, log_search=True))
    results = list(replay(inventory(node("a", "8"), node("b", "8"), node("c", "8"), *agents), cfg))
    first, second = results[0].plan, results[1].plan
    assert first.model["hint"]["source"] == "greedy"
    assert len(set(first.assignment().values())) == 1
    assert second.model["hint"]["source"] == "warm"
    assert set(second.assignment().values()) == set(first.assignment().values())
    assert second.model["hint"]["objective"] <= second.objective
    assert second.objective_terms["terms"]["soft"]["value"] == 0
    out = capfd.readouterr().out
    # every window's hint, the warm one included, was complete and feasible: CP-SAT's first
    # solution is the hint itself
    assert out.count("The solution hint is complete and is feasible") == len(results) == 2
    assert out.count("complete_hint\n") == 2


def test_a_warm_start_node_is_taken_only_while_the_checks_admit_it() -> None:
    snap = build_snapshot(inventory(node("a", "1"), node("b", "4"), node("c", "4"),
                                    arriving("x0", 0), arriving("x1", 1)))
    ix = Index(snap)
    prefer = np.full(len(snap.pending), snap.node_pos["a"], dtype=np.int64)
    node_of = greedy(ix, prefilter(ix)[0], prefer=prefer)
    assert [snap.nodes[n].name for n in node_of.tolist()] == ["a", "b"]


def test_a_preempted_pod_leaves_its_node_queues_again_and_spends_its_pdb() -> None:
    from optimizer.windows import Planner

    low = pod("low", "2", node_name="n", priority=0, labels={"app": "web"})
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "web"}}},
              "status": {"disruptionsAllowed": 1}}
    inv = inventory(node("n", "2"), node("m", "2"), low, budget,
                    pod("other", "2", node_name="m", priority=50),
                    {**pod("hi", "2", priority=100),
                     "metadata": {"name": "hi", "namespace": "default",
                                  "creationTimestamp": "2026-01-01T00:00:00Z"}})
    planner = Planner(inv, FAST)
    first = planner.step(list(inv.pending))
    assert [e.pod for e in first.plan.evictions] == ["default/low"]
    assert "default/low" in planner.waiting
    assert all(p.ref != "default/low" for p in planner.inv.pods)
    assert planner.inv.pdbs[0].status.disruptions_allowed == 0
    second = planner.step([])
    # nothing lower than it runs any more: the evicted pod waits, unplaced, with kube's reason
    assert [u.agent for u in second.plan.unplaced] == ["default/low"]
    assert second.plan.evictions == []


def _preemption_objects() -> list[dict[str, Any]]:
    low = pod("low", "2", node_name="n", priority=0, labels={"app": "web"})
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "web"}}},
              "status": {"disruptionsAllowed": 1}}
    return [node("n", "2"), node("m", "2"), low, budget,
            pod("other", "2", node_name="m", priority=50),
            {**pod("hi", "2", priority=100),
             "metadata": {"name": "hi", "namespace": "default",
                          "creationTimestamp": "2026-01-01T00:00:00Z"}}]


def _preemption_window() -> Any:
    return inventory(*_preemption_objects())


def test_with_a_binder_the_eviction_is_issued_before_the_binding_and_the_pod_queues_again(tmp_path):
    from optimizer.windows import Planner

    binder = _binder(tmp_path)
    inv = _preemption_window()
    planner = Planner(inv, FAST, binder, run_id="p1")
    first = planner.step(list(inv.pending))
    assert first.binding["evicted"] == 1 and first.binding["bound"] == 1
    assert list(binder.sink.evictions.values()) == [("default", "low")]
    assert [e.state for e in binder.outbox.evictions()] == ["evicted"]
    assert "default/low" in planner.waiting and "default/hi" not in planner.waiting
    assert planner.inv.pdbs[0].status.disruptions_allowed == 0


def test_a_refused_eviction_keeps_the_pod_running_and_the_agent_waiting(tmp_path):
    from optimizer.binder import Binder, DryRunSink, EvictionRefused, Outbox
    from optimizer.windows import Planner

    class PdbSays429(DryRunSink):
        def evict(self, namespace, name, key):
            raise EvictionRefused("Cannot evict pod as it would violate the pod's disruption budget.")

    binder = Binder(Outbox(tmp_path / "outbox.db"), PdbSays429())
    inv = _preemption_window()
    planner = Planner(inv, FAST, binder, run_id="p2")
    first = planner.step(list(inv.pending))
    assert [e.pod for e in first.plan.evictions] == ["default/low"]  # planned ...
    assert first.binding["eviction_failed"] == 1 and first.binding["sent_back"] == 1
    assert first.binding["bound"] == 0 and binder.sink.bindings == {}  # ... but not done
    assert any(p.ref == "default/low" and p.spec.node_name == "n" for p in planner.inv.pods)
    assert "default/hi" in planner.waiting and "default/low" not in planner.waiting
    assert planner.inv.pdbs[0].status.disruptions_allowed == 1  # nothing was disrupted


def test_run_bind_issues_the_eviction_before_the_binding_and_reports_it(tmp_path):
    src = tmp_path / "cluster.json"
    src.write_text(json.dumps({"kind": "List", "items": _preemption_objects()}))
    out = tmp_path / "sink.jsonl"
    res = CliRunner().invoke(app, ["run", "-f", str(src), "--time-limit", "5", "--bind",
                                   "--db", str(tmp_path / "o.db"), "--sink", f"jsonl:{out}"])
    assert res.exit_code == 0, res.output
    assert "evictions (issued before the bindings they make room for): evicted 1, failed 0" in " ".join(
        res.output.split())
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x.get("evict") or x["agent"] for x in lines][:2] == ["default/low", "default/hi"]
