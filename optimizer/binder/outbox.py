"""The outbox: the durable record of what the binder must issue, and where each binding stands.

A verified plan is written once, in one transaction, as one `bindings` row per placement; the
binder then moves each row through a small state machine, committing every step before it acts
on the outside world, so that a process killed at any instant resumes from the last committed
state instead of guessing:

    pending ──fits? no──▶ conflict (+ a requeue row, same transaction)
       │ claim (compare-and-set, committed before the sink is called)
       ▼
    issuing ──sink ok──▶ bound ──a later plan's eviction of it done──▶ evicted
       │ sink says "bound elsewhere" ▶ conflict (+ requeue)
       │ sink error ▶ attempts += 1, stays issuing; after max attempts ▶ failed (+ requeue)

`issuing` is the crash window: the sink may or may not have seen the binding. A restart re-issues
it with the same idempotency key (sha256 of plan id and agent), and every sink treats a repeated
key as a no-op, so the sink sees each (agent, plan) at most once in effect. An `issuing` row is
never sent back through the fit check: it may already be bound, and requeueing a bound agent
would place it twice.

A plan's evictions (running pods preempted to make room for its agents) are `evictions` rows,
written in the same transaction as its bindings, with their own small state machine (see the
evictions section below); the binder issues them first, and a binding waits until every
eviction for its agent on its node is done.

The database is any SQLAlchemy URL; SQLite is the default (a file, nothing to start; WAL journal
and synchronous=FULL so a commit survives a crash), PostgreSQL works through psycopg 3. The
schema is created on first use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from optimizer.plan import Plan, PlanInvalidError

log = logging.getLogger("agentplace.binder")

ENV_DB = "AGENTPLACE_DB"
DEFAULT_DB_PATH = "agentplace.db"

PENDING = "pending"
ISSUING = "issuing"
BOUND = "bound"
CONFLICT = "conflict"
FAILED = "failed"
EVICTED = "evicted"  # an eviction done; a binding: bound, then evicted by a later plan
STATES = (PENDING, ISSUING, BOUND, CONFLICT, FAILED, EVICTED)
LIVE = (PENDING, ISSUING, BOUND)  # states that hold (or will hold) the agent on its node
TERMINAL = (BOUND, CONFLICT, FAILED)
EVICTION_STATES = (PENDING, ISSUING, EVICTED, FAILED)
NOT_DONE = (PENDING, ISSUING)  # an eviction in these states still blocks its agent's binding


def _now() -> datetime:
    return datetime.now(UTC)


def idempotency_key(plan_id: str, agent: str) -> str:
    """sha256 of (plan id, agent): the same binding always carries the same key, across restarts
    and processes, so a sink can recognise a re-issue."""
    return hashlib.sha256(f"{plan_id}\x00{agent}".encode()).hexdigest()


def eviction_key(plan_id: str, pod: str) -> str:
    """sha256 of (plan id, "evict", pod): never equal to a binding's key, stable across restarts."""
    return hashlib.sha256(f"{plan_id}\x00evict\x00{pod}".encode()).hexdigest()


def split_agent(agent: str) -> tuple[str, str]:
    """`ns/name` -> (ns, name); a bare name is in `default`, as kubectl reads it."""
    ns, sep, name = agent.partition("/")
    return (ns, name) if sep else ("default", agent)


class Base(DeclarativeBase):
    pass


class PlanRow(Base):
    """One submitted plan; `payload` is the plan as `Plan.to_dict()` gives it, for the record."""

    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    status: Mapped[str] = mapped_column(String(16))
    verified: Mapped[bool]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class BindingRow(Base):
    """One placement of one plan and where it stands; `idempotency_key` is unique, so a plan can
    never hold the same agent twice."""

    __tablename__ = "bindings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    agent: Mapped[str] = mapped_column(String(320), index=True)
    node: Mapped[str] = mapped_column(String(253))
    state: Mapped[str] = mapped_column(String(16), index=True, default=PENDING)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class EvictionRow(Base):
    """One eviction of one plan: the running pod `pod` on `node`, to make room for `agent` (a
    placement of the same plan, or None). Added after bindings: `create_all` adds the table to an
    existing database and touches nothing else."""

    __tablename__ = "evictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    pod: Mapped[str] = mapped_column(String(320), index=True)
    node: Mapped[str] = mapped_column(String(253), index=True)
    agent: Mapped[str | None] = mapped_column(String(320), default=None)
    state: Mapped[str] = mapped_column(String(16), index=True, default=PENDING)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class RequeueRow(Base):
    """An agent sent back to the next window, and why."""

    __tablename__ = "requeue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(String(320), index=True)
    reason: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@dataclass(frozen=True)
