"""The HTTP service through FastAPI's test client: the CLI's plan, durable plans and bindings,
errors as the CLI words them, auth, limits, metrics, logs and the OpenAPI document."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import yaml
from typer.testing import CliRunner

import api.server
from api.cli import app as cli
from api.logs import JsonFormatter
from tests.api.conftest import BODY, NODES, PENDING
from tests.builders import node, pod

runner = CliRunner()


def test_optimize_returns_the_cli_plan(client, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "nodes.yaml").write_text(yaml.safe_dump(NODES))
    (tmp_path / "in" / "pods.yaml").write_text(yaml.safe_dump_all(PENDING))
    res = runner.invoke(cli, ["plan", "-f", str(tmp_path / "in"), "-o", "json", "--time-limit", "5"])
    assert res.exit_code == 0, res.output
    want = json.loads(res.stdout)

    r = client.post("/v1/optimize", json=BODY)
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(want) <= set(got)
    for key in ("status", "placements", "unplaced", "evictions", "objective", "bound", "gap", "verified",
                "objective_terms", "baseline", "model", "budgets"):
        assert got[key] == want[key], key
    assert got["placements"] == [{"agent": "team/fits", "node": "n1"}]
    assert got["unplaced"][0]["counterfactual"] == "fits on n3 if the node were uncordoned"
    assert got["dry_run"] is True and "bindings" not in got
    assert r.headers["x-request-id"] == got["request_id"]


def test_plans_are_stored_and_survive_a_restart(make_client):
    first = make_client()
    plan = first.post("/v1/optimize", json=BODY, headers={"X-Request-ID": "req-1"}).json()
    again = make_client()  # a new app on the same database: what a restart sees
    r = again.get(f"/v1/plans/{plan['plan_id']}")
    assert r.status_code == 200
    stored = r.json()
    assert stored["request_id"] == "req-1" and stored["dry_run"] is True and stored["bindings"] == []
    assert stored["plan"]["placements"] == plan["placements"]
    assert stored["plan"]["unplaced"] == plan["unplaced"]
    assert again.get("/v1/plans/nope").status_code == 404


def test_bind_hands_the_plan_to_the_binder_once(make_client, tmp_path):
    sink = tmp_path / "bindings.jsonl"
    client = make_client(sink=f"jsonl:{sink}")
    r = client.post("/v1/optimize?bind=true", json=BODY)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["dry_run"] is False
    [b] = out["bindings"]
    assert (b["agent"], b["node"], b["state"], b["plan_id"]) == ("team/fits", "n1", "bound", out["plan_id"])
    lines = [json.loads(x) for x in sink.read_text().splitlines()]
    assert [(x["agent"], x["node"]) for x in lines] == [("team/fits", "n1")]
    assert client.get(f"/v1/bindings/{b['id']}").json() == b
    assert client.get(f"/v1/plans/{out['plan_id']}").json()["bindings"] == [b]
    assert client.get("/v1/bindings/999999").status_code == 404

    # the same window again: the outbox refuses to bind an agent a live plan already holds
    second = client.post("/v1/optimize?bind=true", json=BODY).json()
    [dup] = second["bindings"]
    assert dup["state"] == "conflict" and out["plan_id"] in dup["error"]
    assert len(sink.read_text().splitlines()) == 1


def test_bind_rechecks_against_the_plans_snapshot(make_client):
    """A stale snapshot still shows `a` pending although this service bound it to n1; the next plan
    puts the higher-priority `b` on n1's last cpu, and the binder's re-check (the snapshot plus the
    outbox's bound agents) sends it back instead of over-committing the node."""
    client = make_client()
    a, b = pod("a", "2", namespace="team"), pod("b", "2", namespace="team", priority=10)
    body = {"cluster": NODES, "pending": [a], "options": {"time_limit": 5}}
    assert client.post("/v1/optimize?bind=true", json=body).json()["bindings"][0]["state"] == "bound"
    out = client.post("/v1/optimize?bind=true", json={**body, "pending": [a, b]}).json()
    assert out["placements"] == [{"agent": "team/b", "node": "n1"}]
    [got] = out["bindings"]
    assert got["state"] == "conflict" and "Insufficient cpu" in got["error"]


def test_bad_objects_get_the_cli_errors(client, tmp_path):
    bad = pod("agent-7", "12x", namespace="team-a")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump_all([*NODES["items"], bad]))
    res = runner.invoke(cli, ["plan", "-f", str(tmp_path / "bad.yaml")])
    assert res.exit_code == 2
    r = client.post("/v1/optimize", json={"cluster": NODES, "pending": [bad]})
    assert r.status_code == 422
    body = r.json()
    [err] = body["detail"]
    assert err["object"] == "Pod team-a/agent-7"
    assert err["field"] == "spec.containers[0].resources.requests.cpu"
    assert err["reason"].startswith("'12x' is not a quantity")
    assert f"error: {body['message']}" in res.stderr


