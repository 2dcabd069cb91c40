"""GpuShare: per-card whole and fractional GPUs (convention: optimizer/gpu_cards.py).

The table rows go through the four readings of conftest.check_rule (prefilter, explain, a tiny
solve, verify); the batch tests check that the solver, the greedy and the verifier agree on
packings that a node total cannot tell apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from optimizer import SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.gpu_cards import GPU_INDEX, CardState, card_state, gpu_ask, pack
from optimizer.index import Index
from optimizer.rules.gpu_share import no_card_with, too_few_cards
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import inventory, node, pod
from tests.optimizer.rules.conftest import case, check_rule, rule_named

RULE = rule_named("GpuShare")
MILLI, COUNT = "alibabacloud.com/gpu-milli", "alibabacloud.com/gpu-count"


def gpu_node(name: str = "n", cards: int = 2, cpu: str = "64") -> dict[str, Any]:
    return node(name, cpu=cpu, memory="256Gi",
                extra={COUNT: str(cards), MILLI: str(1000 * cards)})


def gpu_pod(name: str, milli: int, *, on: str | None = None, index: str | None = None,
            cpu: str = "1") -> dict[str, Any]:
    out = pod(name, cpu, node_name=on, extra={MILLI: str(milli)})
    if index is not None:
        out["metadata"]["annotations"] = {GPU_INDEX: index}
    return out


CASES = [
    case("a share fits an empty card", gpu_node(cards=1), gpu_pod("agent", 460)),
    case("whole cards fit an empty node", gpu_node(cards=8), gpu_pod("agent", 8000)),
    case("a pod without GPUs is not this rule's business", gpu_node(), pod("agent", "1")),
    case("a share needs one card with that much free, not the node total",
         gpu_node(), gpu_pod("r0", 500, on="n", index="0"), gpu_pod("r1", 500, on="n", index="1"),
         gpu_pod("agent", 600), want=no_card_with(600)),
    case("a share fits next to another on the same card",
         gpu_node(cards=1), gpu_pod("r0", 500, on="n", index="0"), gpu_pod("agent", 500)),
    case("whole cards need untouched cards: a 100m share spoils one",
         gpu_node(cards=4), gpu_pod("r0", 100, on="n", index="0"),
         gpu_pod("r1", 100, on="n", index="1"), gpu_pod("agent", 3000), want=too_few_cards(3)),
    case("one whole card fits beside a card holding a share",
         gpu_node(), gpu_pod("r0", 100, on="n", index="1"), gpu_pod("agent", 1000)),
    case("undeclared running shares are packed best-fit decreasing: one card stays free",
         gpu_node(), gpu_pod("r0", 600, on="n"), gpu_pod("r1", 300, on="n"),
         gpu_pod("agent", 1000)),
    case("an inconsistent gpu-index is ignored and the occupancy derived",
         gpu_node(), gpu_pod("r0", 600, on="n", index="7"), gpu_pod("r1", 300, on="n"),
         gpu_pod("agent", 1000)),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_gpu_share_table(objects: list[dict[str, Any]], want: str | None) -> None:
    check_rule(RULE, objects, want)


def test_a_request_neither_share_nor_whole_cards_is_rejected_everywhere_with_the_reason() -> None:
    inv = inventory(gpu_node(), gpu_pod("agent", 1500))
    snap = build_snapshot(inv)
    assert gpu_ask(snap.pending[0]).invalid
    ix = Index(snap)
    assert not prefilter(ix)[1].any()
    plan = optimize(inv, SolveConfig(time_limit=2, workers=1))
    assert plan.placements == [] and "neither a share of one card" in plan.unplaced[0].reason
    assert RULE.verify({snap.pending[0].ref: "n"}, snap)


def three_shares(milli: int = 600) -> Any:
    """A 2-card node and three shares: the node total (1800 <= 2000) says all fit; cards say 2."""
    return inventory(gpu_node(), *(gpu_pod(f"a{i}", milli) for i in range(3)))


def test_solver_and_greedy_place_only_what_the_cards_hold() -> None:
    inv = three_shares()
    snap = build_snapshot(inv)
    ix = Index(snap)
    static, _ = prefilter(ix)
    assert int((greedy(ix, static) >= 0).sum()) == 2
    plan = optimize(inv, SolveConfig(time_limit=5, workers=1))
    assert len(plan.placements) == 2 and plan.verified
    assert "no GPU card with 600m" in plan.unplaced[0].reason


def test_verifier_rejects_a_plan_the_node_total_allows_but_no_card_packing_does() -> None:
    snap = build_snapshot(three_shares())
    plan = [(p.ref, "n") for p in snap.pending]
    found = [v for v in verify(plan, snap) if v.rule == "GpuShare"]
    assert len(found) == 1 and "no packing" in found[0].message
    assert not verify(plan[:2], snap)


def test_whole_cards_and_shares_share_a_node_exactly() -> None:
    # 4 cards: 2 whole + (600 + 400) + (600 + 400) is the only packing, and the solver finds it
    inv = inventory(gpu_node(cards=4), gpu_pod("w", 2000),
                    *(gpu_pod(f"s{i}", m) for i, m in enumerate((600, 600, 400, 400))))
    plan = optimize(inv, SolveConfig(time_limit=5, workers=1))
    assert len(plan.placements) == 5 and plan.verified


def test_solver_finds_the_only_packing_of_four_shares_on_two_cards() -> None:
    # shares 400, 400, 600, 600 fit two cards only as (400+600, 400+600): all four placed
    inv = inventory(gpu_node(), *(gpu_pod(f"s{i}", m) for i, m in enumerate((400, 400, 600, 600))))
    plan = optimize(inv, SolveConfig(time_limit=5, workers=1))
    assert len(plan.placements) == 4 and plan.verified


@pytest.mark.parametrize(("free", "whole", "shares", "ok"), [
    ([1000, 1000], [], [400, 400, 600, 600], True),
    ([1000, 1000], [], [700, 700, 700], False),
    ([1000, 1000, 1000], [1], [500, 500, 500, 500], True),
    ([1000, 1000, 1000], [2], [500, 500, 100], False),
    ([300, 1000], [], [300, 700, 300], True),
    ([300, 1000], [1], [300], True),
])
def test_pack_is_exact_on_small_cases(free: list[int], whole: list[int], shares: list[int],
                                      ok: bool) -> None:
    st = CardState(list(free), [f == 1000 for f in free])
    got = pack(st, whole, shares)
    assert (got is not None) == ok
    if got is not None:
        whole_cards, card_of = got
        used = [1000 - f for f in free]
        for cards in whole_cards:
            for k in cards:
                assert st.untouched[k] and used[k] == 0
                used[k] = 1000
        for s, k in zip(shares, card_of, strict=True):
            used[k] += s
        assert max(used) <= 1000


def test_card_state_reads_declared_indices_and_whole_pods() -> None:
    snap = build_snapshot(inventory(
        gpu_node(cards=4), gpu_pod("w", 2000, on="n", index="1-2"),
        gpu_pod("s", 300, on="n", index="3"), gpu_pod("agent", 100)))
    st = card_state(snap.nodes[0], snap.running)
    assert st.free == [1000, 0, 0, 700] and st.untouched == [True, False, False, False]


@pytest.mark.parametrize("seed", range(12))
def test_the_encoding_is_exact_the_solver_places_the_largest_packable_subset(seed: int) -> None:
    """Random shares and whole-card agents on one node with a random running occupancy: the
    solver's count equals the largest subset an exhaustive search can pack (all priority 0)."""
    from itertools import combinations

    rng = np.random.default_rng(seed)
    cards = int(rng.integers(2, 5))
    running = []
    for k in range(cards):
        if rng.random() < 0.5:
            running.append(gpu_pod(f"r{k}", int(rng.choice([100, 300, 500, 700])), on="n",
                                   index=str(k)))
    asks = [int(rng.choice([250, 400, 600, 750, 1000, 2000])) for _ in range(int(rng.integers(3, 7)))]
    inv = inventory(gpu_node(cards=cards), *running,
                    *(gpu_pod(f"a{i}", m, cpu="100m") for i, m in enumerate(asks)))
    snap = build_snapshot(inv)
    st = card_state(snap.nodes[0], snap.running)
    best = 0
    for size in range(len(asks), 0, -1):
        for subset in combinations(asks, size):
            whole = [m // 1000 for m in subset if m >= 1000]
            shares = [m for m in subset if m < 1000]
            if pack(CardState(list(st.free), list(st.untouched)), whole, shares) is not None:
                best = size
                break
        if best:
            break
    plan = optimize(inv, SolveConfig(time_limit=10, workers=1))
    assert plan.status == "OPTIMAL" and len(plan.placements) == best, (asks, st.free)
