"""Candidate scoping: per agent class, keep only the nodes worth a variable.

A class with more candidate nodes than `k` keeps
  - optionally every node the kube-like greedy used for it (a complete hint; off by default,
    since a LeastAllocated greedy spreads over nearly every node; optimize() keeps the greedy
    plan whenever it scores higher, so a scoped plan is never worse than the greedy's),
  - its best nodes by the greedy's own cheap score (LeastAllocated / MostAllocated after one
    more agent), at least `k` of them and enough that their capacity holds `slack` times the
    class (capacity-derived bound per node, as model.candidate_pairs computes it),
  - for every topology key its spread constraints and required (anti-)affinity terms name:
    the best few nodes of every domain (so spread can reach every zone), and where the key has
    more domains than `k` (per-host keys) at least `slack` x the class's size nodes, since a
    host may then take as little as one agent.
Removing candidate pairs only restricts the model (every rule derives its domains and minima
from the index, not from the pairs), so every scoped plan is a valid plan of the full model;
the verifier checks it like any other. Quality is measured against the unscoped model in
`python -m benchmarks scale`.

`SolveConfig.scope_by` picks how nodes are ranked: "fit" (above: the greedy's own score, with
domain diversity and capacity slack) or "tightness" (below: best fit, for GPU fleets, where
per-card share variables make every kept pair expensive). "tightness" keeps, per class, the k
nodes where one of its agents fits tightest, plus every node the hint plans use for it (so the
greedy's plan stays a feasible, complete hint). Either way the plan is verified against every
node; what is lost is only optimality over the nodes left out (the bound is then over the scoped
model, and plans say so in `model.scope`).

Tightness (lower is better), per (class, node):
  - the largest leftover fraction, over the resources the class requests, of the node's
    allocatable after one agent: best fit;
  - plus, for each extended resource the class does not request, the free fraction of it on
    the node: an agent that needs no GPU stays off nodes whose GPUs are still free (it would
    strand them);
  - plus a rule's own `tightness(ix) -> float[cls, node]` when it has one (GpuShare: the
    leftover on the tightest card a share fits).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from models import Pod
from optimizer.baseline import (
    NONZERO_CPU,
    NONZERO_MEMORY,
    counts_from_assignment,
    decreasing_size_order,
    fit_scores,
    greedy,
)
from optimizer.index import BASE_RESOURCES, Index


def topology_keys(pod: Pod) -> set[str]:
    """Keys of the agent's hard spread constraints and required (anti-)affinity terms."""
    keys = {c.topology_key for c in pod.spec.topology_spread_constraints}
    aff = pod.spec.affinity
    if aff is not None:
        for group in (aff.pod_affinity, aff.pod_anti_affinity):
            if group is not None:
                keys |= {t.topology_key for t in group.required_during_scheduling_ignored_during_execution}
    return keys


def scope(ix: Index, full: np.ndarray, greedy_nodes: np.ndarray, k: int,
          strategy: str = "LeastAllocated", slack: float = 2.0, keep_greedy: bool = False
          ) -> np.ndarray:
    """bool[cls, node]: `full` with each class cut down to its scoped candidates. With
    `keep_greedy` the greedy's nodes stay too (a complete hint, but a LeastAllocated greedy
    touches nearly every node); without, optimize() still returns the greedy plan when it
    scores higher."""
    out = np.zeros_like(full)
    cpu, mem = ix.res_pos["cpu"], ix.res_pos["memory"]
    cap = ix.alloc[:, [cpu, mem]]
    used = ix.used[:, [cpu, mem]]
    free = np.maximum(ix.free, 0)
    placed = greedy_nodes >= 0
    for c, cls in enumerate(ix.classes):
        cand = np.nonzero(full[c])[0]
        size = int(ix.class_size[c])
        if cand.size <= k:
            out[c, cand] = True
            continue
        keep = np.zeros(ix.num_nodes, dtype=bool)
        mine = np.unique(greedy_nodes[placed & (ix.class_of == c)])
        if keep_greedy:
            keep[mine] = True
        req = ix.req[c]
        nz = np.array([req[cpu] or NONZERO_CPU, req[mem] or NONZERO_MEMORY], dtype=np.int64)
        key = -cand if strategy == "FirstFit" else fit_scores(strategy, cap[cand], used[cand] + nz)
        order = cand[np.argsort(-key, kind="stable")]  # best first, ties to the lowest index
        with np.errstate(divide="ignore"):
            per = np.where(req > 0, free[order] // np.maximum(req, 1), np.iinfo(np.int64).max)
        upper = np.minimum(per.min(axis=1), size)
        need = int(np.searchsorted(np.cumsum(upper), slack * size)) + 1
        want = max(k, need)
        for tk in sorted(topology_keys(cls.pod)):
            codes = ix.label(tk).codes[order]
            domains = np.unique(codes[codes >= 0])
            if domains.size > k:  # per-host keys: a domain may hold a single agent
                want = max(want, int(slack * size) + k)
                continue
            per_domain = max(1, k // max(1, domains.size))
            for d in domains.tolist():
                keep[order[codes == d][:per_domain]] = True
        keep[order[:want]] = True
        out[c] = keep & full[c]
    return out


def tightness(ix: Index, rules: Iterable[object]) -> np.ndarray:
    """float[cls, node]: how snugly one agent of the class fits the node (lower is tighter)."""
    alloc = np.maximum(ix.alloc, 1).astype(np.float64)  # [node, res]
    free = ix.free.astype(np.float64)
    req = ix.req.astype(np.float64)  # [cls, res]
    asks = req > 0
    asks[:, ix.pods_res] = False
    left = (free[None, :, :] - req[:, None, :]) / alloc[None, :, :]  # [cls, node, res]
    score = np.where(asks[:, None, :], left, -np.inf).max(axis=2)
    score[~np.isfinite(score)] = 0.0
    extended = np.array([r not in BASE_RESOURCES for r in ix.resources], dtype=bool)
    has = ix.alloc > 0  # [node, res]
    unused = np.where(has, free / alloc, 0.0) * extended[None, :]  # [node, res]
    score += (~asks * extended[None, :]).astype(np.float64) @ unused.T  # [cls, node]
    for rule in rules:
        hook = getattr(rule, "tightness", None)
        if hook is not None:
            extra = hook(ix)
            if extra is not None:
                score += extra
    return score


def tightest(ix: Index, mask: np.ndarray, k: int, keep: np.ndarray,
                     rules: Iterable[object]) -> np.ndarray:
    """bool[cls, node]: `mask` narrowed to the k tightest nodes per class, plus `keep`."""
    if k <= 0 or mask.shape[1] <= k:
        return mask
    score = np.where(mask, tightness(ix, rules), np.inf)
    top = np.argpartition(score, k - 1, axis=1)[:, :k]  # [cls, k]
    out = np.zeros_like(mask)
    np.put_along_axis(out, top, True, axis=1)
    return (out & mask) | (keep & mask)


def tight_scope(ix: Index, full: np.ndarray, static: np.ndarray, hint: np.ndarray, k: int,
                  rules: Iterable[object]) -> np.ndarray:
    """`tightest` keeping the nodes of the hint and of the two packing-order greedy plans
    (solve.py hints with the best of them)."""
    keep = hint > 0
    for strategy in ("MostAllocated", "FirstFit"):
        keep |= counts_from_assignment(ix, greedy(ix, static, strategy,
                                                  order=decreasing_size_order(ix))) > 0
    return tightest(ix, full, k, keep, rules)
