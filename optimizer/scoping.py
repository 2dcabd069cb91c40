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
"""

from __future__ import annotations

import numpy as np

from models import Pod
from optimizer.baseline import NONZERO_CPU, NONZERO_MEMORY, fit_scores
from optimizer.index import Index


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
