"""Everything one load produced, grouped by kind, with cross-object checks done once."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.agentplace import PricingTable, TokenBudget
from models.node import Node
from models.pod import Pod
from models.podgroup import PodGroup
from models.policy import Namespace, PodDisruptionBudget, PriorityClass, ResourceQuota


@dataclass
class Inventory:
    nodes: list[Node] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    quotas: list[ResourceQuota] = field(default_factory=list)
    priority_classes: list[PriorityClass] = field(default_factory=list)
    pdbs: list[PodDisruptionBudget] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    pricing: list[PricingTable] = field(default_factory=list)
    token_budgets: list[TokenBudget] = field(default_factory=list)
    pod_groups: list[PodGroup] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def running(self) -> list[Pod]:
        return [p for p in self.pods if p.is_bound]

    @property
    def pending(self) -> list[Pod]:
        return [p for p in self.pods if p.is_pending]

    def extend(self, other: Inventory) -> None:
        self.nodes += other.nodes
        self.pods += other.pods
        self.quotas += other.quotas
        self.priority_classes += other.priority_classes
        self.pdbs += other.pdbs
        self.namespaces += other.namespaces
        self.pricing += other.pricing
        self.token_budgets += other.token_budgets
        self.pod_groups += other.pod_groups
        self.warnings += other.warnings
