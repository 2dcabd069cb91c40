"""TaintToleration: NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule is soft."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from models import Node, Pod, Toleration
from optimizer.index import Index
from optimizer.rules.base import NodeUsage, Reason, StaticRule

HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def untolerated_taint(
    tolerations: list[Toleration], node: Node, effects: frozenset[str] = HARD_EFFECTS
) -> tuple[str, str, str] | None:
    """v1helper.FindMatchingUntoleratedTaint: the first taint of `effects` no toleration covers."""
    for t in node.spec.taints:
        if t.effect not in effects:
            continue
        if not any(tol.tolerates(t.key, t.value, t.effect) for tol in tolerations):
            return (t.key, t.value, t.effect)
    return None


def tolerated_matrix(ix: Index) -> np.ndarray:
    """bool[cls, taint]: loops over (class, distinct taint), never over nodes."""
    out = np.zeros((ix.num_classes, len(ix.taints)), dtype=bool)
    for c, cls in enumerate(ix.classes):
        tols = cls.pod.spec.tolerations
        for t, (key, value, effect) in enumerate(ix.taints):
            out[c, t] = any(tol.tolerates(key, value, effect) for tol in tols)
    return out


def prefer_no_schedule_counts(ix: Index) -> np.ndarray:
    """int64[cls, node]: untolerated PreferNoSchedule taints, TaintToleration's Score input."""
    soft = np.array([eff == "PreferNoSchedule" for (_, _, eff) in ix.taints], dtype=bool)
    if not soft.any():
        return np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    untolerated = (~tolerated_matrix(ix) & soft).astype(np.int64)  # [cls, taint]
    return untolerated @ ix.node_taints.T.astype(np.int64)


class TaintToleration(StaticRule):
    name: ClassVar[str] = "TaintToleration"

    def prefilter(self, ix: Index) -> np.ndarray | None:
        if not ix.taints:
            return None
        hard = np.array([eff in HARD_EFFECTS for (_, _, eff) in ix.taints], dtype=bool)
        blocking = (~tolerated_matrix(ix) & hard).astype(np.int32)  # [cls, taint]
        hits = blocking @ ix.node_taints.T.astype(np.int32)  # [cls, node]
        return hits == 0

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        taint = untolerated_taint(pod.spec.tolerations, node)
        if taint is None:
            return []
        key, value, _ = taint
        return [Reason(self.name, f"node(s) had untolerated taint {{{key}: {value}}}",
                       unresolvable=True)]
