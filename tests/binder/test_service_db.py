"""The HTTP service's plans and bindings on both databases the binder supports: the embedded
SQLite default and a real PostgreSQL server (the fixtures in this directory start one)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.server import create_app
from api.settings import Settings
from tests.api.conftest import BODY


def test_service_binds_and_keeps_plans_on_either_database(db_url):
    with TestClient(create_app(Settings(db=db_url))) as client:
        assert client.get("/readyz").status_code == 200
        dry = client.post("/v1/optimize", json=BODY).json()
        bound = client.post("/v1/optimize?bind=true", json=BODY).json()
        assert [b["state"] for b in bound["bindings"]] == ["bound"]
    with TestClient(create_app(Settings(db=db_url))) as again:  # a restart
        got = again.get(f"/v1/plans/{dry['plan_id']}").json()
        assert got["dry_run"] is True and got["plan"]["placements"] == dry["placements"]
        got = again.get(f"/v1/plans/{bound['plan_id']}").json()
        assert got["dry_run"] is False and got["bindings"] == bound["bindings"]
        assert got["created_at"].endswith("+00:00")
