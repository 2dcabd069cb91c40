"""The service's parts on their own: settings precedence and errors, the bounded solve pool,
the JSON log formatter, the shared plan options."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest

from api.logs import JsonFormatter
from api.planning import OptionError, PlanOptions, parse_balance, parse_weights
from api.pool import Busy, SolvePool
from api.settings import load_settings
from models import InputErrors


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("AGENTPLACE_API_TOKEN", "AGENTPLACE_CONFIG", "AGENTPLACE_DB", "AGENTPLACE_SINK"):
        monkeypatch.delenv(var, raising=False)


def test_settings_come_from_file_then_env_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "agentplace.yaml"
    cfg.write_text("api_token: from-file\nport: 9000\nqueue_depth: 0\ndb: file.db\n")
    s = load_settings(cfg)
    assert (s.api_token, s.port, s.queue_depth, s.db) == ("from-file", 9000, 0, "file.db")
    assert "from-file" not in repr(s)  # never printed
    monkeypatch.setenv("AGENTPLACE_API_TOKEN", "from-env")
    monkeypatch.setenv("AGENTPLACE_CONFIG", str(cfg))
    s = load_settings(None, port=9100, db=None)
    assert (s.api_token, s.port, s.db) == ("from-env", 9100, "file.db")


def test_a_bad_setting_names_the_file_and_field(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("solve_slots: 0\nmax_time_limt: 3\n")
    with pytest.raises(InputErrors) as e:
        load_settings(cfg)
    got = {(x.obj, x.path) for x in e.value.errors}
    assert got == {(f"config file {cfg}", "solve_slots"), (f"config file {cfg}", "max_time_limt")}
    with pytest.raises(InputErrors, match="No such file"):
        load_settings(tmp_path / "missing.yaml")


def test_pool_admits_slots_plus_queue_then_refuses_and_gives_places_back():
    pool = SolvePool(slots=1, queue_depth=1)
    gate = threading.Event()

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(pool.run(lambda: gate.wait(5) and "first"))
        second = asyncio.ensure_future(pool.run(lambda: "second"))
        await asyncio.sleep(0.05)
        assert (pool.admitted, pool.running) == (2, 1)
        with pytest.raises(Busy):
            await pool.run(lambda: "third")
        gate.set()
        results = list(await asyncio.gather(first, second))
        with pytest.raises(ZeroDivisionError):  # a failing solve gives its place back too
            await pool.run(lambda: 1 / 0)
        return results

    try:
        assert asyncio.run(scenario()) == ["first", "second"]
        assert (pool.admitted, pool.running) == (0, 0)
    finally:
        pool.shutdown()


def test_json_formatter_writes_one_object_per_line():
    rec = logging.LogRecord("agentplace.api", logging.INFO, __file__, 1, "plan", None, None)
    rec.fields = {"plan_id": "p-1", "placed": 3}
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    out = json.loads(line)
    assert out["event"] == "plan" and out["plan_id"] == "p-1" and out["placed"] == 3
    assert out["level"] == "info" and out["logger"] == "agentplace.api"


def test_plan_options_parse_like_the_cli_and_cap_like_the_server():
    assert parse_weights(["cost=2", "pack=0.5"]) == {"cost": 2.0, "pack": 0.5}
    with pytest.raises(OptionError, match=r"--weight 'cost': expected TERM=NUMBER"):
        parse_weights(["cost"])
    assert parse_balance(None) == {"cpu": 1, "memory": 1}
    assert parse_balance(["nvidia.com/gpu=3"]) == {"nvidia.com/gpu": 3}
    with pytest.raises(OptionError, match="RESOURCE=INTEGER"):
        parse_balance(["cpu=x"])
    opts, notes = PlanOptions(time_limit=60, workers=4).capped(10, 4)
    assert (opts.time_limit, opts.workers, len(notes)) == (10, 4, 1)
    cfg = opts.solve_config()
    assert (cfg.time_limit, cfg.workers, cfg.balance_resources) == (10, 4, {"cpu": 1, "memory": 1})
