import json
from pathlib import Path

import pytest

from benchmarks import cli
from benchmarks.baselines import HEURISTICS, Packing


def test_skip_message_when_the_data_dir_is_absent(tmp_path: Path, capsys):
    missing = tmp_path / "nowhere"
    assert cli.main(["vbp", "--data", str(missing), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and str(missing) in out and "AGENTPLACE_DATA" in out
    assert not (tmp_path / "out").exists()


def test_data_dir_from_the_environment(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("AGENTPLACE_DATA", str(tmp_path / "env-data"))
    assert cli.main(["vbp"]) == 0
    assert str(tmp_path / "env-data") in capsys.readouterr().out


def test_every_registered_suite_is_implemented():
    assert cli.PLANNED == {} and all(cli.SUITES.values())


def test_unknown_suite_is_a_usage_error():
    with pytest.raises(SystemExit) as e:
        cli.main(["nope"])
    assert e.value.code == 2


def test_end_to_end_on_a_tiny_data_dir(tiny_data: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["vbp", "--data", str(tiny_data), "--out", str(out), "--time-limit", "5",
                   "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    result = json.loads((out / "results.json").read_text())
    assert result["ok"] and result["violations"] == [] and result["consistency_errors"] == []
    assert result["machine"]["cores"] >= 1 and result["machine"]["versions"]["ortools"]
    assert result["parameters"]["time_limit"] == 5 and result["parameters"]["workers"] == 1
    by = {r["name"]: r for r in result["instances"]}
    assert by["CL_10_3_1"]["skipped"] and "negative" in by["CL_10_3_1"]["skip_reason"]
    for name in ("CL_1_6_1", "CL_2_5_1"):
        m = by[name]["methods"]
        assert m["agentplace"]["status"] == "OPTIMAL" and m["agentplace"]["proven"]
        assert m["agentplace"]["lower_bound"] == by[name]["ref"]
        assert m["agentplace"]["bins"] == by[name]["ref"] == m["PuLP-CBC"]["bins"]
        assert {"FFD-max", "FFD-sum", "BFD-max", "BFD-sum", "greedy-MostAllocated"} <= set(m)
    assert (out / "results.csv").read_text().count("\n") == 4  # header + 3 instances
    assert "CT01/CL_01" in text and "skipped 1" in text


def test_a_plan_that_breaks_a_rule_fails_the_run(tiny_data: Path, tmp_path: Path, monkeypatch,
                                                 capsys):
    def everything_in_bin_0(capacity, sizes):
        import numpy as np
        return Packing("broken", np.zeros(len(sizes), dtype=np.int64))

    monkeypatch.setitem(HEURISTICS, "FFD-max", everything_in_bin_0)
    rc = cli.main(["vbp", "--data", str(tiny_data), "--out", str(tmp_path / "out"),
                   "--time-limit", "1", "--workers", "1", "--no-milp"])
    assert rc == 1
    assert "VIOLATION" in capsys.readouterr().out


@pytest.mark.slow
def test_smoke_tier_on_five_real_instances(tmp_path: Path):
    from benchmarks.common import resolve_data_dir

    data = resolve_data_dir(None)
    if not (data / "vbp-mommessin-cor2024").is_dir():
        pytest.skip(f"no VBP data under {data}")
    out = tmp_path / "out"
    rc = cli.main(["vbp", "--tier", "smoke", "--max-instances", "5", "--time-limit", "1",
                   "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "results.json").read_text())
    ran = [r for r in result["instances"] if not r["skipped"]]
    assert len(ran) == 5 and len({r["set"] for r in ran}) >= 3
    assert all(r["n"] <= 61 for r in ran)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert sorted(p.rsplit("/", 1)[-1] for p in result["plots"]) == [
        "bins_minus_ref.png", "proven_optimal.png", "time_vs_n.png"]


def test_solve_options_are_checked_against_solve_config():
    assert cli.solve_options(["hint=false", "log-search=true"]) == (("hint", False),
                                                                     ("log_search", True))
    with pytest.raises(ValueError, match="KEY one of"):
        cli.solve_options(["no_such_field=1"])
    with pytest.raises(ValueError, match="KEY one of"):
        cli.solve_options(["time_limit=3"])  # has its own flag
    assert cli.main(["vbp", "--solve-opt", "bogus=1"]) == 2
