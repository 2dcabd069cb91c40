"""Interchangeable nodes: keep only as many of a group as the window could use.

Nodes that are the same object but for their name (same labels but for a unique hostname,
annotations, taints, cordon, capacity and allocatable), whose running pods are the same but for
their names (so their victims are too: priority, requests, lost work, PDBs), and that every
pre-filter treats alike (the same candidate agent classes) can be permuted in any plan, with
their running pods, without changing its validity or its objective: every rule and term reads
a node and its pods through those fields only. A window whose candidate classes for a group
hold A agents uses at most A of the group's nodes, so any plan maps onto the group's first A
nodes: the candidate pairs on the others can go and the optimum stays the optimum (exact,
unlike scoping.py's candidate scoping).
CP-SAT finds these orbits itself but only after building and presolving every pair: the latency
window (50 agents x 500 nodes) has three groups of ~60 empty general nodes of which 35 can be
used and three of ~55 nodes running one batch pod each of which 15 can be (~40 % of its pairs
go; 20 windows, same run: p50 406 -> 305 ms, solve 227 -> 139 ms, all proven either way).
Plans found on the full node set (the greedy hints) are mapped, evictions included, onto the
kept nodes with `canonical` before they are scored or hinted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.index import Index

HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True)
class Trim:
    mask: np.ndarray  # bool[cls, node]: the candidate mask without the surplus nodes
    groups: tuple[np.ndarray, ...]  # int64 node indices per trimmed group, ascending
    kept: tuple[int, ...]  # per group: how many of its first nodes stay
    # per node of a group: its victims (ix.victims indices) in pod-key order, so twins align
    victims_on: dict[int, list[int]] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return sum(len(g) - k for g, k in zip(self.groups, self.kept, strict=True))

    def canonical(self, counts: np.ndarray, evicted: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
        """The same plan with each group's used nodes (placing or evicting) moved, with their
        evictions, to its first (kept) nodes. A group using more nodes than it keeps (only by
        evicting where nothing lands) is left as it is."""
        out = counts.copy()
        gone = None if evicted is None else evicted.copy()
        for g, k in zip(self.groups, self.kept, strict=True):
            used = counts[:, g].sum(axis=0) > 0
            evicting = evicted is not None and bool(evicted.any())
            if evicting:
                used |= np.array([bool(evicted[self.victims_on.get(int(n), [])].any()) for n in g])
            if used.sum() > k:
                continue
            order = np.concatenate([np.flatnonzero(used), np.flatnonzero(~used)])
            out[:, g] = counts[:, g[order]]
            if evicting and gone is not None and evicted is not None:
                for new, old in zip(g.tolist(), g[order].tolist(), strict=True):
                    gone[self.victims_on.get(new, [])] = evicted[self.victims_on.get(old, [])]
        return out, gone


def _node_key(ix: Index, n: int, unique_host: bool, cache: dict[int, str]) -> str:
    node = ix.snap.nodes[n]
    labels = node.metadata.labels
    if unique_host:  # a hostname shared by two nodes is a topology domain: it must match
        labels = {k: v for k, v in labels.items() if k != HOSTNAME}
    # model_dump_json: every field the models know, in a fixed order (a dict given in another
    # order only makes two twins look different: conservative)
    dump = node.model_dump_json(exclude={"metadata": {"name", "uid", "labels"},
                                         "spec": {"provider_id"}})
    pods = sorted(_pod_key(ix, p, cache) for p in ix.snap.running_on[n])
    return "\n".join([repr(sorted(labels.items())), dump, *pods])


def _pod_key(ix: Index, p: int, cache: dict[int, str]) -> str:
    if p not in cache:
        pod = ix.snap.running[p]
        dump = pod.model_dump_json(exclude={"metadata": {"name", "uid"}, "spec": {"node_name"}})
        cache[p] = f"{bool(pod.metadata.uid)}{dump}"
    return cache[p]


def _row_ids(parts: list[np.ndarray]) -> np.ndarray:
    """int64[row]: one id per distinct row of the parts side by side, each part read sparsely
    (its nonzero columns and values): np.unique(axis=0) over the dense rows sorted column by
    column (kube-perf's extended-resource shape, 5,000 nodes x 5,000 resources: 7 s)."""
    n = parts[0].shape[0]
    keys: list[list[bytes]] = [[] for _ in range(n)]
    for part in parts:
        r, c = np.nonzero(part)
        bounds = np.searchsorted(r, np.arange(n + 1))
        cols, vals = c.astype(np.int64).tobytes(), part[r, c].astype(np.int64).tobytes()
        for i, (lo, hi) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
            # count-prefixed, so the joined key parses one way only
            keys[i].append((hi - lo).to_bytes(8, "little") + cols[8 * lo:8 * hi] + vals[8 * lo:8 * hi])
    ids: dict[bytes, int] = {}
    return np.array([ids.setdefault(b"".join(k), len(ids)) for k in keys], dtype=np.int64)


def trim(ix: Index, mask: np.ndarray) -> Trim | None:
    """The mask without each group's surplus nodes, or None when no group has any."""
    usable = mask.any(axis=0)
    if usable.sum() < 2:
        return None
    # a cheap numpy key first (candidate classes, allocatable, usage, pods): only its groups
    # larger than what their classes could fill get the full key
    cols = np.flatnonzero(usable)
    pods = np.array([len(ix.snap.running_on[n]) for n in cols.tolist()], dtype=np.int64)
    coarse = _row_ids([np.packbits(mask[:, cols].T, axis=1), ix.alloc[cols], ix.used[cols],
                       pods[:, None]])
    need = ix.class_size @ mask[:, cols]  # agents that may land on each node
    hosts: dict[str, int] = {}
    for node in ix.snap.nodes:
        h = node.metadata.labels.get(HOSTNAME)
        if h is not None:
            hosts[h] = hosts.get(h, 0) + 1
    groups: list[np.ndarray] = []
    kept: list[int] = []
    pod_keys: dict[int, str] = {}
    order = np.argsort(coarse, kind="stable")
    starts = np.flatnonzero(np.diff(coarse[order], prepend=-1))
    for idx in np.split(order, starts[1:]):
        members = cols[idx]
        limit = int(need[idx[0]])
        if len(members) <= limit:
            continue
        fine: dict[str, list[int]] = {}
        for n in members.tolist():
            host = ix.snap.nodes[n].metadata.labels.get(HOSTNAME)
            key = _node_key(ix, n, host is None or hosts[host] == 1, pod_keys)
            fine.setdefault(key, []).append(n)
        for nodes in fine.values():
            if len(nodes) > limit:
                groups.append(np.array(nodes, dtype=np.int64))
                kept.append(limit)
    if not groups:
        return None
    out = mask.copy()
    for g, k in zip(groups, kept, strict=True):
        out[:, g[k:]] = False
    victims_on: dict[int, list[int]] = {}
    victims = ix.victims
    if victims is not None and len(victims):
        grouped = set(np.concatenate(groups).tolist())
        for v, n in enumerate(victims.node.tolist()):
            if n in grouped:
                victims_on.setdefault(n, []).append(v)
        for vs in victims_on.values():
            vs.sort(key=lambda v: _pod_key(ix, int(victims.pods[v]), pod_keys))
    return Trim(out, tuple(groups), tuple(kept), victims_on)
