"""A neighbourhood for large windows: keep at most K candidate nodes per agent class.

On a big cluster every class is a candidate on most nodes, and the model (variables per pair,
plus per-card variables for GPU shares) outgrows the time limit. `SolveConfig.max_candidates`
keeps, per class, the K nodes where one of its agents fits tightest, plus every node the hint
plan uses for it (so the greedy's plan stays a feasible, complete hint). The plan is still
verified against every node; what is lost is only optimality over the nodes left out (the
bound is then over the neighbourhood, and plans say so in `model.max_candidates`).

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

from optimizer.baseline import counts_from_assignment, decreasing_size_order, greedy
from optimizer.index import BASE_RESOURCES, Index


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


def limit_candidates(ix: Index, mask: np.ndarray, k: int, keep: np.ndarray,
                     rules: Iterable[object]) -> np.ndarray:
    """bool[cls, node]: `mask` narrowed to the k tightest nodes per class, plus `keep`."""
    if k <= 0 or mask.shape[1] <= k:
        return mask
    score = np.where(mask, tightness(ix, rules), np.inf)
    top = np.argpartition(score, k - 1, axis=1)[:, :k]  # [cls, k]
    out = np.zeros_like(mask)
    np.put_along_axis(out, top, True, axis=1)
    return (out & mask) | (keep & mask)


def neighbourhood(ix: Index, full: np.ndarray, static: np.ndarray, hint: np.ndarray, k: int,
                  rules: Iterable[object]) -> np.ndarray:
    """limit_candidates keeping the nodes of the hint and of the two packing-order greedy plans
    (solve.py hints with the best of them)."""
    keep = hint > 0
    for strategy in ("MostAllocated", "FirstFit"):
        keep |= counts_from_assignment(ix, greedy(ix, static, strategy,
                                                  order=decreasing_size_order(ix))) > 0
    return limit_candidates(ix, full, k, keep, rules)
