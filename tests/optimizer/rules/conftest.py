"""One check shared by the rule table tests: four readings of a (pod, node) pair must agree.

A case is a one-node inventory (plus any running pods) and exactly one pending agent, and the
kube reason(s) the node rejects it with, or None when it fits. The readings:

  (a) the rule's vectorised prefilter over the Index (and the full prefilter of solve.py),
  (b) the rule's scalar explain, with kube's exact words (and explain.node_reasons),
  (c) a tiny solve: placed iff it fits, else the plan's unplaced reason is kube's FitError line,
  (d) the rule's verify (and the whole verifier) on the agent forced onto the node.

Cases are built so that only the rule under test can reject the pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from optimizer import SolveConfig, optimize
from optimizer.explain import cluster_usage, node_reasons
from optimizer.index import Index
from optimizer.preemption import NO_VICTIMS, NOT_HELPFUL
from optimizer.rules import RULES, NodeUsage, Rule
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import inventory

Want = str | tuple[str, ...] | None
SOLVE = SolveConfig(time_limit=5.0, workers=1)


def case(id: str, *objects: dict[str, Any], want: Want = None) -> Any:
    """One table row: kubectl-shaped objects (one node, one pending pod) and kube's reason."""
    return pytest.param(list(objects), want, id=id)


def rule_named(name: str) -> Rule:
    return next(r for r in RULES if r.name == name)


def fit_error(num_nodes: int, reasons: tuple[str, ...]) -> str:
    """kube's FitError for one rejecting node: each reason counted once, sorted."""
    return f"0/{num_nodes} nodes are available: " + ", ".join(
        sorted(f"1 {r}" for r in reasons)) + "."


def postfilter(num_nodes: int, unresolvable: bool) -> str:
    """kube's PostFilter part for nodes all rejected alike, with no lower-priority pods."""
    what = NOT_HELPFUL if unresolvable else NO_VICTIMS + "."
    return f"preemption: 0/{num_nodes} nodes are available: {num_nodes} {what}."


def check_rule(rule: Rule, objects: list[dict[str, Any]], want: Want,
               message: str | None = None) -> None:
    """`message`: the plan's unplaced reason when it is not the usual one-node FitError."""
    reasons = () if want is None else (want,) if isinstance(want, str) else tuple(want)
    fits = not reasons

    inv = inventory(*objects)
    snap = build_snapshot(inv)
    assert len(snap.nodes) == 1, "a case has exactly one node"
    assert len(snap.pending) == 1, "a case has exactly one pending agent"
    pod, node = snap.pending[0], snap.nodes[0]

    # (a) vectorised
    ix = Index(snap)
    c = int(ix.class_of[0])
    mask = rule.prefilter(ix)
    vectorised = True if mask is None else bool(mask[c, 0])
    assert vectorised == fits, f"{rule.name}.prefilter says fits={vectorised}"
    assert bool(prefilter(ix)[1][c, 0]) == fits, "the full prefilter disagrees"

    # (b) scalar, kube's words
    usage = cluster_usage(snap)[node.name]
    got = rule.explain(pod, node, usage)
    assert tuple(r.message for r in got) == reasons
    assert all(r.plugin == rule.name for r in got)
    assert tuple(r.message for r in node_reasons(pod, node, usage)) == reasons

    # (c) a tiny solve
    plan = optimize(inv, SOLVE)
    assert plan.verified
    if fits:
        assert plan.assignment() == {pod.ref: node.name}
        assert plan.unplaced == []
    else:
        assert plan.placements == []
        want_message = (message or fit_error(1, reasons)) + " " + postfilter(
            1, any(r.unresolvable for r in got))
        assert [(u.agent, u.reason) for u in plan.unplaced] == [(pod.ref, want_message)]

    # (d) verify on the agent forced onto the node
    violations = rule.verify({pod.ref: node.name}, snap)
    assert len(violations) == len(reasons), violations
    for v in violations:
        assert (v.rule, v.agent, v.node) == (rule.name, pod.ref, node.name)
    for r in reasons:
        assert any(v.message == r or v.message.startswith(f"{r}: ") for v in violations), (
            r, violations)
    everything = verify([(pod.ref, node.name)], snap)
    assert sorted(map(str, everything)) == sorted(map(str, violations))


def check_admission_rule(rule: Any, objects: list[dict[str, Any]], reason: str | None) -> list[Any]:
    """The same agreement for a rule that rejects an agent outright (admission: quota, gangs):
    the prefilter row is all or nothing, `admission_reason` gives `reason`, no node ever reports
    it, a tiny solve places iff admitted with `reason` as the unplaced message, and the rule's
    verify is all the verifier finds. Returns the rule's violations for rule-specific checks."""
    inv = inventory(*objects)
    snap = build_snapshot(inv)
    assert len(snap.nodes) == 1 and len(snap.pending) == 1
    pod, node = snap.pending[0], snap.nodes[0]
    admitted = reason is None

    # (a) the prefilter row: every node or none
    ix = Index(snap)
    mask = rule.prefilter(ix)
    row = np.ones(ix.num_nodes, dtype=bool) if mask is None else mask[int(ix.class_of[0])]
    assert bool(row.all()) == admitted and bool(row.any()) == admitted
    assert bool(prefilter(ix)[1][int(ix.class_of[0]), 0]) == admitted

    # (b) the admission message; no node reason
    assert rule.admission_reason(pod, snap) == reason
    assert rule.explain(pod, node, NodeUsage()) == []

    # (c) a tiny solve
    plan = optimize(inv, SOLVE)
    assert plan.verified
    if admitted:
        assert plan.assignment() == {pod.ref: node.name}
    else:
        assert plan.placements == []
        assert [(u.agent, u.reason) for u in plan.unplaced] == [(pod.ref, reason)]

    # (d) the rule's verify on the agent forced onto the node is all the verifier finds
    violations = rule.verify({pod.ref: node.name}, snap)
    assert all(v.rule == rule.name and v.agent == pod.ref for v in violations)
    everything = verify([(pod.ref, node.name)], snap)
    assert sorted(map(str, everything)) == sorted(map(str, violations))
    return violations
