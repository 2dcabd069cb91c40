"""GpuShare: whole and fractional GPUs, card by card (the convention is in optimizer/gpu_cards.py).

NodeResourcesFit already holds the node total of `alibabacloud.com/gpu-milli`; this rule adds
what a total cannot say: a share (< 1000 milli) lives on ONE card, and whole-card agents need
cards nothing else touches. After GPU-sharing schedulers (Alibaba's gpushare extender, the
Open-GPU-Share plugin of the FGD simulator), which run after the in-tree Filters.

Readings:
  - `prefilter` (numpy): a share needs some card with that much free, whole cards need that many
    untouched cards, after the node's running pods.
  - `encode`: per node with GPU candidates, the share agents are aggregated by size (classes of
    one size are interchangeable on a card) and packed onto the node's cards: y[s, k] = agents
    of size s on card k, u[k] = card k taken whole (untouched cards only), with
    sum_s s*y[s, k] + free_k*u[k] <= free_k, sum_k y[s, k] = agents of size s placed there and
    sum_k u[k] = whole cards placed there. Cards alike (same free, same untouched flag) are
    ordered by load. Exact: a plan satisfies it iff a card packing exists; the variables grow
    with (node, size) candidates times cards, never with agents.
  - `verify` re-reads the raw pods and constructs a packing per node (gpu_cards.pack, an exact
    depth-first search), sharing nothing with the encoding.
  - `explain` in the words of GPU-sharing schedulers: no card with the share free, or too few
    free cards.
  - `admits`: the greedy's per-card bookkeeping (best-fit card for each share it binds).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from ortools.sat.python import cp_model

from models import Node, Pod
from optimizer.gpu_cards import (
    CARD,
    GPU_COUNT,
    GPU_MILLI,
    CardState,
    card_state,
    gpu_ask,
    node_cards,
    pack,
)
from optimizer.index import Index
from optimizer.rules.base import Assignment, ClusterView, NodeUsage, Reason, Violation
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.baseline import GreedyState
    from optimizer.model import ModelBuilder

NAME = "GpuShare"


def no_card_with(milli: int) -> str:
    return f"node(s) had no GPU card with {milli}m {GPU_MILLI} free"


def too_few_cards(cards: int) -> str:
    return f"node(s) had fewer than {cards} free GPU card(s)"


@dataclass(frozen=True)
class CardTables:
    """Per class and per node, built once per Index."""

    share: np.ndarray  # int64[cls]: milli of one card, 0 when not a share
    whole: np.ndarray  # int64[cls]: whole cards, 0 when none
    invalid: list[str | None]  # per class: why its request is unreadable
    cards: np.ndarray  # int64[node]
    free: np.ndarray  # int64[node, card]: free milli (0 past the node's cards)
    untouched: np.ndarray  # bool[node, card]

    @property
    def any_gpu(self) -> bool:
        return bool(self.share.any() or self.whole.any() or any(self.invalid))


_TABLES: weakref.WeakKeyDictionary[Index, CardTables] = weakref.WeakKeyDictionary()


def tables(ix: Index) -> CardTables:
    got = _TABLES.get(ix)
    if got is None:
        asks = [gpu_ask(c.pod) for c in ix.classes]
        # no node names a GPU resource (the Index's resources hold every allocatable name):
        # no cards, without reading 20,000 nodes' allocatable each window
        gpu_named = GPU_COUNT in ix.res_pos or GPU_MILLI in ix.res_pos
        cards = (np.array([node_cards(n) for n in ix.snap.nodes], dtype=np.int64) if gpu_named
                 else np.zeros(ix.num_nodes, dtype=np.int64))
        width = int(cards.max()) if cards.size else 0
        free = np.zeros((ix.num_nodes, width), dtype=np.int64)
        untouched = np.zeros((ix.num_nodes, width), dtype=bool)
        for i, node in enumerate(ix.snap.nodes):
            if cards[i]:
                st = card_state(node, (ix.snap.running[p] for p in ix.snap.running_on[i]))
                free[i, :cards[i]] = st.free
                untouched[i, :cards[i]] = st.untouched
        got = CardTables(np.array([a.share for a in asks], dtype=np.int64),
                         np.array([a.whole for a in asks], dtype=np.int64),
                         [a.invalid for a in asks], cards, free, untouched)
        _TABLES[ix] = got
    return got


class GpuShare:
    name: ClassVar[str] = NAME

    def __init__(self) -> None:
        # greedy bookkeeping per GreedyState: (state, free, untouched, last agent, applied)
        self._greedy: weakref.WeakKeyDictionary[Index, list[Any]] = weakref.WeakKeyDictionary()
        self._hints: dict[Any, Any] = {}
        self._views: dict[str, Any] = {}  # the last ClusterView explain read, by node

    # --- vectorised ---------------------------------------------------------------------------

    def prefilter(self, ix: Index) -> np.ndarray | None:
        t = tables(ix)
        if not t.any_gpu:
            return None
        return _fits(t, t.free, t.untouched, np.arange(ix.num_classes))

    def tightness(self, ix: Index) -> np.ndarray | None:
        """float[cls, node] for optimizer/candidates.py: a share's leftover on the tightest
        card it fits (in cards), whole cards' leftover untouched cards (in node cards)."""
        t = tables(ix)
        if not (t.share.any() or t.whole.any()):
            return None
        out = np.zeros((ix.num_classes, ix.num_nodes))
        cards = np.maximum(t.cards, 1).astype(np.float64)
        idle = t.untouched.sum(axis=1)
        for c in np.nonzero(t.share)[0].tolist():
            left = np.where(t.free >= t.share[c], t.free - t.share[c], CARD)
            out[c] = left.min(axis=1) / CARD if left.size else 1.0
        for c in np.nonzero(t.whole)[0].tolist():
            out[c] = (idle - t.whole[c]) / cards
        return out

    def soft_penalty(self, ix: Index, cls: np.ndarray, node: np.ndarray) -> np.ndarray:
        """int64[pair], added to the soft term: 100 per GPU a placement strands. A node's free
        GPUs need its free cpu and memory to be usable; an agent taking cpu (or memory) in a
        larger proportion than GPU leaves GPUs behind that nothing can use: stranded = the
        node's free GPU per free cpu x the agent's cpu, minus the GPU it takes (likewise for
        memory), evaluated on the window's starting state (so it stays linear)."""
        t = tables(ix)
        out = np.zeros(len(cls), dtype=np.int64)
        if not t.cards.any() or not len(cls):
            return out
        gpu_free = t.free.sum(axis=1).astype(np.float64)  # [node] milli-GPU
        asks = (t.share + CARD * t.whole).astype(np.float64)  # [cls]
        stranded = np.zeros(len(cls))
        for r in ("cpu", "memory"):
            j = ix.res_pos[r]
            per = gpu_free / np.maximum(ix.free[:, j], 1)  # [node] GPU per unit free
            stranded = np.maximum(stranded, per[node] * ix.req[cls, j] - asks[cls])
        return np.round(np.maximum(stranded, 0.0) / 10).astype(np.int64)

    # --- CP-SAT -------------------------------------------------------------------------------

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        t = tables(ix)
        if not (t.share.any() or t.whole.any()):
            return
        for n, ps in mb.pairs_of_node.items():
            cls = mb.pair_cls[ps]
            if not (t.share[cls].any() or t.whole[cls].any()):
                continue
            self._encode_node(mb, t, n, ps)

    def _encode_node(self, mb: ModelBuilder, t: CardTables, n: int, ps: np.ndarray) -> None:
        model = mb.model
        by_size: dict[int, list[tuple[cp_model.IntVar, int]]] = defaultdict(list)
        whole: list[tuple[int, cp_model.IntVar, int]] = []
        for p in ps.tolist():
            c, ub = int(mb.pair_cls[p]), int(mb.upper[p])
            if t.share[c]:
                by_size[int(t.share[c])].append((mb.x[p], ub))
            elif t.whole[c]:
                whole.append((int(t.whole[c]), mb.x[p], ub))
        cards = int(t.cards[n])
        free = t.free[n, :cards].tolist()
        untouched = t.untouched[n, :cards].tolist()
        added = 0
        if not by_size:  # whole cards only: interchangeable, a count suffices
            if sum(w * ub for w, _, ub in whole) > sum(untouched):
                model.add(sum(w * x for w, x, _ in whole) <= sum(untouched))
                added += 1
            mb.count_constraint(NAME, added)
            return
        size_ub = {s: sum(ub for _, ub in xs) for s, xs in by_size.items()}
        y: dict[int, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)  # size -> (card, var)
        loads: list[cp_model.LinearExprT] = []
        for k in range(cards):
            terms = []
            for s in sorted(by_size):
                cap = min(free[k] // s, size_ub[s])
                if cap > 0:
                    v = model.new_int_var(0, cap, f"gy_{n}_{k}_{s}")
                    y[s].append((k, v))
                    terms.append((s, v, cap))
            u = model.new_bool_var(f"gu_{n}_{k}") if whole and untouched[k] else None
            if u is not None:
                y[-1].append((k, u))  # whole-card flags under key -1
            load = sum(s * v for s, v, _ in terms) + (free[k] * u if u is not None else 0)
            loads.append(load)
            if u is not None or sum(s * cap for s, _, cap in terms) > free[k]:
                model.add(load <= free[k])
                added += 1
        for s, xs in by_size.items():
            model.add(sum(x for x, _ in xs) == sum(v for _, v in y.get(s, [])))
            added += 1
        if whole:
            model.add(sum(w * x for w, x, _ in whole) == sum(v for _, v in y.get(-1, [])))
            added += 1
        # cards alike are interchangeable: order them by load
        for k in range(1, cards):
            if free[k] == free[k - 1] and untouched[k] == untouched[k - 1] and \
                    not isinstance(loads[k - 1], int):
                model.add(loads[k - 1] >= loads[k])
                added += 1
        mb.count_constraint(NAME, added)
        for (s, k), v in ((sk, v) for sk, v in _flat(y)):
            mb.aux_hints.append((v, lambda counts, n=n, key=(s, k): self._hint(t, mb, n, counts, key)))

    def _hint(self, t: CardTables, mb: ModelBuilder, n: int, counts: np.ndarray,
              key: tuple[int, int]) -> int:
        """A card packing of the hint plan's agents on node n (cached per plan and node)."""
        cache = self._hints
        if cache.get("plan") is not counts:
            cache.clear()
            cache["plan"] = counts
        if n not in cache:
            cache[n] = _packing_values(t, n, counts)
        return int(cache[n].get(key, 0))

    # --- plain Python -------------------------------------------------------------------------

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        pending = {p.ref: p for p in snap.pending}
        nodes = {n.name: n for n in snap.nodes}
        running: dict[str, list[Pod]] = defaultdict(list)
        for pod in snap.running:
            running[pod.spec.node_name or ""].append(pod)
        placed_on: dict[str, list[Pod]] = defaultdict(list)
        for agent, node in assignment.items():
            if agent in pending and node in nodes:
                placed_on[node].append(pending[agent])
        out: list[Violation] = []
        for node_name, pods in placed_on.items():
            asks = [(p, gpu_ask(p)) for p in pods]
            for p, a in asks:
                if a.invalid:
                    out.append(Violation(NAME, p.ref, node_name, a.invalid))
            gpu = [(p, a) for p, a in asks if a.share or a.whole]
            if not gpu:
                continue
            node = nodes[node_name]
            st = card_state(node, running[node_name])
            whole = [a.whole for _, a in gpu if a.whole]
            shares = [a.share for _, a in gpu if a.share]
            if pack(st, whole, shares) is None:
                if sum(whole) > sum(st.untouched):
                    head = too_few_cards(sum(whole))
                elif shares and max(shares) > max(st.free, default=0):
                    head = no_card_with(max(shares))
                else:
                    head = "node(s) had no GPU card packing for these agents"
                out.append(Violation(
                    NAME, ",".join(p.ref for p, _ in gpu), node_name,
                    f"{head}: no packing onto the node's {node_cards(node)} GPU card(s) "
                    f"(free per card {st.free}): whole cards {sorted(whole, reverse=True)}, "
                    f"shares {sorted(shares, reverse=True)}"))
        return out

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        ask = gpu_ask(pod)
        if ask.invalid:
            return [Reason(NAME, ask.invalid, unresolvable=True)]
        if not (ask.share or ask.whole):
            return []
        st = self._state_on(usage.cluster, node)
        if ask.share and not any(f >= ask.share for f in st.free):
            return [Reason(NAME, no_card_with(ask.share))]
        if ask.whole and sum(st.untouched) < ask.whole:
            return [Reason(NAME, too_few_cards(ask.whole))]
        return []

    def _state_on(self, view: ClusterView | None, node: Node) -> CardState:
        """The node's cards after the view's bound pods, computed once per (view, node):
        explain runs per node for every unplaced agent (and counterfactuals for every rule),
        so rescanning every pod each time would be quadratic."""
        if view is None:
            return card_state(node, [])
        cache = self._views
        if cache.get("view") is not view:
            by_node: dict[str, list[Pod]] = defaultdict(list)
            for p, n in view.pods:
                by_node[n].append(p)
            cache.clear()
            cache["view"], cache["by_node"], cache["states"] = view, by_node, {}
        states = cache["states"]
        if node.name not in states:
            states[node.name] = card_state(node, cache["by_node"].get(node.name, []))
        got = states[node.name]
        return CardState(list(got.free), list(got.untouched))

    # --- the greedy's per-card bookkeeping ----------------------------------------------------

    def admits(self, ix: Index, state: GreedyState, agent: int, mask: np.ndarray) -> np.ndarray:
        t = tables(ix)
        if not (t.share.any() or t.whole.any()):
            return mask
        book = self._greedy.get(ix)
        if book is None or book[0]() is not state:
            book = [weakref.ref(state), t.free.copy(), t.untouched.copy(), -1, 0]
            self._greedy[ix] = book
        _, free, untouched, last, applied = book
        if last >= 0 and state.node_of[last] >= 0:
            _take(t, free, untouched, int(ix.class_of[last]), int(state.node_of[last]))
            applied += 1
        if applied != int(np.count_nonzero(state.node_of >= 0)):  # a rollback (gangs): rebuild
            free[...], untouched[...] = t.free, t.untouched
            placed = np.nonzero(state.node_of >= 0)[0]
            for a in placed.tolist():
                _take(t, free, untouched, int(ix.class_of[a]), int(state.node_of[a]))
            applied = len(placed)
        book[3], book[4] = agent, applied
        c = int(ix.class_of[agent])
        return mask & _fits(t, free, untouched, np.array([c]))[0]


def _flat(y: dict[int, list[tuple[int, cp_model.IntVar]]]
          ) -> list[tuple[tuple[int, int], cp_model.IntVar]]:
    return [((s, k), v) for s, kv in y.items() for k, v in kv]


def _packing_values(t: CardTables, n: int, counts: np.ndarray) -> dict[tuple[int, int], int]:
    """(size or -1 for whole, card) -> value for a plan's agents on node n: an exact packing,
    cards alike reordered by decreasing load as the encoding orders them."""
    cards = int(t.cards[n])
    free, untouched = t.free[n, :cards].tolist(), t.untouched[n, :cards].tolist()
    placed = np.nonzero(counts[:, n])[0].tolist()
    whole = [int(t.whole[c]) for c in placed for _ in range(int(counts[c, n])) if t.whole[c]]
    shares = [int(t.share[c]) for c in placed for _ in range(int(counts[c, n])) if t.share[c]]
    got = pack(CardState(list(free), list(untouched)), whole, shares)
    if got is None:
        return {}
    on_card: list[dict[int, int]] = [defaultdict(int) for _ in range(cards)]
    load = [0] * cards
    for ks in got[0]:
        for k in ks:
            on_card[k][-1] = 1
            load[k] = free[k]
    for s, k in zip(shares, got[1], strict=True):
        on_card[k][s] += 1
        load[k] += s
    order = list(range(cards))
    start = 0
    for k in range(1, cards + 1):  # runs of cards alike: heaviest first
        if k == cards or (free[k], untouched[k]) != (free[k - 1], untouched[k - 1]):
            order[start:k] = sorted(range(start, k), key=lambda j: -load[j])
            start = k
    return {(s, pos): v for pos, k in enumerate(order) for s, v in on_card[k].items()}


def _fits(t: CardTables, free: np.ndarray, untouched: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """bool[cls, node]: the class fits the cards as they are."""
    share, whole = t.share[cls], t.whole[cls]
    best = free.max(axis=1) if free.shape[1] else np.zeros(free.shape[0], dtype=np.int64)
    idle = untouched.sum(axis=1)
    ok = np.ones((len(cls), free.shape[0]), dtype=bool)
    ok &= (share[:, None] == 0) | (best[None, :] >= share[:, None])
    ok &= (whole[:, None] == 0) | (idle[None, :] >= whole[:, None])
    bad = np.array([t.invalid[c] is not None for c in cls.tolist()], dtype=bool)
    ok[bad] = False
    return ok


def _take(t: CardTables, free: np.ndarray, untouched: np.ndarray, c: int, n: int) -> None:
    """Bind one agent of class c on node n: a share on the fullest card that takes it, whole
    cards on the lowest untouched ones."""
    if t.share[c]:
        s = int(t.share[c])
        ok = np.nonzero(free[n] >= s)[0]
        k = int(ok[np.argmin(free[n, ok])])
        free[n, k] -= s
        untouched[n, k] = False
    elif t.whole[c]:
        ks = np.nonzero(untouched[n])[0][:int(t.whole[c])]
        free[n, ks] = 0
        untouched[n, ks] = False


__all__ = ["CARD", "NAME", "GpuShare", "tables"]
