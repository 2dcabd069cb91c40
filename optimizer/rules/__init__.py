"""The rule registry, in kube-scheduler's default Filter order (it decides which reason a node
reports when several rules reject it: the first failing plugin wins)."""

from __future__ import annotations

from optimizer.rules.base import NodeUsage, Reason, Rule, StaticRule, Violation
from optimizer.rules.colocation import ColocationLimit
from optimizer.rules.gangs import GangScheduling
from optimizer.rules.gpu_share import GpuShare
from optimizer.rules.node_affinity import NodeAffinity
from optimizer.rules.node_unschedulable import NodeUnschedulable
from optimizer.rules.pod_affinity import InterPodAffinity
from optimizer.rules.quotas import ResourceQuota
from optimizer.rules.resources import NodeResourcesFit
from optimizer.rules.taints import TaintToleration
from optimizer.rules.token_budget import TokenBudgetRule
from optimizer.rules.topology_spread import PodTopologySpread

RULES: tuple[Rule, ...] = (
    NodeUnschedulable(),
    TaintToleration(),
    NodeAffinity(),
    NodeResourcesFit(),
    PodTopologySpread(),
    InterPodAffinity(),
    ColocationLimit(),  # agentplace's extension: at most k of group B next to group A
    GangScheduling(),  # Coscheduling: all-or-nothing groups, decided per window
    GpuShare(),  # per-card GPUs (whole and shares), like GPU-sharing extenders: after Filters
    ResourceQuota(),  # admission, not a Filter: last
    TokenBudgetRule(),  # admission too: agentplace's own
)

__all__ = ["RULES", "NodeUsage", "Reason", "Rule", "StaticRule", "Violation"]
