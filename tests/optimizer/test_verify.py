"""The verifier rejects each kind of broken plan, and optimize never returns one."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import SolveConfig, optimize
from optimizer import solve as solve_module
from optimizer.snapshot import build_snapshot
from optimizer.verify import verify
from tests.builders import expr, inventory, node, pod, required_node_affinity, taint


@pytest.fixture
def snap():
    return build_snapshot(inventory(
        node("small", cpu="2", pods="3"),
        node("big", cpu="8"),
        node("gpu", cpu="8", taints=[taint("nvidia.com/gpu", "present")], labels={"pool": "gpu"}),
        node("cordoned", cpu="8", unschedulable=True),
        pod("running-1", "1", node_name="small"),
        pod("running-2", "100m", node_name="small"),
        pod("a", "1"),
        pod("b", "1"),
        pod("picky", "1", affinity=required_node_affinity([expr("pool", "In", "gpu")]),
            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}]),
    ))


BROKEN = [
    ("an agent that is not pending in the window", [("default/ghost", "big")], "Plan",
     "not a pending agent"),
    ("a running pod placed again", [("default/running-1", "big")], "Plan", "not a pending agent"),
    ("a node that does not exist", [("default/a", "nowhere")], "Plan", "no such node"),
    ("one agent placed twice", [("default/a", "big"), ("default/a", "big")], "Plan",
     "placed 2 times"),
    ("an untolerated taint", [("default/a", "gpu")], "TaintToleration",
     "node(s) had untolerated taint {nvidia.com/gpu: present}"),
    ("a cordoned node", [("default/a", "cordoned")], "NodeUnschedulable",
     "node(s) were unschedulable"),
    ("a node outside the required affinity", [("default/picky", "big")], "NodeAffinity",
     "node(s) didn't match Pod's node affinity/selector"),
    ("two agents that fit alone but not together", [("default/a", "small"),
                                                    ("default/b", "small")],
     "NodeResourcesFit", "Insufficient cpu"),
    ("more pods than allocatable.pods", [("default/a", "small"), ("default/picky", "small")],
     "NodeResourcesFit", "Too many pods"),
]


@pytest.mark.parametrize(("placements", "rule", "fragment"),
                         [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_verifier_rejects_each_kind_of_broken_plan(snap, placements, rule, fragment):
    violations = verify(placements, snap)
    assert any(v.rule == rule and fragment in v.message for v in violations), violations


def test_a_valid_plan_has_no_violation(snap):
    assert verify([("default/a", "big"), ("default/b", "big"), ("default/picky", "gpu")], snap) == []


def test_unplaced_accounting_catches_lost_and_double_counted_agents(snap):
    lost = verify([("default/a", "big")], snap, unplaced=["default/b"])
    assert any("lost" in v.message and v.agent == "default/picky" for v in lost)
    both = verify([("default/a", "big")], snap, unplaced=["default/a", "default/b", "default/picky"])
    assert any("both placed and unplaced" in v.message for v in both)


def test_optimize_falls_back_when_the_solver_plan_breaks_a_rule(snap, monkeypatch):
    def broken(mb, solver):
        counts = np.zeros((mb.ix.num_classes, mb.ix.num_nodes), dtype=np.int64)
        counts[:, mb.ix.node_names.index("cordoned")] = mb.ix.class_size
        return counts

    monkeypatch.setattr(solve_module, "_counts_from_solver", broken)
    plan = optimize(snap, SolveConfig(time_limit=2))
    assert plan.status == "FALLBACK" and plan.verified
    assert any("failed verification" in w for w in plan.warnings)
    assert all(p.node != "cordoned" for p in plan.placements)
    assert verify([(p.agent, p.node) for p in plan.placements], snap) == []
