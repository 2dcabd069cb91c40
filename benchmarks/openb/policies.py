"""The published online policies, re-implemented (numpy) from the FGD paper and its simulator.

Weng et al., USENIX ATC'23, section 6 and the score definitions of their simulator
(hkust-adsl/kubernetes-scheduler-simulator, pkg/simulator/plugin): each pod, in arrival order,
goes to the feasible node with the best score, or fails for good (nothing ever leaves).
Feasible = cpu, memory and pod count fit, the node's GPU model is allowed, a share fits one
card, whole GPUs fit untouched cards. Scores (higher wins; exact ties go to a seeded random
choice, as kube-scheduler picks at random among the best):

  - Random: any feasible node; a share goes to a random card that fits.
  - DotProd (Tetris): the smallest dot product of the node's free [cpu, GPU] and the pod's
    request, both divided by the largest spec (128 cores, 8 GPUs).
  - GpuPacking: a share on an already used card first (the less free the better), then free
    cards on a used node (the fewer the better), then an idle node (the fewer GPUs the better).
  - BestFit: the least free resources left, 0.5 x cpu/128 cores + 0.5 x GPU/8 GPUs.
  - FGD: the smallest growth of the node's fragmentation, measured against the workload's
    typical pods (the most frequent (cpu, GPU share, GPUs, models) specs covering >= 95 % of
    the pods, CPU pods included, as in the simulator's experiment scripts): for each typical
    pod, the node's free GPU that pod could not use (all of it when the pod does not fit or
    may not use the model; else the cards with less free than its share), weighted by
    frequency; the card chosen the same way; scores truncated to integers as the simulator's.

Cards: a share goes to the fullest card that takes it (FGD: the card with the least
fragmentation; Random: a random card); whole GPUs take the lowest untouched cards. Scores are
floats (the simulator truncates them to integers 0..100, so it has more ties): differences from
the published curves come from that, from the RNG streams, and from kube defaults we do not
model. They are labelled as re-implementations next to the published numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.openb.data import Row
from models import Node
from optimizer.gpu_cards import CARD, GPU_MODEL, node_cards

MAX_CPU, MAX_GPU = 128_000, 8_000  # the simulator's MaxSpecCpu (milli) and MaxSpecGpu (milli)
POLICIES = ("Random", "DotProd", "GpuPacking", "BestFit", "FGD")


@dataclass
class Cluster:
    """Node capacities and the state the replay changes (all numpy, one row per node)."""

    names: list[str]
    cpu: np.ndarray  # int64[node] free millicores
    mem: np.ndarray  # int64[node] free MiB
    pods: np.ndarray  # int64[node] free pod slots
    free: np.ndarray  # int64[node, card] free milli-GPU; 0 past a node's cards
    cards: np.ndarray  # int64[node]
    model: np.ndarray  # int64[node] GPU model code
    models: dict[str, int]

    @classmethod
    def of(cls, nodes: Sequence[Node]) -> Cluster:
        models: dict[str, int] = {}
        allocs = [n.allocatable() for n in nodes]
        cards = np.array([node_cards(n) for n in nodes], dtype=np.int64)
        width = max(1, int(cards.max()) if cards.size else 1)
        free = np.zeros((len(nodes), width), dtype=np.int64)
        for i, k in enumerate(cards.tolist()):
            free[i, :k] = CARD
        return cls([n.name for n in nodes],
                   np.array([a.get("cpu", 0) for a in allocs], dtype=np.int64),
                   np.array([a.get("memory", 0) // 2**20 for a in allocs], dtype=np.int64),
                   np.array([a.get("pods", 0) for a in allocs], dtype=np.int64), free, cards,
                   np.array([models.setdefault(n.labels.get(GPU_MODEL, ""), len(models))
                             for n in nodes], dtype=np.int64), models)

    def allowed(self, row: Row) -> np.ndarray:
        """bool[node]: the node's GPU model is one the pod accepts."""
        if not row.spec:
            return np.ones(len(self.names), dtype=bool)
        codes = [self.models[m] for m in row.spec if m in self.models]
        return np.isin(self.model, codes)

    def feasible(self, row: Row) -> np.ndarray:
        ok = (self.cpu >= row.cpu) & (self.mem >= row.mem) & (self.pods >= 1) & self.allowed(row)
        if row.gpus == 1 and row.milli < CARD:
            ok &= self.free.max(axis=1) >= row.milli
        elif row.gpus:
            ok &= (self.free == CARD).sum(axis=1) >= row.gpus
        return ok

    def bind(self, row: Row, n: int, card: int | None) -> list[int]:
        """Take the pod's resources on node n; returns the cards used."""
        self.cpu[n] -= row.cpu
        self.mem[n] -= row.mem
        self.pods[n] -= 1
        if not row.gpus:
            return []
        if row.gpus == 1 and row.milli < CARD:
            k = best_fit_card(self.free[n], row.milli) if card is None else card
            self.free[n, k] -= row.milli
            return [k]
        ks = np.nonzero(self.free[n] == CARD)[0][:row.gpus].tolist()
        self.free[n, ks] = 0
        return ks

    @property
    def allocated_milli(self) -> int:
        return int((self.cards * CARD).sum() - self.free.sum())


