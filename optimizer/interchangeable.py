"""Interchangeable empty nodes: keep only as many of a group as the window could use.

Empty nodes (no running pod, so no victim) that are the same object but for their name (same
labels but for a unique hostname, annotations, taints, cordon, capacity and allocatable) and
that every pre-filter treats alike (the same candidate agent classes) can be permuted in any
plan without changing its validity or its objective: every rule and term reads a node through
those fields only. A window whose candidate classes for a group hold A agents uses at most A of
the group's nodes, so any plan maps onto the group's first A nodes: the candidate pairs on the
others can go and the optimum stays the optimum (exact, unlike scoping.py's candidate scoping).
CP-SAT finds these orbits itself but only after building and presolving every pair: the latency
window (50 agents x 500 nodes) has three groups of ~60 empty general nodes of which 35 can be
used (~20 % of its pairs). Plans found on the full node set (the greedy hints) are mapped onto
the kept nodes with `canonical` before they are scored or hinted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.index import Index

HOSTNAME = "kubernetes.io/hostname"


@dataclass(frozen=True)
class Trim:
    mask: np.ndarray  # bool[cls, node]: the candidate mask without the surplus nodes
    groups: tuple[np.ndarray, ...]  # int64 node indices per trimmed group, ascending
    kept: tuple[int, ...]  # per group: how many of its first nodes stay

    @property
    def removed(self) -> int:
        return sum(len(g) - k for g, k in zip(self.groups, self.kept, strict=True))

    def canonical(self, counts: np.ndarray) -> np.ndarray:
        """The same plan with each group's used nodes moved to its first (kept) nodes."""
        out = counts.copy()
        for g in self.groups:
            used = counts[:, g].sum(axis=0) > 0
            order = np.concatenate([np.flatnonzero(used), np.flatnonzero(~used)])
            out[:, g] = counts[:, g[order]]
        return out


def _node_key(ix: Index, n: int, unique_host: bool) -> str:
    node = ix.snap.nodes[n]
    labels = node.metadata.labels
    if unique_host:  # a hostname shared by two nodes is a topology domain: it must match
        labels = {k: v for k, v in labels.items() if k != HOSTNAME}
    dump = node.model_dump(mode="json", exclude={"metadata": {"name", "uid", "labels"},
                                                  "spec": {"provider_id"}})
    return repr((sorted(labels.items()), dump))


def trim(ix: Index, mask: np.ndarray) -> Trim | None:
    """The mask without each group's surplus nodes, or None when no group has any."""
    empty = np.array([not pods for pods in ix.snap.running_on], dtype=bool)
    if ix.victims is not None and len(ix.victims):
        empty[ix.victims.node] = False
    usable = empty & mask.any(axis=0)
    if usable.sum() < 2:
        return None
    # a cheap numpy key first (candidate classes, allocatable): only its groups larger than
    # what their classes could fill get the full key
    cols = np.flatnonzero(usable)
    rows = np.concatenate([mask[:, cols].T.astype(np.int64), ix.alloc[cols], ix.used[cols]], axis=1)
    _, coarse = np.unique(rows, axis=0, return_inverse=True)
    coarse = coarse.reshape(-1)
    need = ix.class_size @ mask[:, cols]  # agents that may land on each node
    hosts: dict[str, int] = {}
    for node in ix.snap.nodes:
        h = node.metadata.labels.get(HOSTNAME)
        if h is not None:
            hosts[h] = hosts.get(h, 0) + 1
    groups: list[np.ndarray] = []
    kept: list[int] = []
    for k in np.unique(coarse).tolist():
        members = cols[coarse == k]
        limit = int(need[np.flatnonzero(coarse == k)[0]])
        if len(members) <= limit:
            continue
        fine: dict[str, list[int]] = {}
        for n in members.tolist():
            host = ix.snap.nodes[n].metadata.labels.get(HOSTNAME)
            fine.setdefault(_node_key(ix, n, host is None or hosts[host] == 1), []).append(n)
        for nodes in fine.values():
            if len(nodes) > limit:
                groups.append(np.array(nodes, dtype=np.int64))
                kept.append(limit)
    if not groups:
        return None
    out = mask.copy()
    for g, k in zip(groups, kept, strict=True):
        out[:, g[k:]] = False
    return Trim(out, tuple(groups), tuple(kept))
