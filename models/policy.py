"""Namespace-level and cluster-level policy objects: quotas, priorities, disruption budgets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.meta import KubeModel, KubeObject, NamespacedObject
from models.quantity import QuantityField
from models.selectors import LabelSelector

INT32_MAX = 2**31 - 1


class Namespace(KubeObject):
    kind: str = "Namespace"


class ScopedResourceSelectorRequirement(KubeModel):
    scope_name: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class ScopeSelector(KubeModel):
    match_expressions: list[ScopedResourceSelectorRequirement] = Field(default_factory=list)


class ResourceQuotaSpec(KubeModel):
    hard: dict[str, QuantityField] = Field(default_factory=dict)
    scopes: list[str] = Field(default_factory=list)
    scope_selector: ScopeSelector | None = None


class ResourceQuotaStatus(KubeModel):
    hard: dict[str, QuantityField] = Field(default_factory=dict)
    used: dict[str, QuantityField] = Field(default_factory=dict)


# the quota names the pod evaluator tracks (pkg/quota/v1/evaluator/core/pods.go podResources),
# besides hugepages-* / requests.hugepages-* and requests.<extended resource>
POD_QUOTA_RESOURCES = frozenset({
    "count/pods", "pods", "cpu", "memory", "ephemeral-storage", "requests.cpu",
    "requests.memory", "requests.ephemeral-storage", "limits.cpu", "limits.memory",
    "limits.ephemeral-storage",
})


def is_native_resource(name: str) -> bool:
    """v1helper.IsNativeResource: no domain, or a kubernetes.io domain."""
    return "/" not in name or "kubernetes.io/" in name


def is_pod_quota_resource(name: str) -> bool:
    """podEvaluator.MatchingResources for one name: a quota hard key that pods consume."""
    return (name in POD_QUOTA_RESOURCES
            or name.startswith(("hugepages-", "requests.hugepages-"))
            or (not is_native_resource(name) and name.startswith("requests.")))


class ResourceQuota(NamespacedObject):
    kind: str = "ResourceQuota"
    spec: ResourceQuotaSpec = Field(default_factory=ResourceQuotaSpec)
    status: ResourceQuotaStatus = Field(default_factory=ResourceQuotaStatus)


class PriorityClass(KubeObject):
    kind: str = "PriorityClass"
    value: int = Field(ge=-INT32_MAX - 1, le=INT32_MAX)
    global_default: bool = False
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"
    description: str = ""


class PodDisruptionBudgetSpec(KubeModel):
    selector: LabelSelector | None = None
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    unhealthy_pod_eviction_policy: str | None = None


class PodDisruptionBudgetStatus(KubeModel):
    disruptions_allowed: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0


class PodDisruptionBudget(NamespacedObject):
    kind: str = "PodDisruptionBudget"
    spec: PodDisruptionBudgetSpec = Field(default_factory=PodDisruptionBudgetSpec)
    status: PodDisruptionBudgetStatus = Field(default_factory=PodDisruptionBudgetStatus)
