"""The plan: the one output schema shared by the CLI, the API and the benchmarks.

Schema (JSON, stable; new keys may be added, existing ones keep their meaning):
  status       OPTIMAL | FEASIBLE | FALLBACK (greedy plan: the solver found none in time)
  placements   [{"agent": "ns/name", "node": "node-name"}]
  unplaced     [{"agent": "ns/name", "reason": "0/N nodes are available: ...",
                 "counterfactual": "fits on node-7 with 500m more cpu free there" | null}]
  evictions    [{"pod": "ns/name", "node": "...", "agent": "ns/name it makes room for",
                 "priority": victim's priority, "reason": "PreemptionByScheduler: ..."}]
  objective    the maximised integer objective (see optimizer/objective.py for its scale)
  bound        the solver's proven upper bound on it; gap = (bound - objective) / max(1, |objective|)
  verified     true only if the independent verifier found no violation
  objective_terms, baseline, timings (seconds), model (size), warnings
  budgets      per TokenBudget: committed before, this window, new totals, caps
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class PlanInvalidError(RuntimeError):
    """A plan broke a hard rule: a bug, never a result. Such a plan is never bound."""


@dataclass(frozen=True)
class Placement:
    agent: str
    node: str


@dataclass(frozen=True)
class Unplaced:
    agent: str
    reason: str
    counterfactual: str | None = None  # the smallest one-rule change that would place it


@dataclass(frozen=True)
class Eviction:
    pod: str
    node: str
    reason: str
    agent: str | None = None  # the placed agent it makes room for
    priority: int | None = None  # the victim's


@dataclass
class Plan:
    status: str
    placements: list[Placement] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)
    evictions: list[Eviction] = field(default_factory=list)
    objective: int | None = None
    bound: int | None = None
    gap: float | None = None
    verified: bool = False
    objective_terms: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)

    def eviction_triples(self) -> list[tuple[str, str, str]]:
        """(pod, node, agent) per eviction, as optimizer.verify reads them."""
        return [(e.pod, e.node, e.agent or "") for e in self.evictions]

    def assignment(self) -> dict[str, str]:
        return {p.agent: p.node for p in self.placements}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
