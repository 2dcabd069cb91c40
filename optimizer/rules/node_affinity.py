"""NodeAffinity: spec.nodeSelector AND required node affinity (terms ORed, expressions ANDed)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from models import Node, Pod
from models.selectors import NodeSelectorRequirement, NodeSelectorTerm, parse_int64
from optimizer.index import Index, LabelColumn
from optimizer.rules.base import NodeUsage, Reason, StaticRule

REASON = "node(s) didn't match Pod's node affinity/selector"


# --- scalar reading (verify, explain) -------------------------------------------------------


def requirement_matches(req: NodeSelectorRequirement, value: str | None) -> bool:
    """labels.Requirement.Matches for one node's value of req.key (None when absent)."""
    op = req.operator
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if value is None:
        return False
    have, want = parse_int64(value), parse_int64(req.values[0])
    if have is None or want is None:
        return False
    return have > want if op == "Gt" else have < want


def term_matches(term: NodeSelectorTerm, node: Node) -> bool:
    """An empty term matches no node (component-helpers nodeaffinity)."""
    if not term.match_expressions and not term.match_fields:
        return False
    return all(requirement_matches(r, node.labels.get(r.key)) for r in term.match_expressions) and \
        all(requirement_matches(r, node.name) for r in term.match_fields)


def pod_matches_node(pod: Pod, node: Node) -> bool:
    if any(node.labels.get(k) != v for k, v in pod.spec.node_selector.items()):
        return False
    aff = pod.spec.affinity.node_affinity if pod.spec.affinity else None
    required = aff.required_during_scheduling_ignored_during_execution if aff else None
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.node_selector_terms)


# --- vectorised reading (prefilter) ---------------------------------------------------------

def _requirement_mask(req: NodeSelectorRequirement, col: LabelColumn) -> np.ndarray:
    op = req.operator
    if op == "In":
        return col.values_mask(req.values)
    if op == "NotIn":
        return ~col.values_mask(req.values)
    if op == "Exists":
        return col.present
    if op == "DoesNotExist":
        return ~col.present
    want = parse_int64(req.values[0])
    if want is None:
        return np.zeros_like(col.present)
    cmp = col.ints > want if op == "Gt" else col.ints < want
    return col.is_int & cmp


def _term_mask(term: NodeSelectorTerm, ix: Index) -> np.ndarray:
    mask = np.ones(ix.num_nodes, dtype=bool)
    if not term.match_expressions and not term.match_fields:
        return ~mask
    for r in term.match_expressions:
        mask &= _requirement_mask(r, ix.label(r.key))
    for r in term.match_fields:
        mask &= _requirement_mask(r, ix.names)
    return mask


def class_mask(pod: Pod, ix: Index) -> np.ndarray:
    mask = np.ones(ix.num_nodes, dtype=bool)
    for k, v in pod.spec.node_selector.items():
        mask &= ix.label(k).values_mask([v])
    aff = pod.spec.affinity.node_affinity if pod.spec.affinity else None
    required = aff.required_during_scheduling_ignored_during_execution if aff else None
    if required is not None:
        any_term = np.zeros(ix.num_nodes, dtype=bool)
        for term in required.node_selector_terms:
            any_term |= _term_mask(term, ix)
        mask &= any_term
    return mask


class NodeAffinity(StaticRule):
    name: ClassVar[str] = "NodeAffinity"

    def prefilter(self, ix: Index) -> np.ndarray | None:
        rows = []
        constrained = False
        for cls in ix.classes:
            spec = cls.pod.spec
            has = bool(spec.node_selector) or bool(
                spec.affinity and spec.affinity.node_affinity
                and spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
            )
            constrained |= has
            rows.append(class_mask(cls.pod, ix) if has else np.ones(ix.num_nodes, dtype=bool))
        if not constrained:
            return None
        return np.vstack(rows)

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        if pod_matches_node(pod, node):
            return []
        return [Reason(self.name, REASON, unresolvable=True)]
