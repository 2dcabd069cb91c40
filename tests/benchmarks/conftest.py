"""A tiny data directory in the layout of shared/data, written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

# (name, capacity, item lines "w1 w2 q", optimum)
TINY_CT01 = (
    ("CL_1_6_1", "10 10", ["6 2 1", "5 5 2", "4 4 1", "3 7 1", "2 2 1"], 3),
    ("CL_2_5_1", "10 10", ["5 5 4", "9 1 1"], 3),
    ("CL_10_3_1", "100 100", ["50 -2 1", "30 60 1", "20 42 1"], 1),  # a negative size: skipped
)


def write_ct01(root: Path) -> Path:
    ct = root / "vbp-caprara-toth-2d"
    (ct / "CT01").mkdir(parents=True)
    rows = ["dimension;class;items;instance_number;LB;UB;best_known_LB;best_known_UB"]
    for name, cap, lines, opt in TINY_CT01:
        n = sum(int(line.split()[-1]) for line in lines)
        (ct / "CT01" / f"{name}.vbp").write_text(f"2\n{cap}\n{len(lines)}\n" + "\n".join(lines) + "\n")
        _, k, _, i = name.split("_")
        rows.append(f"2;{k};{n};{i};{opt};{opt};{opt};{opt}")
    (ct / "optimal_values.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_ct01(tmp_path / "data")