def test_bad_request_shape_names_the_field(client):
    r = client.post("/v1/optimize", json={"pendin": [], "options": {"time_limit": -1}})
    assert r.status_code == 422
    fields = {(d["object"], d["field"]) for d in r.json()["detail"]}
    assert fields == {("request", "pendin"), ("request", "options.time_limit")}
    assert client.post("/v1/optimize", content=b"{not json", headers={
        "content-type": "application/json"}).status_code == 422
    bad = b'{"options": {"time_limit": NaN, "weights": {"cost": -1}, "seed": -3, "balance": {"cpu": -1}}}'
    r = client.post("/v1/optimize", content=bad, headers={"content-type": "application/json"})
    assert {d["field"] for d in r.json()["detail"]} == {
        "options.time_limit", "options.weights.cost", "options.seed", "options.balance.cpu"}
    r = client.post("/v1/optimize", json={"cluster": NODES, "pending": [{"kind": "Pod"}, 7]})
    assert {(d["object"], d["field"]) for d in r.json()["detail"]} == {
        ("Pod <unnamed, pending[0]>", "metadata"), ("Pod <unnamed, pending[0]>", "spec"),
        ("document pending[1]", "")}


def test_bad_profile_gets_the_cli_message(client, tmp_path):
    (tmp_path / "w.yaml").write_text(yaml.safe_dump_all([*NODES["items"], *PENDING]))
    res = runner.invoke(cli, ["plan", "-f", str(tmp_path / "w.yaml"), "--profile", "nope"])
    r = client.post("/v1/optimize", json={**BODY, "options": {"profile": "nope"}})
    assert r.status_code == 422 and res.exit_code == 2
    assert res.stderr.strip() == f"error: {r.json()['message']}"
    assert r.json()["detail"][0]["object"] == "options"


