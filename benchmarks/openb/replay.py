"""Windowed replays on the project's own objects: agentplace (optimize) and the kube-like greedy.

Pods arrive in the workload's order and are cut into windows of at most `window` arrivals; a
window also closes at every 10 % of arrived GPU demand (so the curve has exact points there,
100 % included). Each window is solved against the cluster the previous windows left: placed
agents become running pods on their node with the card indices of an exact packing
(`alibabacloud.com/gpu-index`, gpu_cards.pack over the node's cards), so the per-card state
carries across windows exactly. An agent left unplaced waits for the next window, unless no
node could take it any more (its reason starts "0/N nodes are available"): nothing ever leaves
the cluster, so such an agent can never fit later and is dropped, as the online policies drop it.
Every window's plan passes optimizer.verify (optimize() verifies its own; the greedy's plans
are checked here).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.common import check_plan
from benchmarks.openb.data import Row
from models import Inventory, Node, Pod
from optimizer import SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.gpu_cards import GPU_INDEX, card_state, gpu_ask, index_annotation, pack
from optimizer.index import Index
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter

MILESTONE_STEP = 10.0  # % of GPU demand at which a window always closes


def cut(demand_pct: np.ndarray, window: int) -> list[tuple[int, int]]:
    """[start, end) arrival ranges: at most `window` each, closing at every milestone."""
    out, start = [], 0
    marks = set(np.searchsorted(demand_pct, np.arange(MILESTONE_STEP, 1000, MILESTONE_STEP),
                                side="right").tolist())
    for i in range(1, len(demand_pct) + 1):
        if i - start >= window or i in marks or i == len(demand_pct):
            if i > start:
                out.append((start, i))
            start = i
    return out


@dataclass
class WindowRecord:
    index: int
    arrivals: int
    agents: int
    placed: int
    dropped: int
    demand_pct: float
    allocated_pct: float
    seconds: float
    status: str = ""
    gap: float | None = None
    bound: int | None = None
    objective: int | None = None
    model: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class ReplayResult:
    method: str
    windows: list[WindowRecord]
    placements: dict[str, str]  # agent -> node
    cards: dict[str, list[int]]
    violations: list[str]
    seconds: float


def _bind(pods: Sequence[Pod], node: Node, running: list[Pod]) -> list[Pod]:
    """The window's agents on `node` as running pods carrying their card indices."""
    asks = [gpu_ask(p) for p in pods]
    whole = [i for i, a in enumerate(asks) if a.whole]
    share = [i for i, a in enumerate(asks) if a.share]
    cards: dict[int, list[int]] = {}
    if whole or share:
        got = pack(card_state(node, running), [asks[i].whole for i in whole],
                   [asks[i].share for i in share])
        if got is None:  # the verifier accepted the plan, so a packing exists
            raise RuntimeError(f"no card packing on {node.name} for a verified plan")
        for i, ks in zip(whole, got[0], strict=True):
            cards[i] = ks
        for i, k in zip(share, got[1], strict=True):
            cards[i] = [k]
    out = []
    for i, p in enumerate(pods):
        meta = p.metadata.model_copy(update={
            "uid": p.metadata.uid or f"uid-{p.name}",
            "annotations": {**p.metadata.annotations, GPU_INDEX: index_annotation(cards[i])}
            if i in cards else p.metadata.annotations})
        out.append(p.model_copy(update={
            "metadata": meta, "spec": p.spec.model_copy(update={"node_name": node.name}),
            "status": p.status.model_copy(update={"phase": "Running"})}))
    return out


Solver = Callable[[Any], tuple[list[tuple[str, str]], dict[str, Any], list[str]]]


def replay(method: str, nodes: list[Node], pods: list[Pod], rows: list[Row], capacity: int,
           window: int, solve: Solver,
           progress: Callable[[WindowRecord], None] | None = None) -> ReplayResult:
    """`solve(snapshot) -> (placements, info, unplaced reasons as 'agent\\treason')`."""
    t0 = time.perf_counter()
    demand = 100.0 * np.cumsum([r.gpu_total for r in rows]) / capacity
    by_name = {n.name: n for n in nodes}
    running: dict[str, list[Pod]] = defaultdict(list)
    gpu_of = {p.ref: r.gpu_total for p, r in zip(pods, rows, strict=True)}
    waiting: list[Pod] = []
    placements: dict[str, str] = {}
    cards: dict[str, list[int]] = {}
    records: list[WindowRecord] = []
    allocated = 0
    violations: list[str] = []
    for w, (lo, hi) in enumerate(cut(demand, window)):
        t = time.perf_counter()
        agents = waiting + pods[lo:hi]
        inv = Inventory(nodes=nodes, pods=[p for ps in running.values() for p in ps] + agents)
        snap = build_snapshot(inv)
        placed, info, reasons = solve(snap)
        violations += info.pop("violations", [])
        per_node: dict[str, list[Pod]] = defaultdict(list)
        pending = {p.ref: p for p in agents}
        for agent, node in placed:
            per_node[node].append(pending[agent])
        for node, ps in per_node.items():
            bound = _bind(ps, by_name[node], running[node])
            running[node] += bound
            for b in bound:
                placements[b.ref] = node
                allocated += gpu_of[b.ref]
                idx = b.metadata.annotations.get(GPU_INDEX)
                if idx:
                    cards[b.ref] = [int(k) for k in idx.split("-")]
        done = {a for a, _ in placed}
        hopeless = {line.split("\t", 1)[0] for line in reasons if "\t0/" in line}
        waiting = [p for p in agents if p.ref not in done and p.ref not in hopeless]
        rec = WindowRecord(w, hi - lo, len(agents), len(placed), len(hopeless),
                           round(float(demand[hi - 1]), 3), round(100.0 * allocated / capacity, 3),
                           round(time.perf_counter() - t, 3), **info)
        records.append(rec)
        if progress:
            progress(rec)
    return ReplayResult(method, records, placements, cards, violations,
                        round(time.perf_counter() - t0, 3))


def agentplace_solver(cfg: SolveConfig) -> Solver:
    def solve(snap: Any) -> tuple[list[tuple[str, str]], dict[str, Any], list[str]]:
        plan = optimize(snap, cfg)
        info = {"status": plan.status, "gap": plan.gap, "bound": plan.bound,
                "objective": plan.objective,
                "model": {k: plan.model.get(k) for k in ("agent_classes", "candidate_pairs",
                                                         "variables", "constraints")}}
        return ([(p.agent, p.node) for p in plan.placements], info,
                [f"{u.agent}\t{u.reason}" for u in plan.unplaced])
    return solve


def greedy_solver(strategy: str = "LeastAllocated") -> Solver:
    """The kube-like greedy (optimizer/baseline.py) alone, its plan through the verifier."""
    def solve(snap: Any) -> tuple[list[tuple[str, str]], dict[str, Any], list[str]]:
        ix = Index(snap)
        static, _ = prefilter(ix)
        node_of = greedy(ix, static, strategy)
        placed = [(p.ref, ix.node_names[n]) for p, n in zip(snap.pending, node_of.tolist(),
                                                             strict=True) if n >= 0]
        check = check_plan(f"greedy-{strategy}", placed, snap, require_complete=False)
        # an agent the greedy could not place anywhere is hopeless (no node fits it now)
        reasons = [f"{p.ref}\t0/{len(snap.nodes)}" for p, n in zip(snap.pending, node_of.tolist(),
                                                                    strict=True) if n < 0]
        return placed, {"status": "GREEDY", "violations": list(check.violations)}, reasons
    return solve
