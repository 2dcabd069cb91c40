"""TokenBudget: a tenant's LLM token (or currency) budget over a period, as a hard cap.

A budget (kind TokenBudget, agentplace.io/v1alpha1) covers the pods of its tenant: those in
`spec.tenant.namespace` (default: the budget's own namespace) carrying every label of
`spec.tenant.labels`. Each agent placed in the window commits its expected demand for one
period (tokens per hour from pricing.py's demand x the period's hours) and, for a currency
budget, what serving that demand costs on the node it lands on. `status.spentTokens` /
`status.spentDollars` is what earlier windows already committed in the period; the plan
reports the new totals so the next window carries them over. Like quota this is admission:
it never depends on which node *fits*, only (for currency) on which node is chosen.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from models import Node, Pod
from models.agentplace import AGENT_CLASS, PricingTable, TokenBudget
from optimizer.index import Index
from optimizer.pricing import MICRO, demand_tokens, pricing_for
from optimizer.rules.base import Assignment, NodeUsage, Reason, Violation
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.baseline import GreedyState
    from optimizer.model import ModelBuilder

NAME = "TokenBudget"
_PERIOD = re.compile(r"^(\d+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def period_hours(budget: TokenBudget) -> Decimal:
    m = _PERIOD.match(budget.spec.period)
    if m is None:  # the loader rejects these; kept total for direct callers
        raise ValueError(f"TokenBudget {budget.ref}: spec.period: {budget.spec.period!r}: "
                         "expected a duration such as 30m, 1h or 1d")
    return Decimal(int(m[1]) * _SECONDS[m[2]]) / 3600


def covers(budget: TokenBudget, pod: Pod) -> bool:
    tenant = budget.spec.tenant
    ns = tenant.namespace or budget.namespace
    return pod.namespace == ns and all(pod.labels.get(k) == v for k, v in tenant.labels.items())


def period_tokens(pod: Pod, budget: TokenBudget, table: PricingTable | None) -> int:
    return math.ceil(demand_tokens(pod, table) * period_hours(budget))


def placement_dollars(pod: Pod, node: Node, table: PricingTable) -> Decimal:
    """Currency per hour to serve `pod` on `node`: a scalar second reading of pricing.py."""
    nc = next((c for c in table.spec.node_classes
               if all(node.labels.get(k) == v for k, v in c.match.items())), None)
    if nc is None:
        return Decimal(0)
    alloc = node.allocatable()
    shares = [Decimal(v) / Decimal(alloc[r]) for r, v in pod.requests().items()
              if r != "pods" and alloc.get(r, 0) > 0]
    occupancy = nc.price_per_hour * max(shares, default=Decimal(0))
    demand = demand_tokens(pod, table)
    if demand == 0:
        return occupancy
    tps = nc.tokens_per_second.get(pod.labels.get(AGENT_CLASS, ""), nc.tokens_per_second.get("default"))
    served = Decimal(demand) if tps is None else min(Decimal(demand), 3600 * tps)
    return occupancy / served * demand if served > 0 else Decimal(0)


def _micro(d: Decimal) -> int:
    return int((d * MICRO).to_integral_value())


@dataclass(frozen=True)
class BudgetTable:
    """Per budget: which classes it covers, their tokens per period, what is left."""

    budgets: tuple[TokenBudget, ...]
    covered: np.ndarray  # bool[budget, cls]
    tokens: np.ndarray  # int64[budget, cls] tokens per period per agent
    tokens_left: np.ndarray  # int64[budget], -1 when the budget has no token cap
    dollars_left: np.ndarray  # int64[budget] micro-currency, -1 when no currency cap


_TABLES: weakref.WeakKeyDictionary[Index, BudgetTable] = weakref.WeakKeyDictionary()


def budget_table(ix: Index) -> BudgetTable:
    """Built once per Index: prefilter, encode and the greedy hook (every step) read it."""
    table = _TABLES.get(ix)
    if table is None:
        table = _TABLES[ix] = _build_budget_table(ix)
    return table


def _build_budget_table(ix: Index) -> BudgetTable:
    budgets = ix.snap.token_budgets
    table = ix.snap.pricing
    nb, nc = len(budgets), ix.num_classes
    covered = np.zeros((nb, nc), dtype=bool)
    tokens = np.zeros((nb, nc), dtype=np.int64)
    for b, budget in enumerate(budgets):
        for c, cls in enumerate(ix.classes):
            if covers(budget, cls.pod):
                covered[b, c] = True
                tokens[b, c] = period_tokens(cls.pod, budget, table)
    tokens_left = np.array([int(b.spec.tokens.value) - b.status.spent_tokens
                            if b.spec.tokens is not None else -1 for b in budgets], dtype=np.int64)
    dollars_left = np.array([_micro(b.spec.dollars - b.status.spent_dollars)
                             if b.spec.dollars is not None else -1 for b in budgets], dtype=np.int64)
    return BudgetTable(budgets, covered, tokens, tokens_left, dollars_left)


def _period_spend(ix: Index, budget: TokenBudget, cls: np.ndarray, node: np.ndarray) -> np.ndarray:
    """int64[pair] micro-currency committed for one period by each (class, node) pair."""
    hourly = pricing_for(ix).spend(ix, cls, node)
    return np.ceil(hourly * float(period_hours(budget))).astype(np.int64)


class TokenBudgetRule:
    name: ClassVar[str] = NAME

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """Rows of classes whose one agent alone exceeds what is left are all-False; for a
        currency budget, pairs whose spend alone exceeds it."""
        if not ix.snap.token_budgets:
            return None
        t = budget_table(ix)
        mask = np.ones((ix.num_classes, ix.num_nodes), dtype=bool)
        for b, budget in enumerate(t.budgets):
            if t.tokens_left[b] >= 0:
                over = t.covered[b] & (t.tokens[b] > t.tokens_left[b])
                mask[over] = False
            if t.dollars_left[b] >= 0:
                cls = np.repeat(np.nonzero(t.covered[b])[0], ix.num_nodes)
                node = np.tile(np.arange(ix.num_nodes), int(t.covered[b].sum()))
                spend = _period_spend(ix, budget, cls, node)
                mask[cls[spend > t.dollars_left[b]], node[spend > t.dollars_left[b]]] = False
        return mask

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        if not ix.snap.token_budgets:
            return
        t = budget_table(ix)
        for b, budget in enumerate(t.budgets):
            if t.tokens_left[b] >= 0:
                classes = np.nonzero(t.covered[b] & (t.tokens[b] > 0))[0].tolist()
                if sum(int(t.tokens[b, c]) * int(ix.class_size[c]) for c in classes) > t.tokens_left[b]:
                    mb.model.add(sum(int(t.tokens[b, c]) * mb.placed[c] for c in classes)
                                 <= int(t.tokens_left[b]))
                    mb.count_constraint(self.name)
            if t.dollars_left[b] >= 0:
                pairs = np.nonzero(t.covered[b][mb.pair_cls])[0]
                spend = _period_spend(ix, budget, mb.pair_cls[pairs], mb.pair_node[pairs])
                keep = spend > 0
                if int((spend[keep] * mb.upper[pairs[keep]]).sum()) > t.dollars_left[b]:
                    mb.model.add(sum(int(s) * mb.x[p] for s, p in zip(spend[keep], pairs[keep], strict=True))
                                 <= int(t.dollars_left[b]))
                    mb.count_constraint(self.name)

    def admits(self, ix: Index, state: GreedyState, agent: int, node_mask: np.ndarray) -> np.ndarray:
        if not ix.snap.token_budgets:
            return node_mask
        t = budget_table(ix)
        c = int(ix.class_of[agent])
        for b, budget in enumerate(t.budgets):
            if not t.covered[b, c]:
                continue
            if t.tokens_left[b] >= 0 and t.tokens[b] @ state.placed + t.tokens[b, c] > t.tokens_left[b]:
                return np.zeros_like(node_mask)
            if t.dollars_left[b] >= 0:
                bound = np.nonzero((state.node_of >= 0) & t.covered[b][ix.class_of])[0]
                spent = int(_period_spend(ix, budget, ix.class_of[bound], state.node_of[bound]).sum())
                nodes = np.nonzero(node_mask)[0]
                cost = _period_spend(ix, budget, np.full(nodes.size, c), nodes)
                node_mask = node_mask.copy()
                node_mask[nodes[spent + cost > t.dollars_left[b]]] = False
        return node_mask

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        return []  # admission, not a node Filter: see admission_reason

    def admission_reason(self, pod: Pod, snap: Snapshot, placed: Collection[str] = ()) -> str | None:
        """Why `pod` cannot be added once `placed` are: the budget, what it asks, what is left,
        and the counterfactual (how much larger the budget would need to be)."""
        pending = {p.ref: p for p in snap.pending}
        others = [pending[a] for a in placed if a in pending and a != pod.ref]
        for budget in snap.token_budgets:
            if not covers(budget, pod) or budget.spec.tokens is None:
                continue
            limit = int(budget.spec.tokens.value)
            window = sum(period_tokens(p, budget, snap.pricing) for p in others if covers(budget, p))
            own = period_tokens(pod, budget, snap.pricing)
            committed = budget.status.spent_tokens + window
            if committed + own > limit:
                return (f"token budget {budget.ref} exceeded: requested {own} tokens per "
                        f"{budget.spec.period}, committed {committed} "
                        f"({budget.status.spent_tokens} earlier + {window} this window), "
                        f"limit {limit}; it would fit with a budget of {committed + own} tokens "
                        f"or without {committed + own - limit} tokens of this window's agents")
        return None

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        pending = {p.ref: p for p in snap.pending}
        nodes = {n.name: n for n in snap.nodes}
        placed = [(pending[a], nodes[n]) for a, n in assignment.items() if a in pending and n in nodes]
        out = []
        for budget in snap.token_budgets:
            mine = [(p, n) for p, n in placed if covers(budget, p)]
            if not mine:
                continue
            agents = ",".join(sorted(p.ref for p, _ in mine))
            if budget.spec.tokens is not None:
                total = budget.status.spent_tokens + sum(period_tokens(p, budget, snap.pricing)
                                                         for p, _ in mine)
                if total > budget.spec.tokens.value:
                    out.append(Violation(self.name, agents, None,
                                         f"token budget {budget.ref}: {total} tokens > limit "
                                         f"{budget.spec.tokens.value}"))
            if budget.spec.dollars is not None and snap.pricing is not None:
                hours = period_hours(budget)
                total_d = budget.status.spent_dollars + sum(
                    placement_dollars(p, n, snap.pricing) * hours for p, n in mine)
                # the model rounds each placement up to a micro-unit: allow that much
                slack = Decimal(len(mine)) / MICRO
                if total_d > budget.spec.dollars + slack:
                    out.append(Violation(self.name, agents, None,
                                         f"budget {budget.ref}: {total_d:.6f} > limit "
                                         f"{budget.spec.dollars}"))
        return out


def budget_report(assignment: Assignment, snap: Snapshot) -> list[dict[str, object]]:
    """Per budget: committed before, this window's commitment, the new totals and the caps:
    what the next window starts from."""
    pending = {p.ref: p for p in snap.pending}
    nodes = {n.name: n for n in snap.nodes}
    out: list[dict[str, object]] = []
    for budget in snap.token_budgets:
        mine = [(pending[a], nodes[n]) for a, n in assignment.items()
                if a in pending and n in nodes and covers(budget, pending[a])]
        tokens = sum(period_tokens(p, budget, snap.pricing) for p, _ in mine)
        row: dict[str, object] = {
            "budget": budget.ref, "period": budget.spec.period, "agents": len(mine),
            "window_tokens": tokens, "spent_tokens": budget.status.spent_tokens + tokens,
            "limit_tokens": int(budget.spec.tokens.value) if budget.spec.tokens is not None else None,
        }
        if snap.pricing is not None:
            dollars = sum((placement_dollars(p, n, snap.pricing) * period_hours(budget)
                           for p, n in mine), Decimal(0))
            row |= {"window_dollars": float(round(dollars, 6)),
                    "spent_dollars": float(round(budget.status.spent_dollars + dollars, 6)),
                    "limit_dollars": float(budget.spec.dollars) if budget.spec.dollars is not None
                    else None}
        out.append(row)
    return out
