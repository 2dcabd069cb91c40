"""The binder: the happy path, the optimistic conflict check, sink errors and restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer import SolveConfig, optimize
from optimizer.binder import (
    BOUND,
    CONFLICT,
    FAILED,
    ISSUING,
    PENDING,
    Binder,
    DryRunSink,
    JsonlSink,
    Outbox,
    SinkConflict,
    SnapshotFit,
)
from optimizer.plan import Placement, Plan
from optimizer.snapshot import build_snapshot
from tests import builders as b
from tests.binder.conftest import make_plan


class FlakySink(DryRunSink):
    """Fails the first `fail` calls per key with a transient error, then binds."""

    def __init__(self, fail: int, exc: Exception | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.exc = exc or ConnectionError("connection reset")
        self.failed: dict[str, int] = {}

    def bind(self, agent_ns: str, agent_name: str, node: str, key: str) -> None:
        if self.failed.get(key, 0) < self.fail:
            self.failed[key] = self.failed.get(key, 0) + 1
            raise self.exc
        super().bind(agent_ns, agent_name, node, key)


def test_a_pass_binds_every_pending_binding_once(db_url: str) -> None:
    sink = DryRunSink()
    with Outbox(db_url) as ob:
        ob.submit(make_plan(10), "w")
        result = Binder(ob, sink).run_once()
        assert (result.bound, result.conflict, result.failed) == (10, 0, 0)
        assert ob.counts()[BOUND] == 10
        assert Binder(ob, sink).run_once().progressed == 0  # nothing left: the sink is not called
    assert sink.calls == 10
    assert sorted(f"{ns}/{n}" for ns, n, _ in sink.bindings.values()) == sorted(
        p.agent for p in make_plan(10).placements)


def test_a_node_that_no_longer_fits_sends_the_agent_back_and_never_binds_it(outbox: Outbox) -> None:
    outbox.submit(make_plan(6, nodes=2), "w")
    sink = DryRunSink()
    result = Binder(outbox, sink, fits=lambda agent, node: node != "node-01").run_once()
    assert (result.bound, result.conflict) == (3, 3)
    states = {x.agent: x.state for x in outbox.bindings()}
    full = {x.agent for x in outbox.bindings() if x.node == "node-01"}
    assert {a for a, s in states.items() if s == CONFLICT} == full
    assert {r.agent for r in outbox.requeued()} == full
    assert all("no longer fits on node-01" in r.reason for r in outbox.requeued())
    assert not full & {f"{ns}/{n}" for ns, n, _ in sink.bindings.values()}


def test_a_transient_sink_error_is_retried_with_the_same_key(outbox: Outbox) -> None:
    outbox.submit(make_plan(2), "w")
    sink = FlakySink(fail=2)
    binder = Binder(outbox, sink, max_attempts=5)
    assert binder.run_once().retry == 2
    assert {(x.state, x.attempts) for x in outbox.bindings()} == {(ISSUING, 1)}
    assert "ConnectionError: connection reset" in (outbox.bindings()[0].error or "")
    total = binder.run(interval=0)
    assert total.bound == 2 and outbox.counts()[BOUND] == 2
    assert outbox.requeued() == []


def test_an_issuing_binding_is_retried_without_the_fit_check(outbox: Outbox) -> None:
    """It may already be bound at the sink: requeueing it could place it twice."""
    outbox.submit(make_plan(1), "w")
    Binder(outbox, FlakySink(fail=1)).run_once()
    assert outbox.bindings()[0].state == ISSUING
    Binder(outbox, DryRunSink(), fits=lambda a, n: False).run_once()
    assert outbox.bindings()[0].state == BOUND and outbox.requeued() == []


def test_after_max_attempts_a_binding_fails_and_goes_back_to_the_queue(outbox: Outbox) -> None:
    outbox.submit(make_plan(3), "w")
    total = Binder(outbox, FlakySink(fail=99), max_attempts=3).run(interval=0)
    assert total.failed == 3 and total.retry == 6
    assert outbox.counts()[FAILED] == 3
    assert sorted(r.agent for r in outbox.requeued()) == sorted(p.agent for p in make_plan(3).placements)


def test_a_sink_conflict_marks_conflict_and_requeues_at_once(outbox: Outbox) -> None:
    outbox.submit(make_plan(1), "w")
    sink = FlakySink(fail=1, exc=SinkConflict("pod is already bound to node-9", "node-9"))
    assert Binder(outbox, sink).run_once().conflict == 1
    got = outbox.bindings()[0]
    assert (got.state, got.attempts) == (CONFLICT, 0)
    assert [r.reason for r in outbox.requeued()] == ["pod is already bound to node-9"]


def test_a_restart_finishes_interrupted_bindings_and_the_sink_sees_each_once(tmp_path: Path,
                                                                            sqlite_url: str) -> None:
    path = tmp_path / "bindings.jsonl"
    with Outbox(sqlite_url) as ob, JsonlSink(path) as sink:
        ob.submit(make_plan(4), "w")
        rows = ob.bindings()
        # crash 1: claimed, never sent; crash 2: sent, never marked bound
        ob.claim(rows[0].id)
        ob.claim(rows[1].id)
        sink.bind(rows[1].namespace, rows[1].name, rows[1].node, rows[1].key)
    with Outbox(sqlite_url) as ob, JsonlSink(path) as sink:
        assert ob.counts()[ISSUING] == 2
        assert Binder(ob, sink).run().bound == 4
        assert ob.counts()[BOUND] == 4
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(x["agent"] for x in lines) == sorted(r.agent for r in rows)


def test_the_binder_never_binds_an_unverified_plan(outbox: Outbox) -> None:
    sink = DryRunSink()
    with pytest.raises(Exception, match="verifier"):
        outbox.submit(make_plan(3, verified=False), "bad")
    Binder(outbox, sink).run()
    assert sink.calls == 0 and outbox.bindings() == []


# -- the fit check built from a snapshot ----------------------------------------------------------

def _cluster(*extra: dict) -> list[dict]:
    return [b.node("n1", cpu="2"), b.node("n2", cpu="2"),
            b.pod("a1", cpu="1", namespace="t"), b.pod("a2", cpu="1", namespace="t"),
            b.pod("a3", cpu="1", namespace="t"), *extra]


def test_snapshot_fit_counts_running_pods_and_bindings_already_held(outbox: Outbox) -> None:
    snap = build_snapshot(b.inventory(*_cluster(b.pod("web", cpu="1", node_name="n1"))))
    plan = Plan("OPTIMAL", [Placement("t/a1", "n1"), Placement("t/a2", "n1")], verified=True)
    outbox.submit(plan, "w")
    fits = SnapshotFit(snap, outbox)
    assert fits("t/a1", "n1") and fits("t/a2", "n1")  # web + one agent = 2 cpu
    result = Binder(outbox, DryRunSink(), fits).run_once()
    assert (result.bound, result.conflict) == (1, 1)
    assert outbox.requeued()[0].agent == "t/a2"
    assert outbox.requeued()[0].reason.endswith(": Insufficient cpu")
    assert not fits("t/a3", "n1") and fits.last_reason == "Insufficient cpu"
    assert fits("t/a3", "n2")


def test_snapshot_fit_does_not_count_an_agent_twice_once_the_cluster_shows_it_running(outbox: Outbox) -> None:
    outbox.submit(Plan("OPTIMAL", [Placement("t/a1", "n1")], verified=True), "w")
    Binder(outbox, DryRunSink()).run_once()
    now = [o for o in _cluster() if o["metadata"]["name"] != "a1"]
    fresher = build_snapshot(b.inventory(*now, b.pod("a1", cpu="1", namespace="t", node_name="n1")))
    fits = SnapshotFit(fresher, outbox)
    assert fits("t/a2", "n1")  # a1 (1 cpu) counted once: 1 left


@pytest.mark.parametrize(("change", "reason"), [
    (lambda objs: [b.node("n1", cpu="2", unschedulable=True), *objs[1:]], "node(s) were unschedulable"),
    (lambda objs: [b.node("n1", cpu="2", taints=[b.taint("gpu")]), *objs[1:]],
     "node(s) had untolerated taint {gpu: }"),
    (lambda objs: objs[1:], "node n1 is not in the latest snapshot"),
    (lambda objs: [o for o in objs if o["metadata"]["name"] != "a1"],
     "t/a1 is not a pending agent of the latest snapshot"),
], ids=["node cordoned since", "node tainted since", "node gone", "agent no longer pending"])
def test_snapshot_fit_rejects_what_changed_since_the_plan(outbox: Outbox, change: object,
                                                          reason: str) -> None:
    snap = build_snapshot(b.inventory(*change(_cluster())))  # type: ignore[operator]
    fits = SnapshotFit(snap, outbox)
    assert not fits("t/a1", "n1")
    assert fits.last_reason == reason


def test_a_solver_plan_binds_and_a_stale_node_sends_its_agents_back(outbox: Outbox) -> None:
    """End to end: optimize -> verified plan -> outbox -> binder, against a fresher snapshot in
    which another scheduler filled one node: its agents come back, nothing is lost or doubled."""
    objs = [b.node(f"n{i}", cpu="4") for i in range(3)] + [
        b.pod(f"a{i}", cpu="1", namespace="t") for i in range(9)]
    plan = optimize(b.inventory(*objs), SolveConfig(time_limit=5, workers=1))
    assert plan.verified and len(plan.placements) == 9
    outbox.submit(plan, "w")
    full = plan.placements[0].node
    fresher = build_snapshot(b.inventory(*objs, b.pod("hog", cpu="4", namespace="x", node_name=full)))
    sink = DryRunSink()
    Binder(outbox, sink, SnapshotFit(fresher, outbox)).run()
    on_full = {p.agent for p in plan.placements if p.node == full}
    bound = {f"{ns}/{n}" for ns, n, _ in sink.bindings.values()}
    assert {r.agent for r in outbox.requeued()} == on_full
    assert bound == {p.agent for p in plan.placements} - on_full
    assert outbox.counts()[PENDING] == outbox.counts()[ISSUING] == 0
