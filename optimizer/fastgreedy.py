"""The kube-like greedy in O(agents x classes x log nodes) for windows whose rules are node-local
or kept per domain (spread, pod affinity).

`baseline.greedy` rescans every node for every agent (numpy over [node, res]): 50,000 agents on
50,000 nodes is 2.5e9 node visits. When no rule's verdict depends on other placements (no
PodTopologySpread or InterPodAffinity in play, no gang, quota or token budget), a node's fit and
score for a class change only when an agent is bound to that very node. So each class keeps a
heap of (-score, node) over its statically feasible nodes; binding to node n pushes n's new
score into every class's heap (older entries go stale by version), and a node that no longer
fits a class is dropped from that class for good (free capacity only shrinks). The result is
the same assignment as `baseline.greedy`: the same scores, ties to the lowest node index.

PodTopologySpread and InterPodAffinity do depend on other placements, but only through
per-domain counters that grow as agents bind (optimizer/greedy_gates.py): a node a gate holds
back is parked out of its class's heap and pushed back when a binding reopens its domain, or
dropped when the gate closes it for good. Quotas, token budgets, co-location limits, GPU cards
and gangs (and preemption) take the vector greedy.
"""

from __future__ import annotations

import heapq
import weakref

import numpy as np

from optimizer.baseline import MAX_NODE_SCORE, NONZERO_CPU, NONZERO_MEMORY, fit_scores
from optimizer.greedy_gates import DROP, OK, Gates
from optimizer.index import Index
from optimizer.rules import colocation, gangs, gpu_share, pod_affinity, topology_spread

_LOCAL: weakref.WeakKeyDictionary[Index, bool] = weakref.WeakKeyDictionary()
_FAST: weakref.WeakKeyDictionary[Index, bool] = weakref.WeakKeyDictionary()


def fast_applies(ix: Index) -> bool:
    """True when the heap greedy can answer for the window: every rule in play is node-local or
    one whose state `greedy_gates.Gates` keeps per domain (spread, pod (anti-)affinity)."""
    got = _FAST.get(ix)
    if got is None:
        snap = ix.snap
        got = _FAST[ix] = not (
            snap.quotas or snap.token_budgets
            or colocation.limits_in_force((*snap.running, *snap.pending))  # counts per node
            or gpu_share.tables(ix).any_gpu  # per-card bookkeeping
            or bool((gangs.gang_table(ix).gang_of_cls >= 0).any()))
    return got


def is_local(ix: Index) -> bool:
    """True when every rule in play decides a (class, node) pair from that node alone; once per
    Index (every greedy run of a window and the aggregation check ask)."""
    got = _LOCAL.get(ix)
    if got is None:
        got = _LOCAL[ix] = fast_applies(ix) and not any(topology_spread.instances(ix)) and not (
            pod_affinity.InterPodAffinity().tables(ix).involved)
    return got


