"""GPU cards as agentplace reads them: the input convention for whole and fractional GPUs.

The convention is the one of Alibaba's GPU-sharing clusters (the openb trace, cluster-trace-gpu-v2023,
and the FGD simulator of Weng et al., USENIX ATC'23, which replays it):

  - A node declares its cards with the extended resource `alibabacloud.com/gpu-count: K` in
    `status.allocatable` (K cards of 1000 milli-GPU each); `alibabacloud.com/gpu-milli: 1000*K`
    is the same capacity in milli-GPU, which NodeResourcesFit checks as a node total. A node with
    gpu-milli but no gpu-count has gpu-milli // 1000 cards. The GPU model is the node label
    `alibabacloud.com/gpu-card-model`; an agent restricted to models says so with ordinary
    required node affinity on that label (NodeAffinity enforces it).
  - An agent asks with the request `alibabacloud.com/gpu-milli: M` (container resources): M < 1000
    is a share of ONE card (M milli of a single card, never split across cards); M >= 1000 must be
    a multiple of 1000 and takes M / 1000 whole cards that nothing else uses. Any other M is
    invalid and no node takes the agent (GpuShare says why).
  - A running pod's cards: the annotation `alibabacloud.com/gpu-index` (openb's DeviceIndex:
    card indices joined by "-", e.g. "2-3") when present and consistent; otherwise derived
    deterministically: declared pods first, then whole-card pods on the lowest free cards, then
    shares by best-fit decreasing (largest share first, onto the fullest card that still takes
    it). Declare the index to make the occupancy exact; agentplace's own replay does.

This module only reads input; the CP-SAT encoding and the verifier each do their own reasoning
on top of it (rules/gpu_share.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from models import Node, Pod

GPU_MILLI = "alibabacloud.com/gpu-milli"
GPU_COUNT = "alibabacloud.com/gpu-count"
GPU_INDEX = "alibabacloud.com/gpu-index"
GPU_MODEL = "alibabacloud.com/gpu-card-model"
CARD = 1000  # milli-GPU per card
INDEX_SEP = "-"


@dataclass(frozen=True)
class GpuAsk:
    """What one agent asks of the GPU cards: `share` milli of one card, or `whole` cards."""

    share: int = 0
    whole: int = 0
    invalid: str | None = None  # why the request cannot be read as either

    @property
    def any(self) -> bool:
        return bool(self.share or self.whole or self.invalid)


def gpu_ask(pod: Pod) -> GpuAsk:
    m = pod.requests().get(GPU_MILLI, 0)
    if m <= 0:
        return GpuAsk()
    if m < CARD:
        return GpuAsk(share=m)
    if m % CARD:
        return GpuAsk(invalid=f"{GPU_MILLI} request {m} is neither a share of one card "
                              f"(< {CARD}) nor whole cards (a multiple of {CARD})")
    return GpuAsk(whole=m // CARD)


def node_cards(node: Node) -> int:
    alloc = node.allocatable()
    if GPU_COUNT in alloc:
        return max(0, alloc[GPU_COUNT])
    return max(0, alloc.get(GPU_MILLI, 0) // CARD)


@dataclass
class CardState:
    """Per-card free milli-GPU on one node, and which cards nothing uses (whole cards need those)."""

    free: list[int]
    untouched: list[bool]
    notes: list[str] = field(default_factory=list)  # running pods whose cards were not declared

    def take_whole(self, cards: Sequence[int]) -> None:
        for k in cards:
            self.free[k], self.untouched[k] = 0, False

    def take_share(self, k: int, milli: int) -> None:
        self.free[k] -= milli
        self.untouched[k] = False


def parse_index(pod: Pod, cards: int, ask: GpuAsk) -> list[int] | None:
    """The declared card indices of a running pod, or None when absent or inconsistent."""
    raw = pod.metadata.annotations.get(GPU_INDEX)
    if raw is None:
        return None
    try:
        idx = [int(x) for x in str(raw).split(INDEX_SEP) if x.strip() != ""]
    except ValueError:
        return None
    want = ask.whole or (1 if ask.share else 0)
    if len(idx) != want or len(set(idx)) != len(idx) or any(not 0 <= k < cards for k in idx):
        return None
    return idx


def card_state(node: Node, running: Iterable[Pod]) -> CardState:
    """The node's cards after its running pods (see the module docstring for the order)."""
    cards = node_cards(node)
    st = CardState([CARD] * cards, [True] * cards)
    undeclared: list[tuple[Pod, GpuAsk]] = []
    for pod in running:
        ask = gpu_ask(pod)
        if not (ask.share or ask.whole):
            continue
        idx = parse_index(pod, cards, ask)
        ok = idx is not None and (
            all(st.untouched[k] for k in idx) if ask.whole else st.free[idx[0]] >= ask.share)
        if idx is not None and ok:
            if ask.whole:
                st.take_whole(idx)
            else:
                st.take_share(idx[0], ask.share)
        else:
            undeclared.append((pod, ask))
    for pod, ask in sorted((u for u in undeclared if u[1].whole), key=lambda u: -u[1].whole):
        free = [k for k in range(cards) if st.untouched[k]][:ask.whole]
        if len(free) < ask.whole:
            st.notes.append(f"Pod {pod.ref}: {ask.whole} whole card(s) do not fit on {node.name}")
            continue
        st.take_whole(free)
    for pod, ask in sorted((u for u in undeclared if u[1].share), key=lambda u: -u[1].share):
        fits = [k for k in range(cards) if st.free[k] >= ask.share]
        if not fits:
            st.notes.append(f"Pod {pod.ref}: a {ask.share}m share fits no card of {node.name}")
            continue
        st.take_share(min(fits, key=lambda k: (st.free[k], k)), ask.share)
    return st


def pack(state: CardState, whole: Sequence[int], shares: Sequence[int]
         ) -> tuple[list[list[int]], list[int]] | None:
    """An exact card packing of new agents onto a node's cards, or None when none exists.

    `whole[i]`: cards agent i needs; `shares[j]`: milli agent j needs on one card. Returns (cards
    per whole agent, card per share agent). Whole agents take the lowest untouched cards (any
    untouched cards are alike); shares are searched depth-first, largest first, fullest card
    first, skipping cards whose free amount was already tried (same free, same subtree).
    """
    free = list(state.free)
    untouched = [k for k in range(len(free)) if state.untouched[k]]
    need = sum(whole)
    if need > len(untouched):
        return None
    it = iter(untouched[:need])
    whole_cards = [[next(it) for _ in range(w)] for w in whole]
    for k in untouched[:need]:
        free[k] = 0
    order = sorted(range(len(shares)), key=lambda j: -shares[j])
    placed = [-1] * len(shares)
    failed: set[tuple[int, tuple[int, ...]]] = set()

    def dfs(i: int) -> bool:
        if i == len(order):
            return True
        key = (i, tuple(sorted(free)))
        if key in failed:
            return False
        s, tried = shares[order[i]], set()
        for k in sorted(range(len(free)), key=lambda k: (free[k], k)):
            if free[k] < s or free[k] in tried:
                continue
            tried.add(free[k])
            free[k] -= s
            placed[order[i]] = k
            if dfs(i + 1):
                return True
            free[k] += s
        failed.add(key)
        return False

    return (whole_cards, placed) if dfs(0) else None


def index_annotation(cards: Sequence[int]) -> str:
    return INDEX_SEP.join(str(k) for k in cards)
