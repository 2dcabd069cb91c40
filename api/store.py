"""Plans the service returned, kept in the binder's database (same engine, own table), so
`GET /v1/plans/{id}` answers after a restart and a bound plan's bindings are one join away.

Dry-run plans live only here; a `?bind=true` plan is also submitted to the outbox under the
same id, where the binder takes it (its own `plans` row is the binder's record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from optimizer import Plan


def _now() -> datetime:
    return datetime.now(UTC)


class _Base(DeclarativeBase):
    pass


class ServicePlanRow(_Base):
    __tablename__ = "service_plans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    status: Mapped[str] = mapped_column(String(16))
    dry_run: Mapped[bool]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


@dataclass(frozen=True)
class StoredPlan:
    id: str
    request_id: str
    created_at: datetime
    dry_run: bool
    plan: dict[str, Any]


class PlanStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _Base.metadata.create_all(engine)
        self._session = sessionmaker(engine, expire_on_commit=False)

    def put(self, plan_id: str, request_id: str, plan: Plan, dry_run: bool) -> None:
        payload = json.loads(json.dumps(plan.to_dict(), default=str))
        with self._session.begin() as s:
            s.add(ServicePlanRow(id=plan_id, request_id=request_id, status=plan.status, dry_run=dry_run,
                                 payload=payload, created_at=_now()))

    def get(self, plan_id: str) -> StoredPlan | None:
        with self._session() as s:
            row = s.get(ServicePlanRow, plan_id)
            if row is None:
                return None
            created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            return StoredPlan(row.id, row.request_id, created, row.dry_run, row.payload)

    def ping(self) -> None:
        """Raises when the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
