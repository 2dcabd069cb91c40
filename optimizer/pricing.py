"""Cost per token of placing an agent class on a node, from a PricingTable.

For a pair (class c, node n), in the table's currency:
  occupancy  o = price_per_hour(n) * dominant share of n's allocatable that one agent of c takes
  served     s = min(demand(c), 3600 * tokens_per_second(c, n))   tokens per hour
  cost/token   = o / s
  spend        = cost/token * demand(c)   (what serving the agent's demand costs there, per hour)
An agent with no token demand costs its occupancy. Demand comes from the pod annotation
`agentplace.io/tokens-per-hour`, else the table's default for its `agentplace.io/agent-class`
label, else 0. All of it is an assumption of the table's author and is reported as such.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from models import Pod
from models.agentplace import AGENT_CLASS, TOKENS_PER_HOUR, PricingTable
from optimizer.index import Index

MICRO = 1_000_000  # spend is kept in micro-units of the currency: integers for CP-SAT


@dataclass(frozen=True)
class Pricing:
    table: PricingTable | None
    node_class: np.ndarray  # int64[node], -1 when no class matches
    price: np.ndarray  # float64[node] per hour
    demand: np.ndarray  # int64[cls] tokens per hour
    warnings: tuple[str, ...]

    def spend(self, ix: Index, cls: np.ndarray, node: np.ndarray) -> np.ndarray:
        """int64[pair]: micro-currency per hour to serve each pair's agent."""
        if self.table is None or cls.size == 0:
            return np.zeros(cls.size, dtype=np.int64)
        req = ix.req[cls].astype(np.float64)  # [pair, res]
        alloc = ix.alloc[node].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(alloc > 0, req / alloc, 0.0)
        share[:, ix.pods_res] = 0.0  # a pod slot is not what a node is priced by
        occupancy = self.price[node] * share.max(axis=1)
        tps = self._tps(ix, cls, node)
        demand = self.demand[cls].astype(np.float64)
        served = np.minimum(demand, 3600.0 * tps)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_token = np.where(served > 0, occupancy / served, 0.0)
        spend = np.where(demand > 0, per_token * demand, occupancy)
        return np.rint(spend * MICRO).astype(np.int64)

    def _tps(self, ix: Index, cls: np.ndarray, node: np.ndarray) -> np.ndarray:
        assert self.table is not None
        classes = self.table.spec.node_classes
        labels = [ix.classes[c].pod.labels.get(AGENT_CLASS, "") for c in range(ix.num_classes)]
        table = np.full((ix.num_classes, len(classes) + 1), np.inf)  # [cls, node class]; inf = unknown
        for c, label in enumerate(labels):
            for k, nc in enumerate(classes):
                tps = nc.tokens_per_second.get(label, nc.tokens_per_second.get("default"))
                if tps is not None:
                    table[c, k] = float(tps)
        return table[cls, self.node_class[node]]


def demand_tokens(pod: Pod, table: PricingTable | None) -> int:
    """Tokens per hour: the annotation (checked by the loader), else the table's default for
    the agent class, else its "default", else 0."""
    raw = pod.metadata.annotations.get(TOKENS_PER_HOUR)
    if raw is not None:
        return int(raw)
    if table is None:
        return 0
    defaults = table.spec.default_tokens_per_hour
    return defaults.get(pod.labels.get(AGENT_CLASS, ""), defaults.get("default", 0))


_CACHE: weakref.WeakKeyDictionary[Index, Pricing] = weakref.WeakKeyDictionary()


def pricing_for(ix: Index) -> Pricing:
    """The window's pricing, built once per Index (the objective and the budget rule's greedy
    hook both read it, the latter at every step)."""
    pricing = _CACHE.get(ix)
    if pricing is None:
        pricing = _CACHE[ix] = build_pricing(ix, ix.snap.pricing)
    return pricing


def build_pricing(ix: Index, table: PricingTable | None) -> Pricing:
    n = ix.num_nodes
    demand = np.zeros(ix.num_classes, dtype=np.int64)
    if table is None:
        return Pricing(None, np.full(n, -1, dtype=np.int64), np.zeros(n), demand, ())
    warnings = []
    node_class = np.full(n, -1, dtype=np.int64)
    price = np.zeros(n)
    for i, node in enumerate(ix.snap.nodes):
        for k, nc in enumerate(table.spec.node_classes):
            if all(node.labels.get(key) == v for key, v in nc.match.items()):
                node_class[i], price[i] = k, float(nc.price_per_hour)
                break
    unpriced = int((node_class < 0).sum())
    if unpriced:
        warnings.append(f"PricingTable {table.name}: {unpriced} node(s) match no node class and "
                        "are priced at 0")
    for c, cls in enumerate(ix.classes):
        demand[c] = demand_tokens(cls.pod, table)
    return Pricing(table, node_class, price, demand, tuple(warnings))