def best_fit_card(free: np.ndarray, milli: int) -> int:
    ok = np.nonzero(free >= milli)[0]
    return int(ok[np.argmin(free[ok])])


# --- FGD's fragmentation measure ------------------------------------------------------------


@dataclass(frozen=True)
class TypicalPods:
    cpu: np.ndarray  # int64[t]
    milli: np.ndarray  # int64[t] per GPU
    gpus: np.ndarray  # int64[t]
    allowed: np.ndarray  # bool[t, model code]
    freq: np.ndarray  # float[t], sums to 1


def typical_pods(rows: Sequence[Row], models: dict[str, int], threshold: float = 0.95,
                 step: int = 1) -> TypicalPods:
    """The simulator's experiment settings: CPU pods included, specs covering 95 %, step 1."""
    counts = Counter((r.cpu, r.milli, r.gpus, r.spec) for r in rows)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(counts.values())
    take, cum = 0, 0
    while cum < threshold * total and take < len(ranked):
        nxt = min(len(ranked), take + step)
        cum += sum(c for _, c in ranked[take:nxt])
        take = nxt
    chosen = ranked[:take]
    allowed = np.zeros((len(chosen), max(1, len(models))), dtype=bool)
    for i, ((_, _, _, spec), _) in enumerate(chosen):
        if spec:
            allowed[i, [models[m] for m in spec if m in models]] = True
        else:
            allowed[i, :] = True
    freq = np.array([c for _, c in chosen], dtype=np.float64)
    return TypicalPods(np.array([k[0] for k, _ in chosen], dtype=np.int64),
                       np.array([k[1] for k, _ in chosen], dtype=np.int64),
                       np.array([k[2] for k, _ in chosen], dtype=np.int64), allowed, freq / freq.sum())


def frag(tp: TypicalPods, cpu: np.ndarray, free: np.ndarray, model: np.ndarray) -> np.ndarray:
    """float[m]: FGD's expected fragmentation (milli-GPU) of m node states."""
    total = free.sum(axis=1).astype(np.float64)  # [m]
    # cards that could take one GPU of each typical pod: [m, t]
    fits_card = free[:, None, :] >= tp.milli[None, :, None]  # [m, t, card]
    hostable = fits_card.sum(axis=2) >= tp.gpus[None, :]
    ok = hostable & (cpu[:, None] >= tp.cpu[None, :]) & tp.allowed[:, model].T
    ok &= tp.milli[None, :] > 0  # a CPU pod counts every free GPU (the simulator's XL/XR)
    # Q3: only cards with less free than its share are fragments; otherwise everything is
    small = np.where(~fits_card, free[:, None, :], 0).sum(axis=2).astype(np.float64)
    amount = np.where(ok, small, total[:, None])
    return amount @ tp.freq


# --- the policies ---------------------------------------------------------------------------


Chooser = Callable[[Cluster, Row, np.ndarray], tuple[int, int | None]]


