"""NodeResourcesFit: every requested resource, extended ones included, and the pod count.

A node that does not list a resource has 0 of it; a zero request skips that resource, as in
kube's fitsRequest. The batch constraint is the same inequality summed over placed agents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from ortools.sat.python import cp_model

from models import Node, Pod
from optimizer.index import Index
from optimizer.rules.base import Assignment, NodeUsage, Reason, Violation
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.model import ModelBuilder

TOO_MANY_PODS = "Too many pods"
CHUNK = 1 << 22  # cells per block when testing fit, bounds peak memory


def insufficient(resource: str) -> str:
    return f"Insufficient {resource}"


class NodeResourcesFit:
    name: ClassVar[str] = "NodeResourcesFit"

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """A single agent must fit in the node's free capacity on every resource it requests."""
        free = ix.free  # [node, res]
        out = np.empty((ix.num_classes, ix.num_nodes), dtype=bool)
        step = max(1, CHUNK // max(1, ix.num_nodes * len(ix.resources)))
        for lo in range(0, ix.num_classes, step):
            # only the resources this block requests (a resource nobody asks for always fits):
            # kube-perf's extended-resource shape has one resource per agent, 5,000 x 5,000 x
            # 5,000 cells in the dense form (minutes), 5,000 x 5,000 here
            blk = ix.req[lo:lo + step]
            cols = np.flatnonzero((blk != 0).any(axis=0))
            req = blk[:, None, cols]  # [cls, 1, res asked]
            ok = (req <= free[None, :, cols]) | (req == 0)
            out[lo:lo + step] = ok.all(axis=2)
        victims = ix.victims
        if victims is not None and len(victims):
            # kube's preemption dry run: the agent fits once every lower-priority victim is gone
            nodes = np.unique(victims.node)
            for c in np.nonzero(victims.preempts)[0].tolist():
                room = free[nodes] + victims.extra(ix, int(victims.agent_priority[c]))[nodes]
                req = ix.req[c]
                out[c, nodes] |= np.all((req <= room) | (req == 0), axis=1)
        return out

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        """sum_c req[c, r] * x[c, n] <= free[n, r] + what evictions free there, only where it
        could bind."""
        from optimizer.preemption import freed  # preemption reads the rules registry

        free = ix.free
        if not mb.x:
            return
        # where the candidates' most could exceed the free capacity, for the resources some
        # candidate asks for (5,000 resources x 5,000 nodes in kube-perf's extended-resource
        # shape: a numpy call per pair took a minute): one pass over the pairs
        asked = np.flatnonzero(ix.req.any(axis=0))
        req_pairs = ix.req[mb.pair_cls][:, asked]
        most = np.zeros((ix.num_nodes, asked.size), dtype=np.int64)
        np.add.at(most, mb.pair_node, req_pairs * mb.upper[:, None])
        asks = np.zeros((ix.num_nodes, asked.size), dtype=np.int64)  # candidates asking for r
        np.add.at(asks, mb.pair_node, req_pairs > 0)
        binds = (most > free[:, asked]) & (asks > 0)
        for n in np.flatnonzero(binds.any(axis=1)).tolist():
            ps = mb.pairs_of_node[n]
            xs = [mb.x[p] for p in ps.tolist()]
            req = ix.req[mb.pair_cls[ps]]
            ub = mb.upper[ps]
            for r in asked[binds[n]].tolist():
                coef = req[:, r]
                nz = np.flatnonzero(coef).tolist()
                gain = freed(ix.victims, mb.evictions, n, r) if ix.victims is not None else []
                load = cp_model.LinearExpr.weighted_sum([xs[i] for i in nz], coef[nz].tolist())
                room = int(free[n, r]) + sum(q * e for q, e in gain)
                if free[n, r] < 0:  # over-committed: binds only once something lands there
                    used = mb.model.new_bool_var(f"used_{n}_{r}")
                    for a, x, u in zip(coef, xs, ub, strict=True):
                        if a:
                            mb.model.add(x <= int(u) * used)
                    room += -int(free[n, r]) * (1 - used)
                mb.model.add(load <= room)
                mb.count_constraint(self.name)

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        alloc = node.allocatable()
        reasons = []
        if usage.pods + 1 > alloc.get("pods", 0):
            reasons.append(Reason(self.name, TOO_MANY_PODS))
        for r, v in sorted(pod.requests().items(), key=_kube_order):
            if v > 0 and v > alloc.get(r, 0) - usage.requested.get(r, 0):
                reasons.append(Reason(self.name, insufficient(r)))
        return reasons

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        nodes = {n.name: n for n in snap.nodes}
        pending = {p.ref: p for p in snap.pending}
        usage: dict[str, NodeUsage] = {n: NodeUsage() for n in nodes}
        for pod in snap.running:
            if pod.spec.node_name in usage:
                usage[pod.spec.node_name].add(pod.requests())
        placed_on: dict[str, list[str]] = {}
        for agent, node in assignment.items():
            if node in usage and agent in pending:
                usage[node].add(pending[agent].requests())
                placed_on.setdefault(node, []).append(agent)
        out = []
        for node, agents in placed_on.items():
            alloc = nodes[node].allocatable()
            u = usage[node]
            if u.pods > alloc.get("pods", 0):
                out.append(Violation(self.name, ",".join(agents), node,
                                     f"{TOO_MANY_PODS}: {u.pods} > {alloc.get('pods', 0)}"))
            # only resources some placed agent asks for: kube skips zero requests
            asked = {r for a in agents for r, v in pending[a].requests().items() if v > 0}
            for r in sorted(asked):
                if u.requested.get(r, 0) > alloc.get(r, 0):
                    out.append(Violation(
                        self.name, ",".join(agents), node,
                        f"{insufficient(r)}: requested {u.requested[r]} > allocatable "
                        f"{alloc.get(r, 0)}"))
        return out


def _kube_order(item: tuple[str, int]) -> tuple[int, str]:
    # fitsRequest checks cpu, memory, ephemeral-storage, then scalar resources
    order = {"cpu": 0, "memory": 1, "ephemeral-storage": 2}
    return (order.get(item[0], 3), item[0])
