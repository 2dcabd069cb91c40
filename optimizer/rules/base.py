"""The small interface every rule implements, after kube-scheduler's framework plugins.

A rule knows four things about itself: which (agent class, node) pairs it rules out before the
solver sees them (vectorised), what it adds to the CP-SAT model, how to check a finished plan
with plain code, and how to say in kube's words why a node was rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

import numpy as np

from models import Node, Pod
from optimizer.index import Index
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.model import ModelBuilder


@dataclass(frozen=True)
class Reason:
    """A node rejected an agent. `unresolvable` mirrors UnschedulableAndUnresolvable:
    evicting pods from that node would not help."""

    plugin: str
    message: str
    unresolvable: bool = False


@dataclass(frozen=True)
class Violation:
    """A hard rule a plan breaks; a plan with any is never returned as valid."""

    rule: str
    agent: str
    node: str | None
    message: str

    def __str__(self) -> str:
        where = f" on node {self.node}" if self.node else ""
        return f"{self.rule}: {self.agent}{where}: {self.message}"


@dataclass(frozen=True)
class ClusterView:
    """The whole cluster a pod is filtered against, for rules that count pods beyond one node
    (PodTopologySpread): every node, and every bound pod (running plus earlier placements) with
    the name of its node."""

    nodes: tuple[Node, ...] = ()
    pods: tuple[tuple[Pod, str], ...] = ()
    # namespace -> labels, for namespaceSelector (InterPodAffinity); a namespace not listed
    # has only kubernetes.io/metadata.name=<name>
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass
class NodeUsage:
    """What is already requested on one node (running pods plus earlier placements)."""

    requested: dict[str, int] = field(default_factory=dict)
    pods: int = 0
    cluster: ClusterView | None = None  # shared by every node's usage; None: unknown

    def add(self, requests: Mapping[str, int]) -> None:
        for r, v in requests.items():
            self.requested[r] = self.requested.get(r, 0) + v
        self.pods += 1


Assignment = Mapping[str, str]
"""agent ref (`ns/name`) -> node name: the plan as the verifier reads it."""


@runtime_checkable
class Rule(Protocol):
    name: ClassVar[str]

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """bool[cls, node]: False where the rule alone already rules the pair out."""
        ...

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        """Add the rule's constraints over candidate pairs only."""
        ...

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        """Re-check a finished plan from the raw objects, sharing nothing with encode."""
        ...

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        """kube's reasons for this node rejecting this pod, empty when it fits."""
        ...


class StaticRule:
    """A rule that depends only on (agent, node): nothing to encode, verify = explain per pair."""

    name: ClassVar[str] = ""

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        return None

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        raise NotImplementedError

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        pods = {p.ref: p for p in snap.pending}
        nodes = {n.name: n for n in snap.nodes}
        out = []
        for agent, node_name in assignment.items():
            pod, node = pods.get(agent), nodes.get(node_name)
            if pod is None or node is None:
                continue  # structural problems are the verifier's own check
            for reason in self.explain(pod, node, NodeUsage()):
                out.append(Violation(self.name, agent, node_name, reason.message))
        return out