def _pick(score: np.ndarray, ok: np.ndarray, rng: np.random.Generator) -> int:
    s = np.where(ok, score, -np.inf)
    best = np.flatnonzero(s == s.max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


def _is_share(row: Row) -> bool:
    return row.gpus == 1 and row.milli < CARD


def choose_random(c: Cluster, row: Row, ok: np.ndarray, rng: np.random.Generator
                  ) -> tuple[int, int | None]:
    n = int(rng.choice(np.flatnonzero(ok)))
    if _is_share(row):
        return n, int(rng.choice(np.flatnonzero(c.free[n] >= row.milli)))
    return n, None


def choose_dotprod(c: Cluster, row: Row, ok: np.ndarray, rng: np.random.Generator
                   ) -> tuple[int, int | None]:
    gpu_free = c.free.sum(axis=1)
    dot = (c.cpu / MAX_CPU) * (row.cpu / MAX_CPU) + (gpu_free / MAX_GPU) * (row.gpu_total / MAX_GPU)
    return _pick(-dot, ok, rng), None


def choose_gpu_packing(c: Cluster, row: Row, ok: np.ndarray, rng: np.random.Generator
                       ) -> tuple[int, int | None]:
    if not row.gpus:
        return _pick(np.zeros(len(ok)), ok, rng), None
    idle = (c.free == CARD).sum(axis=1)
    score = np.full(len(ok), -np.inf)
    all_free = idle == c.cards
    score[all_free] = np.maximum(100 / 3 - idle[all_free], idle[all_free])  # case 3
    used = ~all_free
    if _is_share(row):
        # the card a share would take: the least free that fits
        masked = np.where(c.free >= row.milli, c.free, CARD + 1)
        least = masked.min(axis=1)
        on_used = used & (least < CARD)
        score[on_used] = np.maximum(100 - (least[on_used] * 100 // CARD) / 10, 50)  # case 1
        on_free = used & (least == CARD)
        score[on_free] = np.maximum(50 - 1, 100 / 3)  # case 2: one free card
    else:
        score[used] = np.maximum(50 - row.gpus, 100 / 3)  # case 2
    return _pick(score, ok, rng), None


def choose_best_fit(c: Cluster, row: Row, ok: np.ndarray, rng: np.random.Generator
                    ) -> tuple[int, int | None]:
    left = 0.5 * (c.cpu - row.cpu) / MAX_CPU + 0.5 * (c.free.sum(axis=1) - row.gpu_total) / MAX_GPU
    return _pick(-left, ok, rng), None


def _fgd_score(drop: np.ndarray) -> np.ndarray:
    """The simulator's integer score: int(sigmoid(fragmentation drop / 1000) x 100)."""
    return (100.0 / (1.0 + np.exp(-drop / 1000.0))).astype(np.int64)


class FGD:
    """Keeps each node's fragmentation current; scores by its growth."""

    def __init__(self, c: Cluster, tp: TypicalPods) -> None:
        self.tp = tp
        self.node_frag = frag(tp, c.cpu, c.free, c.model)

    def choose(self, c: Cluster, row: Row, ok: np.ndarray, rng: np.random.Generator
               ) -> tuple[int, int | None]:
        nodes = np.flatnonzero(ok)
        if _is_share(row):
            width = c.free.shape[1]
            cand_n = np.repeat(nodes, width)
            cand_k = np.tile(np.arange(width), len(nodes))
            fit = c.free[cand_n, cand_k] >= row.milli
            cand_n, cand_k = cand_n[fit], cand_k[fit]
            free = c.free[cand_n].copy()
            free[np.arange(len(cand_n)), cand_k] -= row.milli
            after = frag(self.tp, c.cpu[cand_n] - row.cpu, free, c.model[cand_n])
            score = _fgd_score(self.node_frag[cand_n] - after)
            # per node its best card, the first on ties (the simulator's strict >)
            order = np.lexsort((cand_k, -score, cand_n))
            first = np.ones(len(order), dtype=bool)
            first[1:] = cand_n[order][1:] != cand_n[order][:-1]
            per_node = order[first]
            best = per_node[score[per_node] == score[per_node].max()]
            i = int(best[0] if len(best) == 1 else rng.choice(best))
            return int(cand_n[i]), int(cand_k[i])
        free = c.free[nodes].copy()
        if row.gpus:
            for j in range(len(nodes)):  # the lowest untouched cards, as bind() takes them
                ks = np.nonzero(free[j] == CARD)[0][:row.gpus]
                free[j, ks] = 0
        after = frag(self.tp, c.cpu[nodes] - row.cpu, free, c.model[nodes])
        score = _fgd_score(self.node_frag[nodes] - after)
        best = np.flatnonzero(score == score.max())
        return int(nodes[best[0] if len(best) == 1 else rng.choice(best)]), None

    def update(self, c: Cluster, n: int) -> None:
        self.node_frag[n] = frag(self.tp, c.cpu[n:n + 1], c.free[n:n + 1], c.model[n:n + 1])[0]


@dataclass
class OnlineResult:
    policy: str
    node_of: list[int]  # per row, -1 when it failed
    cards_of: list[list[int]]
    allocated: list[int]  # allocated milli-GPU after each arrival
    seconds: float = 0.0


def replay_online(policy: str, nodes: Sequence[Node], rows: Sequence[Row], seed: int,
                  typical: Sequence[Row] | None = None,
                  on_step: Callable[[int], None] | None = None) -> OnlineResult:
    """One pod at a time, in arrival order; a pod no node takes fails for good."""
    c = Cluster.of(nodes)
    rng = np.random.default_rng(seed)
    fgd = FGD(c, typical_pods(typical or rows, c.models)) if policy == "FGD" else None
    choosers: dict[str, Callable[..., tuple[int, int | None]]] = {
        "Random": choose_random, "DotProd": choose_dotprod, "GpuPacking": choose_gpu_packing,
        "BestFit": choose_best_fit}
    choose = fgd.choose if fgd else choosers[policy]
    out = OnlineResult(policy, [], [], [])
    for i, row in enumerate(rows):
        ok = c.feasible(row)
        if ok.any():
            n, card = choose(c, row, ok, rng)
            out.cards_of.append(c.bind(row, n, card))
            out.node_of.append(n)
            if fgd:
                fgd.update(c, n)
        else:
            out.node_of.append(-1)
            out.cards_of.append([])
        out.allocated.append(c.allocated_milli)
        if on_step and i % 500 == 0:
            on_step(i)
    return out


def cluster_frag(nodes: Sequence[Node], rows: Sequence[Row], node_of: Sequence[int],
                 cards_of: Sequence[Sequence[int]], tp: TypicalPods | None = None) -> float:
    """FGD's fragmentation of the whole cluster after the given placements, % of its GPUs."""
    c = Cluster.of(nodes)
    for row, n, ks in zip(rows, node_of, cards_of, strict=True):
        if n >= 0:
            c.bind(row, n, ks[0] if ks and _is_share(row) else None)
    tp = tp or typical_pods(rows, c.models)
    cap = float((c.cards * CARD).sum())
    return round(100.0 * float(frag(tp, c.cpu, c.free, c.model).sum()) / cap, 3) if cap else 0.0
