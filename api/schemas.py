"""Request and response bodies of the HTTP service, with the examples `/docs` shows.

A request carries Kubernetes objects exactly as `kubectl get -o json` prints them (a `List`, or
an array of objects) and the same options as `agentplace plan`; the response is the CLI's plan
(`agentplace plan -o json`, see optimizer/plan.py) plus the service's ids.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.planning import DEFAULT_BALANCE, PlanOptions


class Options(BaseModel):
    """`agentplace plan`'s options; `time_limit` and `workers` are capped by the server."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # Python's json reads NaN

    time_limit: float = Field(10.0, gt=0, description="Solver time limit, seconds.")
    workers: int = Field(2, ge=1, description="CP-SAT search workers.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="CP-SAT random seed (int32).")
    strategy: Literal["LeastAllocated", "MostAllocated"] = "LeastAllocated"
    profile: str | None = Field(None, description="Objective profile: balanced, cost, pack.")
    weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Per-term weight overrides (balance, pack, cost, soft, preemption).")
    balance: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: dict(DEFAULT_BALANCE),
                                    description="Resources the balance term counts, with integer weights.")
    term_gap: float = Field(0.02, ge=0,
                            description="Stop when proven within this fraction of a term's swing.")
    term_bounds: bool = False
    preemption: bool = True
    pdb: Literal["hard", "best-effort"] = "hard"

    def to_plan_options(self) -> PlanOptions:
        return PlanOptions(**self.model_dump())


Objects = list[Any] | dict[str, Any]

_NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
         "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"}}}
_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent-1", "namespace": "team-a"},
        "spec": {"containers": [{"name": "agent", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}}
EXAMPLE = {"cluster": {"apiVersion": "v1", "kind": "List", "items": [_NODE]},
           "pending": [_POD], "options": {"time_limit": 5, "profile": "balanced"}}


class OptimizeRequest(BaseModel):
    """The window: `cluster` (nodes, running pods, quotas, priority classes, PDBs, pricing
    tables, token budgets, pod groups) and `pending` (the agents to place). Either may be a
    `kind: List` (or `PodList`, `NodeList`) or an array; a pod is pending when it has no
    `spec.nodeName`, wherever it is given, as in kube."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    cluster: Objects = Field(default_factory=list)
    pending: Objects = Field(default_factory=list)
    options: Options = Field(default_factory=Options)


class WhatIfRequest(BaseModel):
    """A what-if: the window as in /v1/optimize plus `scenario`, the same document as
    `agentplace whatif --scenario FILE` (see the README's What-if section)."""

    model_config = ConfigDict(extra="forbid")

    cluster: Objects = Field(default_factory=list)
    pending: Objects = Field(default_factory=list)
    options: Options = Field(default_factory=Options)
    scenario: dict[str, Any] = Field(description="changes: drain/remove/add nodes, quotas, "
                                                 "budgets, priorities, bursts of agents")
    include_plans: bool = Field(False, description="Also return both full plans.")


class FieldError(BaseModel):
    object: str = Field(examples=["Pod team-a/agent-7"])
    field: str = Field(examples=["spec.containers[0].resources.requests.cpu"])
    reason: str = Field(examples=["'12x' is not a quantity"])


class ErrorResponse(BaseModel):
    """422: every error of the request, each naming the object, the field and why (the CLI's
    messages); `message` is the CLI's text."""

    detail: list[FieldError]
    message: str


class BindingOut(BaseModel):
    id: int
    plan_id: str
    agent: str
    node: str
    state: str = Field(description="pending, issuing, bound, conflict or failed")
    attempts: int
    error: str | None


class EvictionOut(BaseModel):
    """One eviction the binder issued (or tried to) for a plan."""

    id: int
    plan_id: str
    pod: str
    node: str
    agent: str | None = Field(description="the agent the eviction makes room for")
    state: str = Field(description="pending, issuing, evicted or failed")
    attempts: int
    error: str | None


class PlanResponse(BaseModel):
    """`agentplace plan -o json`'s object plus `plan_id`, `request_id`, `dry_run` and, with
    `?bind=true`, the plan's `bindings`."""

    model_config = ConfigDict(extra="allow")

    plan_id: str
    request_id: str
    dry_run: bool
    status: str = Field(examples=["OPTIMAL"])
    placements: list[dict[str, str]] = Field(examples=[[{"agent": "team-a/agent-1", "node": "node-1"}]])
    unplaced: list[dict[str, Any]]
    evictions: list[dict[str, Any]]
    objective: int | None
    bound: int | None
    gap: float | None
    verified: bool
    objective_terms: dict[str, Any]
    bindings: list[BindingOut] | None = None
    evictions_issued: list[EvictionOut] | None = None


class StoredPlanResponse(BaseModel):
    plan_id: str
    request_id: str
    created_at: str
    dry_run: bool
    plan: dict[str, Any]
    bindings: list[BindingOut]
    evictions_issued: list[EvictionOut] = []
