"""NodeUnschedulable: a cordoned node takes only pods tolerating its unschedulable taint."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from models import Node, Pod
from optimizer.index import Index
from optimizer.rules.base import NodeUsage, Reason, StaticRule

UNSCHEDULABLE_TAINT = ("node.kubernetes.io/unschedulable", "", "NoSchedule")


def tolerates_cordon(pod: Pod) -> bool:
    key, value, effect = UNSCHEDULABLE_TAINT
    return any(t.tolerates(key, value, effect) for t in pod.spec.tolerations)


class NodeUnschedulable(StaticRule):
    name: ClassVar[str] = "NodeUnschedulable"

    def prefilter(self, ix: Index) -> np.ndarray | None:
        if not ix.unschedulable.any():
            return None
        ok_class = np.array([tolerates_cordon(c.pod) for c in ix.classes], dtype=bool)
        return ok_class[:, None] | ~ix.unschedulable[None, :]

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        if node.spec.unschedulable and not tolerates_cordon(pod):
            return [Reason(self.name, "node(s) were unschedulable", unresolvable=True)]
        return []
