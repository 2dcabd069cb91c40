"""A kube-scheduler-like greedy: one agent at a time in queue order, filter, score, bind.

It is the solver's hint, its fallback when CP-SAT finds nothing in time, and the in-run
baseline of every benchmark. Scoring is NodeResourcesFit's LeastAllocated or MostAllocated
over cpu and memory with kube's non-zero defaults; ties go to the first node by name (kube
picks at random among ties). Unlike kube on large clusters it scores every feasible node
(no percentageOfNodesToScore sampling), so it is a slightly stronger greedy than kube's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.index import Index
from optimizer.preemption import Victims, kube_preempt
from optimizer.rules import RULES, Rule

NONZERO_CPU = 100  # millicores, pkg/scheduler/util DefaultMilliCPURequest
NONZERO_MEMORY = 200 * 1024 * 1024  # DefaultMemoryRequest
MAX_NODE_SCORE = 100


@dataclass
class GreedyState:
    """What the greedy has bound so far, for rules whose verdict depends on other placements:
    such a rule has `admits(ix, state, agent, node_mask) -> node_mask`, called per step."""

    node_of: np.ndarray  # int64[agent]: node of each agent bound so far, -1 otherwise
    placed: np.ndarray  # int64[cls]: agents of each class bound so far


def decreasing_size_order(ix: Index) -> np.ndarray:
    """Agents by decreasing largest share of the mean node (the FFD/BFD order), ties in queue
    order: packing heuristics place the big items first."""
    mean = ix.alloc.mean(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(mean > 0, ix.req / mean, 0.0)  # [cls, res]
    share[:, ix.pods_res] = 0.0
    size = share.max(axis=1)[ix.class_of]
    return np.argsort(-size, kind="stable")


GROUP_START, GROUP_END = "start", "end"
Step = int | tuple[str, int]


def grouped_sequence(seq: list[int], groups: Sequence[tuple[np.ndarray, np.ndarray]]
                     ) -> list[Step]:
    """The visiting order with each all-or-nothing group's members moved up to its first
    member, bracketed by (GROUP_START, need) and (GROUP_END, need). `groups`: per rule with an
    `all_or_nothing(ix)` hook, (int64[agent] group or -1, int64[group] members needed)."""
    if not groups:
        return list(seq)
    arr = np.asarray(seq, dtype=np.int64)
    out: list[Step] = []
    emitted = np.zeros(int(arr.max()) + 1 if len(seq) else 0, dtype=bool)  # [agent]
    for a in seq:
        if emitted[a]:
            continue
        key = next(((k, int(gof[a])) for k, (gof, _) in enumerate(groups) if gof[a] >= 0), None)
        if key is None:
            out.append(a)
            emitted[a] = True
            continue
        gof, need = groups[key[0]]
        members = arr[(gof[arr] == key[1]) & ~emitted[arr]]
        emitted[members] = True
        out += [(GROUP_START, int(need[key[1]])), *members.tolist(),
                (GROUP_END, int(need[key[1]]))]
    return out


def fit_scores(strategy: str, cap: np.ndarray, requested: np.ndarray) -> np.ndarray:
    """int64[...node]: kube's NodeResourcesFit score (LeastAllocated or MostAllocated, cpu and
    memory weighted equally) with the agent's non-zero request already in `requested`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if strategy == "MostAllocated":
            part = np.minimum(requested, cap) * MAX_NODE_SCORE // np.maximum(cap, 1)
        else:
            part = (cap - requested) * MAX_NODE_SCORE // np.maximum(cap, 1)
            part[requested > cap] = 0
    part[cap == 0] = 0
    return part.sum(axis=-1) // 2


def greedy(ix: Index, static_mask: np.ndarray, strategy: str = "LeastAllocated",
           rules: Sequence[Rule] = RULES, order: np.ndarray | None = None,
           prefer: np.ndarray | None = None) -> np.ndarray:
    """int64[agent]: node index per pending agent, -1 when no node fits (never preempts)."""
    return greedy_plan(ix, static_mask, strategy, rules, order, preempt=False, prefer=prefer)[0]


