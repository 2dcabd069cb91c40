"""The outbox: what a submit writes, what it refuses, and every state transition."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from optimizer.binder import (
    BOUND,
    CONFLICT,
    FAILED,
    ISSUING,
    PENDING,
    Outbox,
    default_url,
    idempotency_key,
    split_agent,
)
from optimizer.binder.outbox import PlanRow
from optimizer.plan import Placement, Plan, PlanInvalidError
from tests.binder.conftest import make_plan


def test_submit_writes_one_pending_binding_per_placement_with_its_idempotency_key(db_url: str) -> None:
    plan = make_plan(12)
    with Outbox(db_url) as ob:
        pid = ob.submit(plan, "w-1")
        rows = ob.bindings(pid)
        assert [(b.agent, b.node) for b in rows] == [(p.agent, p.node) for p in plan.placements]
        assert {b.state for b in rows} == {PENDING}
        assert all(b.key == idempotency_key("w-1", b.agent) and b.attempts == 0 for b in rows)
        assert ob.counts() == {PENDING: 12, ISSUING: 0, BOUND: 0, CONFLICT: 0, FAILED: 0, "evicted": 0}


def test_submitting_the_same_plan_id_twice_changes_nothing(db_url: str) -> None:
    with Outbox(db_url) as ob:
        ob.submit(make_plan(5), "w-1")
        b = ob.bindings()[0]
        assert ob.claim(b.id)
        before = ob.bindings()
        assert ob.submit(make_plan(5), "w-1") == "w-1"
        assert ob.submit(make_plan(9), "w-1") == "w-1"  # same id, different content: still nothing
        assert ob.bindings() == before


def test_a_submit_without_an_id_gets_a_fresh_one() -> None:
    with Outbox("sqlite://") as ob:
        a, b = ob.submit(make_plan(2)), ob.submit(make_plan(2, prefix="other"))
        assert a != b and len(ob.bindings()) == 4


def test_an_unverified_plan_is_refused_and_nothing_is_written(outbox: Outbox) -> None:
    with pytest.raises(PlanInvalidError, match="verifier"):
        outbox.submit(make_plan(3, verified=False), "bad")
    assert outbox.bindings() == []
    with outbox._session() as s:
        assert s.get(PlanRow, "bad") is None


def test_a_plan_placing_an_agent_twice_is_refused(outbox: Outbox) -> None:
    plan = Plan("OPTIMAL", [Placement("a/x", "n1"), Placement("a/x", "n2")], verified=True)
    with pytest.raises(PlanInvalidError, match="twice"):
        outbox.submit(plan, "dup")
    assert outbox.bindings() == []


def test_an_agent_live_under_another_plan_is_a_conflict_without_requeue(outbox: Outbox) -> None:
    outbox.submit(Plan("OPTIMAL", [Placement("a/x", "n1")], verified=True), "w-1")
    outbox.submit(Plan("OPTIMAL", [Placement("a/x", "n2"), Placement("a/y", "n2")], verified=True), "w-2")
    second = {b.agent: b for b in outbox.bindings("w-2")}
    assert second["a/x"].state == CONFLICT and "under plan w-1" in (second["a/x"].error or "")
    assert second["a/y"].state == PENDING
    assert outbox.requeued() == []
    assert [b.agent for b in outbox.work()] == ["a/x", "a/y"]  # w-1's a/x and w-2's a/y


def test_an_agent_whose_earlier_binding_conflicted_can_be_planned_again(outbox: Outbox) -> None:
    outbox.submit(Plan("OPTIMAL", [Placement("a/x", "n1")], verified=True), "w-1")
    assert outbox.mark_conflict(outbox.bindings()[0].id, "node full")
    outbox.submit(Plan("OPTIMAL", [Placement("a/x", "n2")], verified=True), "w-2")
    assert outbox.bindings("w-2")[0].state == PENDING


def test_claim_is_compare_and_set(outbox: Outbox) -> None:
    outbox.submit(make_plan(1), "w")
    b = outbox.bindings()[0]
    assert outbox.claim(b.id) and not outbox.claim(b.id)
    assert outbox.get(b.id).state == ISSUING


def test_only_an_issuing_binding_can_be_marked_bound(outbox: Outbox) -> None:
    outbox.submit(make_plan(1), "w")
    b = outbox.bindings()[0]
    assert not outbox.mark_bound(b.id)
    outbox.claim(b.id)
    assert outbox.mark_bound(b.id) and not outbox.mark_bound(b.id)
    assert outbox.get(b.id).state == BOUND
    assert not outbox.mark_conflict(b.id, "late")  # bound is final
    assert outbox.requeued() == []


def test_a_conflict_writes_the_requeue_row_in_the_same_transaction(outbox: Outbox) -> None:
    outbox.submit(make_plan(2), "w")
    b = outbox.bindings()[0]
    assert outbox.mark_conflict(b.id, "Insufficient cpu")
    assert not outbox.mark_conflict(b.id, "again")  # no second requeue row
    got = outbox.get(b.id)
    assert got.state == CONFLICT and got.error == "Insufficient cpu"
    assert [(r.agent, r.reason, r.plan_id) for r in outbox.requeued()] == [(b.agent, "Insufficient cpu", "w")]


def test_failures_count_attempts_and_the_last_one_fails_and_requeues(outbox: Outbox) -> None:
    outbox.submit(make_plan(1), "w")
    b = outbox.bindings()[0]
    outbox.claim(b.id)
    assert outbox.record_failure(b.id, "timeout", 3) == ISSUING
    assert outbox.record_failure(b.id, "timeout", 3) == ISSUING
    assert outbox.requeued() == []
    assert outbox.record_failure(b.id, "timeout", 3) == FAILED
    got = outbox.get(b.id)
    assert (got.state, got.attempts, got.error) == (FAILED, 3, "timeout")
    assert [r.agent for r in outbox.requeued()] == [b.agent]


def test_work_lists_interrupted_issuing_rows_before_pending_ones(outbox: Outbox) -> None:
    outbox.submit(make_plan(4), "w")
    rows = outbox.bindings()
    outbox.claim(rows[2].id)
    outbox.claim(rows[3].id)
    outbox.mark_bound(rows[3].id)
    assert [b.id for b in outbox.work()] == [rows[2].id, rows[0].id, rows[1].id]
    assert [b.id for b in outbox.work(limit=1)] == [rows[2].id]


def test_work_never_lists_bindings_of_a_plan_recorded_unverified(outbox: Outbox) -> None:
    """Defence in depth: even a row written around `submit` is never issued."""
    outbox.submit(make_plan(2), "w")
    with outbox._session.begin() as s:
        row = s.get(PlanRow, "w")
        assert row is not None
        row.verified = False
    assert outbox.work() == []


def test_draining_the_requeue_returns_each_agent_once(outbox: Outbox) -> None:
    outbox.submit(make_plan(3), "w")
    for b in outbox.bindings()[:2]:
        outbox.mark_conflict(b.id, "full")
    assert len(outbox.requeued()) == 2  # reading does not drain
    assert [r.agent for r in outbox.requeued(drain=True)] == [b.agent for b in outbox.bindings()[:2]]
    assert outbox.requeued(drain=True) == []


def test_held_is_what_binds_capacity_now(outbox: Outbox) -> None:
    outbox.submit(make_plan(4, nodes=2), "w")
    rows = outbox.bindings()
    outbox.claim(rows[0].id)
    outbox.claim(rows[1].id)
    outbox.mark_bound(rows[1].id)
    assert outbox.held() == {rows[0].agent: rows[0].node, rows[1].agent: rows[1].node}
    assert outbox.held(rows[0].node) == {rows[0].agent: rows[0].node}


def test_the_outbox_survives_a_reopen(sqlite_url: str) -> None:
    with Outbox(sqlite_url) as ob:
        ob.submit(make_plan(3), "w")
        ob.claim(ob.bindings()[0].id)
    with Outbox(sqlite_url) as ob:
        assert ob.counts()[ISSUING] == 1 and ob.counts()[PENDING] == 2


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        with ob.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(("given", "env", "want"), [
    (None, None, "sqlite:///agentplace.db"),
    (None, "/var/lib/ap/outbox.db", "sqlite:////var/lib/ap/outbox.db"),
    ("x.db", "/ignored.db", "sqlite:///x.db"),
    (None, "postgresql://u@db:5432/ap", "postgresql+psycopg://u@db:5432/ap"),
    ("postgres://u@db/ap", None, "postgresql+psycopg://u@db/ap"),
    ("postgresql+psycopg://u@db/ap", None, "postgresql+psycopg://u@db/ap"),
    ("sqlite:///:memory:", None, "sqlite:///:memory:"),
], ids=["default file", "env path", "argument over env", "env url gets psycopg",
        "postgres scheme", "explicit driver kept", "sqlite url kept"])
def test_default_url(monkeypatch: pytest.MonkeyPatch, given: str | None, env: str | None, want: str) -> None:
    if env is None:
        monkeypatch.delenv("AGENTPLACE_DB", raising=False)
    else:
        monkeypatch.setenv("AGENTPLACE_DB", env)
    assert default_url(given) == want


def test_split_agent() -> None:
    assert split_agent("team-a/agent-1") == ("team-a", "agent-1")
    assert split_agent("agent-1") == ("default", "agent-1")
