from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.vbp.instances import (
    VbpFormatError,
    discover,
    load_instances,
    parse_vbp,
    round_robin,
    sample,
    select,
    shuffle_items,
)


def test_parse_vbp_expands_multiplicities_and_keeps_negative_sizes(tmp_path: Path):
    f = tmp_path / "x.vbp"
    f.write_text("3\n100 50 7\n3\n10 20 1 2\n5 -2 0 1\n1 1 1 0\n")
    capacity, sizes = parse_vbp(f.read_text(), str(f))
    assert capacity.tolist() == [100, 50, 7]
    assert sizes.tolist() == [[10, 20, 1], [10, 20, 1], [5, -2, 0]]
    assert sizes.dtype == np.int64


@pytest.mark.parametrize("text,msg", [
    ("2\n10 10\n2\n1 1 1\n", "ends while reading item type 1"),
    ("2\n10 x\n0\n", "not an integer"),
    ("2\n10 10\n1\n1 1 1\n9\n", "trailing"),
    ("2\n10 10\n1\n1 1 -1\n", "negative multiplicity"),
])
def test_parse_vbp_rejects_malformed_files(text: str, msg: str):
    with pytest.raises(VbpFormatError, match=msg):
        parse_vbp(text, "bad.vbp")


def test_shuffle_is_seeded_and_a_permutation():
    sizes = np.arange(60).reshape(30, 2)
    a, b = shuffle_items(sizes, "Triplet/classC_60_3_0", 0), shuffle_items(sizes, "Triplet/classC_60_3_0", 0)
    assert (a == b).all()
    assert not (a == sizes).all()
    assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, sizes.tolist()))
    assert not (shuffle_items(sizes, "New/classC_60_3_0", 0) == a).all()  # keyed by set + name


def test_discover_load_references_and_skip_reason(tiny_data: Path):
    files, notes = discover(tiny_data)
    assert [f.name for f in files] == ["CL_1_6_1", "CL_2_5_1", "CL_10_3_1"]
    assert any("vbp-mommessin-cor2024" in n for n in notes)
    insts = load_instances(tiny_data, select(files, "smoke"), seed=0)
    by = {i.name: i for i in insts}
    assert by["CL_1_6_1"].n == 6 and by["CL_1_6_1"].d == 2  # n from the file, demand expanded
    assert by["CL_1_6_1"].reference.value == 3 and by["CL_1_6_1"].reference.kind == "OPT"
    assert by["CL_1_6_1"].klass == "CT01/CL_01"
    assert by["CL_1_6_1"].skip_reason() is None
    assert "cannot be negative" in by["CL_10_3_1"].skip_reason()
    assert select(files, "standard") == []


def test_sample_is_fixed_per_seed_and_round_robin_spans_classes(tiny_data: Path):
    files, _ = discover(tiny_data)
    insts = load_instances(tiny_data, files, seed=0)
    many = [replace(i, name=f"{i.name}_{k}") for k in range(3) for i in insts]
    assert [id(i) for i in sample(many, "smoke", 1, 0)] == [id(i) for i in sample(many, "smoke", 1, 0)]
    assert len(sample(many, "smoke", 2, 0)) == 6
    picked = round_robin(insts, 2)
    assert {i.klass for i in picked} == {"CT01/CL_01", "CT01/CL_02"}