class Binding:
    """A detached, read-only view of a bindings row: nothing outside the outbox holds a session."""

    id: int
    plan_id: str
    agent: str
    node: str
    state: str
    key: str
    attempts: int
    error: str | None

    @property
    def namespace(self) -> str:
        return split_agent(self.agent)[0]

    @property
    def name(self) -> str:
        return split_agent(self.agent)[1]


@dataclass(frozen=True)
class PodEviction:
    """A detached view of an evictions row."""

    id: int
    plan_id: str
    pod: str
    node: str
    agent: str | None
    state: str
    key: str
    attempts: int
    error: str | None

    @property
    def namespace(self) -> str:
        return split_agent(self.pod)[0]

    @property
    def name(self) -> str:
        return split_agent(self.pod)[1]


@dataclass(frozen=True)
class Requeued:
    agent: str
    reason: str
    plan_id: str
    created_at: datetime


def _view(row: BindingRow) -> Binding:
    return Binding(row.id, row.plan_id, row.agent, row.node, row.state, row.idempotency_key,
                   row.attempts, row.error)


def _eview(row: EvictionRow) -> PodEviction:
    return PodEviction(row.id, row.plan_id, row.pod, row.node, row.agent, row.state,
                       row.idempotency_key, row.attempts, row.error)


def default_url(value: str | os.PathLike[str] | None = None) -> str:
    """The database URL: `value`, else $AGENTPLACE_DB, else ./agentplace.db. A plain path means a
    SQLite file; `postgresql://` (or `postgres://`) gets the psycopg 3 driver, the one we ship."""
    raw = os.fspath(value) if value is not None else os.environ.get(ENV_DB) or DEFAULT_DB_PATH
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser()}"
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    return raw


