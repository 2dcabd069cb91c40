"""NodeAffinity: spec.nodeSelector AND required node affinity (terms ORed, expressions ANDed)."""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np

from models import Node, Pod
from models.selectors import (
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    parse_int64,
)
from optimizer.index import Index, LabelColumn
from optimizer.rules.base import NodeUsage, Reason, StaticRule

REASON = "node(s) didn't match Pod's node affinity/selector"
# nodes left out of NodeAffinity's PreFilterResult (matchFields metadata.name In) never reach
# Filter: the framework gives them this status instead (schedule_one.go, SetAbsentNodesStatus)
PREFILTER_REASON = "node(s) didn't satisfy plugin(s) [NodeAffinity]"
CONFLICT_REASON = "pod affinity terms conflict"  # PreFilter: every term pins disjoint names
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def is_label_value(text: str) -> bool:
    """validation.IsValidLabelValue: at most 63 characters, alphanumeric at both ends."""
    return len(text) <= 63 and LABEL_VALUE.fullmatch(text) is not None


def unparsable(term: NodeSelectorTerm) -> bool:
    """labels.NewRequirement rejects any value that is not a valid label value (a negative Gt
    bound included); the scheduler then matches the whole term against no node. The API server
    admitted such values until 1.33, so they can still reach a window."""
    return any(not is_label_value(v) for r in term.match_expressions for v in r.values)


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
    """An empty or unparsable term matches no node (component-helpers nodeaffinity)."""
    if (not term.match_expressions and not term.match_fields) or unparsable(term):
        return False
    return all(requirement_matches(r, node.labels.get(r.key)) for r in term.match_expressions) and \
        all(requirement_matches(r, node.name) for r in term.match_fields)


def _required(pod: Pod) -> NodeSelector | None:
    aff = pod.spec.affinity.node_affinity if pod.spec.affinity else None
    return aff.required_during_scheduling_ignored_during_execution if aff else None


def prefilter_node_names(pod: Pod) -> set[str] | None:
    """NodeAffinity.PreFilter's node set: the union over terms of the names each term pins with
    matchFields metadata.name In (intersected within a term); None when some term pins none."""
    required = _required(pod)
    if required is None or not required.node_selector_terms:
        return None
    names: set[str] = set()
    for term in required.node_selector_terms:
        pinned: set[str] | None = None
        for r in term.match_fields:
            if r.key == "metadata.name" and r.operator == "In":
                pinned = set(r.values) if pinned is None else pinned & set(r.values)
        if pinned is None:
            return None
        names |= pinned
    return names


def pod_matches_node(pod: Pod, node: Node) -> bool:
    if any(node.labels.get(k) != v for k, v in pod.spec.node_selector.items()):
        return False
    required = _required(pod)
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
    if (not term.match_expressions and not term.match_fields) or unparsable(term):
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


def preferred_scores(ix: Index) -> tuple[np.ndarray, np.ndarray]:
    """(int64[cls, node] summed weights of matched preferred terms, int64[cls] their maximum):
    NodeAffinity's Score before normalisation. Loops over classes and terms, not nodes."""
    score = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    best = np.zeros(ix.num_classes, dtype=np.int64)
    for c, cls in enumerate(ix.classes):
        aff = cls.pod.spec.affinity.node_affinity if cls.pod.spec.affinity else None
        for pref in aff.preferred_during_scheduling_ignored_during_execution if aff else []:
            score[c] += pref.weight * _term_mask(pref.preference, ix)
            best[c] += pref.weight
    return score, best


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

    def pre_filter(self, pod: Pod) -> tuple[set[str] | None, str | None]:
        """NodeAffinity.PreFilter: (the node names matchFields pins, None for every node; the
        UnschedulableAndUnresolvable message when the terms pin no name at all)."""
        names = prefilter_node_names(pod)
        if names is not None and not names:
            return None, CONFLICT_REASON
        return names, None

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        # a node PreFilter left out, or every node when PreFilter failed, as kube reports it
        names = prefilter_node_names(pod)
        if names is not None and node.name not in names:
            return [Reason(self.name, PREFILTER_REASON if names else CONFLICT_REASON,
                           unresolvable=True)]
        if pod_matches_node(pod, node):
            return []
        return [Reason(self.name, REASON, unresolvable=True)]
