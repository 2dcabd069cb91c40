"""The scale suite end to end on its smallest windows: every method runs, every plan verified,
never fewer agents than the greedy, results and the log-log plot written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import cli


@pytest.mark.slow
def test_scale_smoke_tier_at_500_nodes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = cli.main(["scale", "--tier", "smoke", "--max-nodes", "500", "--time-limit", "2",
                   "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "results.json").read_text())
    assert result["ok"] is True
    methods = set(result["parameters"]["methods"])
    records = result["records"]
    assert {(r["shape"], r["method"]) for r in records} == {
        (s, m) for s in ("basic", "mixed") for m in methods}
    greedy = {r["shape"]: r["placed"] for r in records if r["method"] == "greedy"}
    for r in records:
        assert r["verified"] is True and not r.get("violations"), r  # optimize() verifies inside
        assert r["placed"] >= greedy[r["shape"]], r
    assert (out / "scaling.png").stat().st_size > 0
    assert (out / "results.csv").read_text().count("\n") == len(records) + 1
