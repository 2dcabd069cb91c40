"""Pod: the agent. Requests, scheduling constraints and lifecycle state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from models.meta import KubeModel, NamespacedObject
from models.quantity import QuantityField, to_units
from models.selectors import LabelSelector, NodeSelector, PreferredSchedulingTerm

TolerationOperator = Literal["Equal", "Exists"]
TaintEffectOrAll = Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"]
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
INT32_MAX = 2**31 - 1


class Toleration(KubeModel):
    key: str = ""
    operator: TolerationOperator = "Equal"
    value: str = ""
    effect: TaintEffectOrAll = ""
    toleration_seconds: int | None = None

    @field_validator("operator", mode="before")
    @classmethod
    def _empty_means_equal(cls, v: Any) -> Any:
        # ValidateTolerations and ToleratesTaint read an empty operator as Equal
        return "Equal" if v == "" else v

    @model_validator(mode="after")
    def _valid(self) -> Toleration:
        # pkg/apis/core/validation ValidateTolerations
        if not self.key and self.operator != "Exists":
            raise ValueError(
                f"operator: Invalid value: {self.operator!r}: operator must be Exists when "
                "`key` is empty, which means \"match all values and all keys\""
            )
        if self.operator == "Exists" and self.value:
            raise ValueError(
                f"operator: Invalid value: {self.value!r}: value must be empty when "
                "`operator` is 'Exists'"
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError(
                f"effect: Invalid value: {self.effect!r}: effect must be 'NoExecute' when "
                "`tolerationSeconds` is set"
            )
        return self

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        """core/v1 Toleration.ToleratesTaint."""
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == value


class ResourceRequirements(KubeModel):
    requests: dict[str, QuantityField] = Field(default_factory=dict)
    limits: dict[str, QuantityField] = Field(default_factory=dict)

    @field_validator("requests", "limits")
    @classmethod
    def _non_negative(cls, v: dict[str, QuantityField]) -> dict[str, QuantityField]:
        for name, q in v.items():
            if q.value < 0:
                raise ValueError(
                    f"{name}: Invalid value: {q.text!r}: must be greater than or equal to 0"
                )
        return v

    def effective_requests(self) -> dict[str, Fraction]:
        """Kube defaults a missing request to its limit (API defaulting), per resource."""
        out = {name: q.value for name, q in self.limits.items()}
        out.update({name: q.value for name, q in self.requests.items()})
        return out


class Container(KubeModel):
    name: str = Field(min_length=1)
    image: str | None = None
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    restart_policy: Literal["Always"] | None = None


class PodAffinityTerm(KubeModel):
    label_selector: LabelSelector | None = None
    namespaces: list[str] = Field(default_factory=list)
    namespace_selector: LabelSelector | None = None
    topology_key: str = Field(min_length=1)
    match_label_keys: list[str] = Field(default_factory=list)
    mismatch_label_keys: list[str] = Field(default_factory=list)


class WeightedPodAffinityTerm(KubeModel):
    weight: int = Field(ge=1, le=100)
    pod_affinity_term: PodAffinityTerm


class PodAffinity(KubeModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = Field(
        default_factory=list
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list
    )


class NodeAffinity(KubeModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = Field(
        default_factory=list
    )


class Affinity(KubeModel):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class TopologySpreadConstraint(KubeModel):
    max_skew: int = Field(ge=1)
    topology_key: str = Field(min_length=1)
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    label_selector: LabelSelector | None = None
    min_domains: int | None = Field(default=None, ge=1)
    node_affinity_policy: Literal["Honor", "Ignore"] | None = None
    node_taints_policy: Literal["Honor", "Ignore"] | None = None
    match_label_keys: list[str] = Field(default_factory=list)


class PodSpec(KubeModel):
    containers: list[Container] = Field(min_length=1)
    init_containers: list[Container] = Field(default_factory=list)
    overhead: dict[str, QuantityField] = Field(default_factory=dict)
    node_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    affinity: Affinity | None = None
    tolerations: list[Toleration] = Field(default_factory=list)
    priority: int | None = Field(default=None, ge=-INT32_MAX - 1, le=INT32_MAX)
    priority_class_name: str | None = None
    # a pod with a deadline is Terminating for ResourceQuota scopes
    active_deadline_seconds: int | None = None
    preemption_policy: Literal["PreemptLowerPriority", "Never"] | None = None
    scheduler_name: str | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(default_factory=list)


class PodStatus(KubeModel):
    phase: str | None = None
    nominated_node_name: str | None = None
    start_time: datetime | None = None  # lost work on eviction counts from here at the latest


class Pod(NamespacedObject):
    kind: str = "Pod"
    spec: PodSpec
    status: PodStatus = Field(default_factory=PodStatus)

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels

    @property
    def is_terminal(self) -> bool:
        return self.status.phase in TERMINAL_PHASES

    @property
    def is_bound(self) -> bool:
        """Bound to a node and not finished: it holds capacity there."""
        return bool(self.spec.node_name) and not self.is_terminal

    @property
    def is_pending(self) -> bool:
        """Not bound and not finished: an agent to place."""
        return not self.spec.node_name and not self.is_terminal

    def requests(self) -> dict[str, int]:
        """Effective requests in base units, as component-helpers' PodRequests computes them.

        max(sum of app containers + restartable init (sidecar) containers, the largest
        init container together with the sidecars started before it) + spec.overhead.
        Summed exactly, rounded up once at the end as kube's MilliValue()/Value() do.
        """
        # memoised (it is read per pod in every phase; exact Fraction sums are slow), keyed by
        # the identity of what it reads so a model_copy that replaces them recomputes
        key = (id(self.spec.containers), id(self.spec.init_containers), id(self.spec.overhead))
        memo = self.__dict__.get("_requests_memo")
        if memo is None or memo[0] != key:
            memo = (key, {name: to_units(name, v) for name, v in self.exact_requests().items()
                          if v != 0})
            self.__dict__["_requests_memo"] = memo  # not a field: eq, hash and dumps ignore it
        return dict(memo[1])

    def limits(self) -> dict[str, int]:
        """Effective limits in base units, as component-helpers' PodLimits computes them: the
        same max(containers + sidecars, init peak) over limits only, plus spec.overhead on the
        resources that have a non-zero limit. A resource no container limits is absent."""
        return {name: to_units(name, v) for name, v in self.exact_limits().items() if v != 0}

    def exact_requests(self) -> dict[str, Fraction]:
        """requests() before rounding; a resource some container names stays, even at 0."""
        reqs = self._aggregate(lambda r: r.effective_requests())
        for name, q in self.spec.overhead.items():
            reqs[name] = reqs.get(name, Fraction(0)) + q.value
        return reqs

    def exact_limits(self) -> dict[str, Fraction]:
        """limits() before rounding; a resource some container limits stays, even at 0."""
        lims = self._aggregate(lambda r: {n: q.value for n, q in r.limits.items()})
        for name, q in self.spec.overhead.items():
            if lims.get(name):
                lims[name] += q.value
        return lims

    def _aggregate(
        self, amounts: Callable[[ResourceRequirements], dict[str, Fraction]]
    ) -> dict[str, Fraction]:
        """kube's container aggregation (AggregateContainerRequests/Limits), exact."""
        total: dict[str, Fraction] = defaultdict(Fraction)
        for c in self.spec.containers:
            for name, v in amounts(c.resources).items():
                total[name] += v
        sidecars: dict[str, Fraction] = defaultdict(Fraction)
        init_peak: dict[str, Fraction] = defaultdict(Fraction)
        for c in self.spec.init_containers:
            own = amounts(c.resources)
            if c.restart_policy == "Always":
                for name, v in own.items():
                    total[name] += v
                    sidecars[name] += v
                during = dict(sidecars)
            else:
                during = dict(sidecars)
                for name, v in own.items():
                    during[name] = during.get(name, Fraction(0)) + v
            for name, v in during.items():
                init_peak[name] = max(init_peak[name], v)
        for name, v in init_peak.items():
            total[name] = max(total[name], v)
        return dict(total)