def test_token_guards_the_v1_routes_only(make_client):
    client = make_client(api_token="s3cret")
    assert client.post("/v1/optimize", json=BODY).status_code == 401
    wrong = client.post("/v1/optimize", json=BODY, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/plans/x").status_code == 401
    ok = client.post("/v1/optimize", json=BODY, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_body_over_the_limit_is_refused(make_client):
    client = make_client(max_body_bytes=2048)
    big = {**BODY, "pending": [pod(f"a{i}", "1") for i in range(40)]}
    assert len(json.dumps(big)) > 2048
    r = client.post("/v1/optimize", json=big)
    assert r.status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        data = json.dumps(big).encode()
        for i in range(0, len(data), 512):
            yield data[i:i + 512]

    assert client.post("/v1/optimize", content=chunks(), headers={
        "content-type": "application/json"}).status_code == 413
    assert client.post("/v1/optimize", json=BODY).status_code == 200
    assert 'agentplace_http_requests_total{code="413",method="POST",route="other"} 1.0' in \
        client.get("/metrics").text


def test_time_limit_and_workers_are_capped(make_client):
    client = make_client(max_time_limit=1.5, max_workers=1)
    out = client.post("/v1/optimize", json={**BODY, "options": {"time_limit": 600, "workers": 8}}).json()
    assert out["model"]["time_limit"] == 1.5 and out["model"]["workers"] == 1
    assert any("lowered to the server's cap 1.5s" in w for w in out["warnings"])


def test_full_pool_answers_429_with_retry_after(make_client, monkeypatch):
    client = make_client(solve_slots=1, queue_depth=0, retry_after=7)
    release = threading.Event()
    real = api.server.plan_window

    def slow(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(api.server, "plan_window", slow)
    first: dict[str, int] = {}
    t = threading.Thread(target=lambda: first.update(code=client.post("/v1/optimize", json=BODY).status_code))
    t.start()
    pool = client.app.state.service.pool
    deadline = time.monotonic() + 10
    while pool.running < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        r = client.post("/v1/optimize", json=BODY)
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert "agentplace_solve_rejections_total 1.0" in client.get("/metrics").text
        assert "agentplace_solves_running 1.0" in client.get("/metrics").text
    finally:
        release.set()
        t.join(15)
    assert first["code"] == 200
    assert client.post("/v1/optimize", json=BODY).status_code == 200  # the place was given back


def test_readyz_checks_the_database(make_client, tmp_path):
    ok = make_client()
    assert ok.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok", "solver": "ok"}}
    gone = tmp_path / "gone"
    gone.mkdir()
    broken = make_client(db=str(gone / "x.db"))
    broken.app.state.service.outbox.engine.dispose()
    (gone / "x.db").unlink()
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    r = broken.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["database"] != "ok"
    assert broken.get("/healthz").status_code == 200


def test_metrics_follow_the_plans_and_each_app_has_its_own(make_client):
    a = make_client()
    a.post("/v1/optimize", json=BODY)
    text = a.get("/metrics").text
    assert 'agentplace_schedule_attempts_total{result="scheduled"} 1.0' in text
    assert 'agentplace_schedule_attempts_total{result="unschedulable"} 1.0' in text
    assert 'agentplace_solve_duration_seconds_count{status="OPTIMAL"} 1.0' in text
    assert "agentplace_plan_gap_ratio 0.0" in text
    assert "agentplace_preemption_victims_total 0.0" in text
    assert "agentplace_pending_agents 0.0" in text
    assert 'agentplace_http_requests_total{code="200",method="POST",route="/v1/optimize"} 1.0' in text
    b = make_client()
    assert 'agentplace_schedule_attempts_total{result="scheduled"} 0.0' in b.get("/metrics").text


def test_one_json_log_line_per_request_and_plan(client, caplog):
    with caplog.at_level(logging.INFO, logger="agentplace.api"):
        out = client.post("/v1/optimize", json=BODY, headers={"X-Request-ID": "abc"}).json()
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "agentplace.api"]
    plan = [x for x in lines if x["event"] == "plan"]
    req = [x for x in lines if x["event"] == "request"]
    assert len(plan) == 1 and len(req) == 1
    assert plan[0]["request_id"] == "abc" and plan[0]["plan_id"] == out["plan_id"]
    assert (plan[0]["placed"], plan[0]["unplaced"], plan[0]["status"]) == (1, 1, "OPTIMAL")
    want = {"request_id": "abc", "method": "POST", "path": "/v1/optimize", "status": 200}
    assert {k: req[0][k] for k in want} == want and req[0]["duration_ms"] > 0


def test_openapi_documents_the_routes_with_an_example(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/optimize", "/v1/plans/{plan_id}", "/v1/bindings/{binding_id}", "/healthz", "/readyz",
            "/metrics"} <= set(spec["paths"])
    body = spec["paths"]["/v1/optimize"]["post"]["requestBody"]["content"]["application/json"]
    example = next(iter(body["examples"].values()))["value"]
    assert example["pending"][0]["kind"] == "Pod"
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("host, ok", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                       ("0.0.0.0", False), ("10.0.0.5", False)])
def test_serve_refuses_a_non_loopback_host_without_a_token(host, ok, monkeypatch):
    from api.serve import ServeError, check
    from api.settings import Settings

    monkeypatch.delenv("AGENTPLACE_API_TOKEN", raising=False)
    if ok:
        check(Settings(host=host))
    else:
        with pytest.raises(ServeError, match="without an API token"):
            check(Settings(host=host))
        check(Settings(host=host, api_token="t"))


def test_serve_command_refuses_before_listening(monkeypatch):
    monkeypatch.delenv("AGENTPLACE_API_TOKEN", raising=False)
    monkeypatch.delenv("AGENTPLACE_CONFIG", raising=False)
    res = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "refusing to listen on 0.0.0.0 without an API token" in res.stderr


def test_preemption_options_reach_the_solver_and_the_metrics(client):
    """A higher-priority agent evicts the pod filling the only node; `preemption: false` keeps it."""
    body = {"cluster": [node("n1", "2"), pod("low", "2", node_name="n1", priority=0)],
            "pending": [pod("hi", "2", priority=100)], "options": {"time_limit": 5}}
    out = client.post("/v1/optimize", json=body).json()
    assert [e["pod"] for e in out["evictions"]] == ["default/low"]
    assert out["placements"] == [{"agent": "default/hi", "node": "n1"}]
    assert "agentplace_preemption_victims_total 1.0" in client.get("/metrics").text
    kept = client.post("/v1/optimize", json={**body, "options": {"preemption": False}}).json()
    assert kept["evictions"] == [] and kept["placements"] == []


def test_bind_evicts_first_then_binds(client):
    """The binder issues the plan's eviction, then binds the preempting agent into the room."""
    body = {"cluster": [node("n1", "2"), pod("low", "2", node_name="n1", priority=0)],
            "pending": [pod("hi", "2", priority=100)], "options": {"time_limit": 5}}
    out = client.post("/v1/optimize?bind=true", json=body).json()
    assert len(out["evictions"]) == 1
    assert [(e["pod"], e["agent"], e["state"]) for e in out["evictions_issued"]] == [
        ("default/low", "default/hi", "evicted")]
    [b] = out["bindings"]
    assert b["agent"] == "default/hi" and b["state"] == "bound"
    stored = client.get(f"/v1/plans/{out['plan_id']}").json()
    assert [e["state"] for e in stored["evictions_issued"]] == ["evicted"]


def test_whatif_answers_the_diff_and_checks_the_scenario(client):
    scenario = {"apiVersion": "agentplace.io/v1alpha1", "kind": "Scenario",
                "metadata": {"name": "lose-n1"}, "changes": [{"removeNodes": {"names": ["n1"]}}]}
    r = client.post("/v1/whatif", json={**BODY, "scenario": scenario})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["request_id"] == r.headers["x-request-id"]
    assert [u["agent"] for u in got["newly_unplaced"]] == ["team/fits"]  # n1 was its only node
    assert got["summary"]["baseline"]["verified"] and got["summary"]["scenario"]["verified"]
    bad = client.post("/v1/whatif", json={**BODY, "scenario": {**scenario, "changes": [
        {"removeNodes": {"nmes": ["n1"]}}]}})
    assert bad.status_code == 422
    assert "nmes" in bad.text