def make_engine(url: str) -> Engine:
    """An engine with the settings durability needs: for SQLite, WAL (readers do not block the
    writer), synchronous=FULL (a commit is on disk before it returns), foreign keys on and a
    busy timeout so a second process waits instead of failing."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)



T = TypeVar("T")

def _filtered(row: Any, plan_id: str | None, state: str | None) -> Any:
    """Rows of a table in id order, of one plan and/or in one state."""
    stmt = select(row).order_by(row.id)
    if plan_id is not None:
        stmt = stmt.where(row.plan_id == plan_id)
    if state is not None:
        stmt = stmt.where(row.state == state)
    return stmt

class Outbox:
    """The durable state of every binding. All transitions are compare-and-set updates that name
    the state they leave, so a transition applied twice (a retry, a second process) is a no-op."""

    def __init__(self, url: str | os.PathLike[str] | None = None, *, engine: Engine | None = None) -> None:
        self.url = default_url(url) if engine is None else str(engine.url)
        self.engine = engine if engine is not None else make_engine(self.url)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- submission ---------------------------------------------------------------------------

    def submit(self, plan: Plan, plan_id: str | None = None) -> str:
        """Write the plan and one pending binding per placement in ONE transaction; returns the
        plan id. Submitting the same id again changes nothing, so a caller that crashed around
        `submit` can simply call it again with the same id (pass a stable id, e.g. the window's;
        without one a fresh uuid is used and a retry would be a new plan).

        Refuses a plan the verifier did not pass (`PlanInvalidError`): such a plan is a bug and is
        never bound. An agent that is already pending, issuing or bound under another plan gets
        a `conflict` row here, without a requeue: the other plan owns it, and binding it twice is
        exactly what the outbox is for preventing."""
        if not plan.verified:
            raise PlanInvalidError("refusing to bind a plan that did not pass the verifier")
        agents = [p.agent for p in plan.placements]
        if len(set(agents)) != len(agents):
            raise PlanInvalidError("refusing to bind a plan that places an agent twice")
        victims = [e.pod for e in plan.evictions]
        if len(set(victims)) != len(victims):
            raise PlanInvalidError("refusing to bind a plan that evicts a pod twice")
        plan_id = plan_id or str(uuid.uuid4())
        payload = json.loads(json.dumps(plan.to_dict(), default=str))
        try:
            with self._session.begin() as s:
                if s.get(PlanRow, plan_id) is not None:
                    log.info("plan %s already submitted: nothing to do", plan_id)
                    return plan_id
                owners = self._live_owners(s, agents)
                s.add(PlanRow(id=plan_id, status=plan.status, verified=plan.verified, payload=payload))
                s.flush()  # the plan row first: bindings reference it
                now = _now()
                for p in plan.placements:
                    other = owners.get(p.agent)
                    s.add(BindingRow(
                        plan_id=plan_id, agent=p.agent, node=p.node, idempotency_key=idempotency_key(
                            plan_id, p.agent),
                        state=CONFLICT if other else PENDING, attempts=0, updated_at=now,
                        error=f"agent already {other[1]} under plan {other[0]}" if other else None))
                for e in plan.evictions:  # same transaction: never bindings without their evictions
                    # room for an agent another plan owns would be made for nothing: not issued
                    other = owners.get(e.agent or "")
                    s.add(EvictionRow(plan_id=plan_id, pod=e.pod, node=e.node, agent=e.agent,
                                      idempotency_key=eviction_key(plan_id, e.pod),
                                      state=FAILED if other else PENDING, attempts=0, updated_at=now,
                                      error=(f"not issued: {e.agent} is already {other[1]} under plan "
                                             f"{other[0]}") if other else None))
        except IntegrityError:
            # a concurrent submit of the same id won the race; its transaction holds the plan
            with self._session() as s:
                if s.get(PlanRow, plan_id) is None:
                    raise
            log.info("plan %s submitted concurrently: nothing to do", plan_id)
        return plan_id

    @staticmethod
    def _live_owners(s: Session, agents: Sequence[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for lo in range(0, len(agents), 500):
            rows = s.execute(select(BindingRow.agent, BindingRow.plan_id, BindingRow.state).where(
                BindingRow.agent.in_(agents[lo:lo + 500]), BindingRow.state.in_(LIVE)))
            for agent, plan_id, state in rows:
                out[agent] = (plan_id, state)
        return out

    # -- reading ------------------------------------------------------------------------------

    def work(self, limit: int | None = None) -> list[Binding]:
        """What the binder has to do, in order: interrupted `issuing` rows first (they may be
        bound already, finish them), then `pending` ones in submission order. Only bindings of
        plans recorded as verified are ever returned. A binding whose agent still waits for an
        eviction of the same plan on its node (pending or issuing: see `eviction_work`, which the
        binder drains first) is not returned yet."""
        blocked = (select(EvictionRow.id)
                   .where(EvictionRow.plan_id == BindingRow.plan_id, EvictionRow.agent == BindingRow.agent,
                          EvictionRow.node == BindingRow.node, EvictionRow.state.in_(NOT_DONE))
                   .exists())
        stmt = (select(BindingRow).join(PlanRow, PlanRow.id == BindingRow.plan_id)
                .where(BindingRow.state.in_((ISSUING, PENDING)), PlanRow.verified.is_(True), ~blocked)
                .order_by((BindingRow.state == PENDING).asc(), BindingRow.id))
        return self._read(stmt if limit is None else stmt.limit(limit), _view)

    def bindings(self, plan_id: str | None = None, state: str | None = None) -> list[Binding]:
        return self._read(_filtered(BindingRow, plan_id, state), _view)

    def _read(self, stmt: Any, view: Callable[[Any], T]) -> list[T]:
        with self._session() as s:
            return [view(r) for r in s.scalars(stmt)]

    def get(self, binding_id: int) -> Binding:
        with self._session() as s:
            row = s.get(BindingRow, binding_id)
            if row is None:
                raise KeyError(binding_id)
            return _view(row)

    def counts(self, plan_id: str | None = None) -> dict[str, int]:
        """Bindings per state, every state present (0 when none)."""
        stmt = select(BindingRow.state, func.count()).group_by(BindingRow.state)
        if plan_id is not None:
            stmt = stmt.where(BindingRow.plan_id == plan_id)
        with self._session() as s:
            got = {str(st): int(n) for st, n in s.execute(stmt)}
        return {st: int(got.get(st, 0)) for st in STATES}

    def held(self, node: str | None = None, states: Iterable[str] = (ISSUING, BOUND)) -> dict[str, str]:
        """agent -> node for bindings that hold capacity now: bound, and issuing (which may be
        bound already); on `node` only if given. The latest known usage an optimistic fit check
        adds to its snapshot."""
        stmt = select(BindingRow.agent, BindingRow.node).where(BindingRow.state.in_(tuple(states)))
        if node is not None:
            stmt = stmt.where(BindingRow.node == node)
        with self._session() as s:
            return {str(a): str(n) for a, n in s.execute(stmt)}

    def requeued(self, drain: bool = False) -> list[Requeued]:
        """Agents sent back to the next window, oldest first. `drain=True` removes the rows it
        returns in the same transaction, so two consumers never both take an agent."""
        with self._session.begin() as s:
            rows = list(s.scalars(select(RequeueRow).order_by(RequeueRow.id)))
            out = [Requeued(r.agent, r.reason, r.plan_id, r.created_at) for r in rows]
            if drain and rows:
                s.execute(delete(RequeueRow).where(RequeueRow.id.in_([r.id for r in rows])))
        return out

    # -- transitions --------------------------------------------------------------------------

    def _move(self, s: Session, binding_id: int, from_states: Sequence[str], to: str,
              **values: Any) -> bool:
        res = s.execute(update(BindingRow)
                        .where(BindingRow.id == binding_id, BindingRow.state.in_(tuple(from_states)))
                        .values(state=to, updated_at=_now(), **values)
                        .execution_options(synchronize_session=False))
        return bool(res.rowcount)  # type: ignore[attr-defined]

    def claim(self, binding_id: int) -> bool:
        """pending -> issuing, committed before the sink is called: from here on a restart
        re-issues instead of re-deciding. False if another transition got there first."""
        with self._session.begin() as s:
            return self._move(s, binding_id, (PENDING,), ISSUING)

    def mark_bound(self, binding_id: int) -> bool:
        with self._session.begin() as s:
            return self._move(s, binding_id, (ISSUING,), BOUND, error=None)

    def mark_conflict(self, binding_id: int, reason: str, from_states: Sequence[str] = (PENDING,)) -> bool:
        """-> conflict, and the agent back to the next window, in one transaction: the agent is
        never in neither place."""
        return self._send_back(binding_id, CONFLICT, reason, from_states, attempts_inc=0)

    def record_failure(self, binding_id: int, error: str, max_attempts: int) -> str:
        """A sink error on an issuing binding: attempts += 1 and it stays issuing (the request may
        have landed, so it is retried as is, never re-decided); at `max_attempts` it becomes
        failed and goes back to the next window. Returns the new state."""
        with self._session.begin() as s:
            row = s.get(BindingRow, binding_id, with_for_update=True)
            if row is None or row.state != ISSUING:
                return row.state if row is not None else FAILED
            attempts = row.attempts + 1
            if attempts < max_attempts:
                self._move(s, binding_id, (ISSUING,), ISSUING, attempts=attempts, error=error)
                return ISSUING
        self._send_back(binding_id, FAILED, error, (ISSUING,), attempts_inc=1)
        return FAILED

    def _send_back(self, binding_id: int, to: str, reason: str, from_states: Sequence[str],
                   attempts_inc: int) -> bool:
        with self._session.begin() as s:
            row = s.get(BindingRow, binding_id)
            if row is None:
                return False
            moved = self._move(s, binding_id, from_states, to, error=reason,
                               attempts=row.attempts + attempts_inc)
            if moved:
                s.add(RequeueRow(agent=row.agent, reason=reason, plan_id=row.plan_id))
            return moved

    # -- evictions ----------------------------------------------------------------------------
    #
    #   pending ──claim──▶ issuing ──sink ok (or the pod is already gone)──▶ evicted
    #                         │ refused (a PodDisruptionBudget) ▶ failed
    #                         │ sink error ▶ attempts += 1; after max attempts ▶ failed
    #
    # An eviction that fails sends the agent it made room for back to the next window, in the
    # same transaction (its binding, still pending, becomes conflict): no agent is lost, and none
    # is bound onto a node whose room never came.

    def eviction_work(self, limit: int | None = None) -> list[PodEviction]:
        """Evictions to issue, in order: interrupted `issuing` ones first, then `pending` ones in
        submission order; only of plans recorded as verified."""
        stmt = (select(EvictionRow).join(PlanRow, PlanRow.id == EvictionRow.plan_id)
                .where(EvictionRow.state.in_(NOT_DONE), PlanRow.verified.is_(True))
                .order_by((EvictionRow.state == PENDING).asc(), EvictionRow.id))
        return self._read(stmt if limit is None else stmt.limit(limit), _eview)

    def evictions(self, plan_id: str | None = None, state: str | None = None) -> list[PodEviction]:
        return self._read(_filtered(EvictionRow, plan_id, state), _eview)

    def eviction_counts(self, plan_id: str | None = None) -> dict[str, int]:
        """Evictions per state, every state present (0 when none)."""
        stmt = select(EvictionRow.state, func.count()).group_by(EvictionRow.state)
        if plan_id is not None:
            stmt = stmt.where(EvictionRow.plan_id == plan_id)
        with self._session() as s:
            got = {str(st): int(n) for st, n in s.execute(stmt)}
        return {st: int(got.get(st, 0)) for st in EVICTION_STATES}

    def evicted(self, node: str | None = None) -> set[str]:
        """Pods whose eviction is done (from `node` only, if given)."""
        stmt = select(EvictionRow.pod).where(EvictionRow.state == EVICTED).distinct()
        if node is not None:
            stmt = stmt.where(EvictionRow.node == node)
        with self._session() as s:
            return {str(p) for p in s.scalars(stmt)}

    def evictions_for(self, b: Binding) -> list[PodEviction]:
        """The evictions of `b`'s plan that make room for its agent on its node."""
        stmt = select(EvictionRow).where(EvictionRow.plan_id == b.plan_id, EvictionRow.agent == b.agent,
                                         EvictionRow.node == b.node).order_by(EvictionRow.id)
        with self._session() as s:
            return [_eview(r) for r in s.scalars(stmt)]

    def evicted_at(self, eviction_id: int) -> datetime | None:
        """When the eviction was marked evicted (its last transition), timezone-aware."""
        with self._session() as s:
            row = s.get(EvictionRow, eviction_id)
            if row is None or row.state != EVICTED:
                return None
            t = row.updated_at
            return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite: naive UTC

    def _emove(self, s: Session, eviction_id: int, from_states: Sequence[str], to: str,
               **values: Any) -> bool:
        res = s.execute(update(EvictionRow)
                        .where(EvictionRow.id == eviction_id, EvictionRow.state.in_(tuple(from_states)))
                        .values(state=to, updated_at=_now(), **values)
                        .execution_options(synchronize_session=False))
        return bool(res.rowcount)  # type: ignore[attr-defined]

    def claim_eviction(self, eviction_id: int) -> bool:
        """pending -> issuing, committed before the sink is called."""
        with self._session.begin() as s:
            return self._emove(s, eviction_id, (PENDING,), ISSUING)

    def mark_evicted(self, eviction_id: int) -> bool:
        """issuing -> evicted; a binding that held the pod on that node (it was an agent bound
        by an earlier plan) becomes `evicted` in the same transaction: it no longer holds the
        node, and the agent may be planned and bound again."""
        with self._session.begin() as s:
            if not self._emove(s, eviction_id, (ISSUING,), EVICTED, error=None):
                return False
            row = s.get(EvictionRow, eviction_id)
            assert row is not None
            s.execute(update(BindingRow)
                      .where(BindingRow.agent == row.pod, BindingRow.node == row.node,
                             BindingRow.state.in_((ISSUING, BOUND)))
                      .values(state=EVICTED, updated_at=_now(),
                              error=f"evicted by plan {row.plan_id}")
                      .execution_options(synchronize_session=False))
            return True

    def fail_eviction(self, eviction_id: int, reason: str, from_states: Sequence[str] = NOT_DONE,
                      attempts_inc: int = 0) -> bool:
        """-> failed, and in the same transaction the agent it made room for goes back to the
        next window: its pending binding on that node becomes conflict, with a requeue row."""
        with self._session.begin() as s:
            row = s.get(EvictionRow, eviction_id)
            if row is None or not self._emove(s, eviction_id, from_states, FAILED, error=reason,
                                              attempts=row.attempts + attempts_inc):
                return False
            if row.agent is None:
                return True
            why = f"eviction of {row.pod} on {row.node} failed: {reason}"
            waiting = s.scalars(select(BindingRow).where(
                BindingRow.plan_id == row.plan_id, BindingRow.agent == row.agent,
                BindingRow.node == row.node, BindingRow.state == PENDING)).all()
            for b in waiting:
                if self._move(s, b.id, (PENDING,), CONFLICT, error=why):
                    s.add(RequeueRow(agent=b.agent, reason=why, plan_id=b.plan_id))
            return True

    def record_eviction_failure(self, eviction_id: int, error: str, max_attempts: int) -> str:
        """A transient sink error on an issuing eviction: attempts += 1, it stays issuing and is
        retried with the same key; at `max_attempts` it fails (see `fail_eviction`)."""
        with self._session.begin() as s:
            row = s.get(EvictionRow, eviction_id, with_for_update=True)
            if row is None or row.state != ISSUING:
                return row.state if row is not None else FAILED
            attempts = row.attempts + 1
            if attempts < max_attempts:
                self._emove(s, eviction_id, (ISSUING,), ISSUING, attempts=attempts, error=error)
                return ISSUING
        self.fail_eviction(eviction_id, error, (ISSUING,), attempts_inc=1)
        return FAILED
