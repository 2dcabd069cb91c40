"""`agentplace serve` as a real uvicorn process on loopback: start on a free port, call it over
TCP, stop it with SIGTERM, start it again on the same database; and the bounded load test."""

from __future__ import annotations

import json
import signal

import httpx

from benchmarks import load
from benchmarks.load import serve_process
from tests.api.conftest import BODY


def test_real_server_serves_authenticates_and_keeps_plans_across_restarts(tmp_path):
    db = str(tmp_path / "service.db")
    token = {"AGENTPLACE_API_TOKEN": "tok-123"}
    auth = {"Authorization": "Bearer tok-123"}
    with serve_process(env=token, db=db) as (url, proc):
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.post(f"{url}/v1/optimize", json=BODY).status_code == 401
        r = httpx.post(f"{url}/v1/optimize", json=BODY, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        plan = r.json()
        assert plan["verified"] and plan["placements"] == [{"agent": "team/fits", "node": "n1"}]
        assert "agentplace_plans_total" in httpx.get(f"{url}/metrics").text

        # the bounded load test against this server: stops by itself, every plan re-verified
        out = load.main(["--url", url, "--token", "tok-123", "--requests", "6", "--concurrency", "2",
                         "--nodes", "6", "--agents", "8", "--time-limit", "1", "--out", str(tmp_path)])
        figures = json.loads((tmp_path / "load.json").read_text())
        assert figures["requests"] == out["requests"] == 6 and figures["errors"] == 0
        assert figures["ok"] + figures["rejected_429"] == 6 and figures["ok"] >= 1
        assert figures["latency_ok_seconds"]["p50"] > 0
    assert proc.returncode == 0 or proc.returncode == -signal.SIGTERM  # stopped by SIGTERM, cleanly

    with serve_process(env=token, db=db) as (url, _):
        stored = httpx.get(f"{url}/v1/plans/{plan['plan_id']}", headers=auth)
        assert stored.status_code == 200 and stored.json()["plan"]["placements"] == plan["placements"]