def greedy_local(ix: Index, static_mask: np.ndarray, strategy: str = "LeastAllocated",
                 order: np.ndarray | None = None, prefer: np.ndarray | None = None) -> np.ndarray:
    """int64[agent]: node per pending agent, -1 when none fits; `baseline.greedy`'s answer for
    a window where `fast_applies(ix)` holds. `prefer` as in `baseline.greedy_plan`."""
    free = ix.free.copy()  # [node, res]
    cpu, mem = ix.res_pos["cpu"], ix.res_pos["memory"]
    cap = ix.alloc[:, [cpu, mem]]  # [node, 2]
    used = ix.used[:, [cpu, mem]].copy()
    req = ix.req  # [cls, res]
    nz = np.stack([np.where(req[:, cpu] > 0, req[:, cpu], NONZERO_CPU),
                   np.where(req[:, mem] > 0, req[:, mem], NONZERO_MEMORY)], axis=1)  # [cls, 2]
    first_fit, most = strategy == "FirstFit", strategy == "MostAllocated"
    cap_l, nz_l = cap.tolist(), nz.tolist()
    heaps: list[list[tuple[int, int, int]]] = []
    fit0 = static_mask & _fits_all(req, free)  # [cls, node]
    for c in range(ix.num_classes):
        nodes = np.nonzero(fit0[c])[0]
        key = nodes if first_fit else -fit_scores(strategy, cap[nodes], used[nodes] + nz[c])
        h = list(zip(key.tolist(), nodes.tolist(), [0] * len(nodes), strict=True))
        heapq.heapify(h)
        heaps.append(h)
    # classes that can ever use a node, to refresh their heaps when it changes
    users = [np.nonzero(fit0[:, n])[0].tolist() for n in range(ix.num_nodes)] if ix.num_nodes else []
    version = [0] * ix.num_nodes
    dropped = np.zeros_like(fit0)  # [cls, node]: no longer fits, for good
    parked = np.zeros_like(fit0)  # [cls, node]: held back by a gate until it reopens
    gates = Gates(ix) if not is_local(ix) else None
    if gates is not None and not gates.any:
        gates = None
    # per class, only the resources it requests (kube-perf's extended-resource shape has one
    # resource per agent: 5,000 columns, of which each agent asks for one)
    asks = [np.flatnonzero(row) for row in req]
    ask_vals = [req[c, cols] for c, cols in enumerate(asks)]
    out = np.full(len(ix.snap.pending), -1, dtype=np.int64)
    seq = range(len(ix.snap.pending)) if order is None else order.tolist()
    class_of = ix.class_of.tolist()
    want = prefer.tolist() if prefer is not None else None

    def key_of(c: int, n: int) -> int:
        if first_fit:
            return n
        (cc, cm), (uc, um), (zc, zm) = cap_l[n], used[n].tolist(), nz_l[c]
        return -((_part(most, cc, uc + zc) + _part(most, cm, um + zm)) // 2)

    for a in seq:
        c = class_of[a]
        h, cols, vals = heaps[c], asks[c], ask_vals[c]
        n = -1
        p = want[a] if want is not None else -1
        if p >= 0 and fit0[c, p] and not dropped[c, p] and (vals <= free[p, cols]).all() and (
                gates is None or gates.verdict(c, p)[0] == OK):
            n = p
        while n < 0 and h:
            _, cand, ver = h[0]
            if ver != version[cand] or dropped[c, cand] or parked[c, cand]:
                heapq.heappop(h)
                continue
            if not (vals <= free[cand, cols]).all():
                heapq.heappop(h)
                dropped[c, cand] = True
                continue
            if gates is None:
                n = cand
                break
            verdict, where, code = gates.verdict(c, cand)
            if verdict == OK:
                n = cand
                break
            heapq.heappop(h)
            if verdict == DROP:
                dropped[c, cand] = True
            else:
                assert where is not None
                parked[c, cand] = True
                where.setdefault(code, []).append(cand)
        if n < 0:
            continue
        out[a] = n
        free[n] -= req[c]
        if not first_fit:  # FirstFit's key is the node index: live entries stay valid
            used[n] += nz[c]
            version[n] += 1
            for c2 in users[n]:
                if not dropped[c2, n] and not parked[c2, n]:
                    heapq.heappush(heaps[c2], (key_of(c2, n), n, version[n]))
        if gates is not None:
            for c2, nodes in gates.bind(c, n):
                for m in nodes:
                    if parked[c2, m] and not dropped[c2, m]:
                        parked[c2, m] = False
                        heapq.heappush(heaps[c2], (key_of(c2, m), m, version[m]))
    return out


def _part(most: bool, cap: int, requested: int) -> int:
    """One resource's score, as `_scores` computes it, for one node."""
    if cap == 0:
        return 0
    if most:
        return min(requested, cap) * MAX_NODE_SCORE // cap
    return 0 if requested > cap else (cap - requested) * MAX_NODE_SCORE // cap


def _fits_all(req: np.ndarray, free: np.ndarray) -> np.ndarray:
    """bool[cls, node]: one agent of the class fits the node's free capacity."""
    out = np.empty((req.shape[0], free.shape[0]), dtype=bool)
    for c in range(req.shape[0]):
        cols = np.flatnonzero(req[c])  # a resource the class does not ask for always fits
        out[c] = np.all(req[c, cols] <= free[:, cols], axis=1)
    return out