def greedy_plan(ix: Index, static_mask: np.ndarray, strategy: str = "LeastAllocated",
                rules: Sequence[Rule] = RULES, order: np.ndarray | None = None,
                preempt: bool = True, prefer: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(int64[agent] node per pending agent or -1, bool[victim] evicted).

    Agents go in queue order unless `order` says otherwise; strategy "FirstFit" takes the
    first feasible node by name instead of scoring (with a decreasing `order`: FFD).
    A rule with `all_or_nothing(ix)` (gangs) has its groups placed consecutively from their
    first member on, and rolled back whole when fewer than needed fit. With `preempt` and
    victims on the index (ix.victims), an agent no node fits runs kube's DefaultPreemption
    (optimizer/preemption.py kube_preempt) and binds to the node it frees. `prefer`
    (int64[agent], -1 for none) names a node to take whenever the checks admit it (a warm
    start)."""
    victims = ix.victims if preempt and ix.victims is not None and len(ix.victims) else None
    evicted = np.zeros(len(ix.victims) if ix.victims is not None else 0, dtype=bool)
    pdb_used = np.zeros(len(victims.pdbs) if victims is not None else 0, dtype=np.int64)
    from optimizer.fastgreedy import fast_applies, greedy_local  # late: the rules import this module

    if rules is RULES and victims is None and fast_applies(ix):
        # same answer, heap per class instead of node scans
        return greedy_local(ix, static_mask, strategy, order, prefer), evicted
    hooks = [h for rule in rules if (h := getattr(rule, "admits", None)) is not None]
    groups = [g(ix) for rule in rules if (g := getattr(rule, "all_or_nothing", None)) is not None]
    free = ix.free.copy()  # [node, res]
    cpu, mem = ix.res_pos["cpu"], ix.res_pos["memory"]
    cap = ix.alloc[:, [cpu, mem]]  # [node, 2]
    nonzero_used = ix.used[:, [cpu, mem]].copy()  # approximates NonZeroRequested
    out = np.full(len(ix.snap.pending), -1, dtype=np.int64)
    state = GreedyState(out, np.zeros(ix.num_classes, dtype=np.int64))
    seq = list(range(len(ix.snap.pending))) if order is None else order.tolist()
    saved: tuple[np.ndarray, ...] = ()
    for a in grouped_sequence(seq, groups):
        if isinstance(a, tuple):  # an all-or-nothing group starts (checkpoint) or ends
            live = (free, nonzero_used, out, state.placed, evicted, pdb_used)
            if a[0] == GROUP_START:
                saved = tuple(x.copy() for x in live)
            elif int(((out >= 0) & (saved[2] < 0)).sum()) < a[1]:
                for now, before in zip(live, saved, strict=True):
                    now[...] = before
            continue
        c = int(ix.class_of[a])
        req = ix.req[c]
        fits = static_mask[c] & np.all((req <= free) | (req == 0), axis=1)
        for admits in hooks:
            if fits.any():
                fits = admits(ix, state, a, fits)
        if not fits.any() and victims is not None and victims.preempts[c]:
            fits = _preempt(ix, victims, state, hooks, a, static_mask[c], free, nonzero_used,
                            evicted, pdb_used)
        if not fits.any():
            continue
        nz = np.array([req[cpu] or NONZERO_CPU, req[mem] or NONZERO_MEMORY], dtype=np.int64)
        score = fit_scores(strategy, cap, nonzero_used + nz)
        if strategy == "FirstFit":
            score = -np.arange(len(score))
        score[~fits] = np.iinfo(np.int64).min
        n = int(np.argmax(score))
        if prefer is not None and prefer[a] >= 0 and fits[prefer[a]]:
            n = int(prefer[a])
        out[a] = n
        state.placed[c] += 1
        free[n] -= req
        nonzero_used[n] += nz
    return out, evicted


def _preempt(ix: Index, victims: Victims, state: GreedyState, hooks: list[Any], a: int,
             static: np.ndarray, free: np.ndarray, nonzero_used: np.ndarray,
             evicted: np.ndarray, pdb_used: np.ndarray) -> np.ndarray:
    """kube's PostFilter for agent a: evict on the chosen node and return it as the only fit."""
    nodes = static.copy()
    for admits in hooks:
        if nodes.any():
            nodes = admits(ix, state, a, nodes)
    chosen = kube_preempt(ix, victims, int(ix.class_of[a]), nodes, free, evicted, pdb_used)
    fits = np.zeros(ix.num_nodes, dtype=bool)
    if chosen is None:
        return fits
    n, gone = chosen
    evicted[gone] = True
    free[n] += victims.req[gone].sum(axis=0)
    cpu, mem = ix.res_pos["cpu"], ix.res_pos["memory"]
    nonzero_used[n] -= victims.req[gone][:, [cpu, mem]].sum(axis=0)
    for d, members in enumerate(victims.pdb_members):
        pdb_used[d] += int(np.isin(gone, members).sum())
    fits[n] = True
    return fits


def counts_from_assignment(ix: Index, node_of: np.ndarray) -> np.ndarray:
    """int64[cls, node] from a per-agent node array."""
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    placed = node_of >= 0
    np.add.at(counts, (ix.class_of[placed], node_of[placed]), 1)
    return counts
