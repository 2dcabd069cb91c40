"""NodeUnschedulable: a cordoned node takes only pods tolerating node.kubernetes.io/unschedulable."""

from __future__ import annotations

import pytest

from tests.builders import node, pod
from tests.optimizer.rules.conftest import case, check_rule, rule_named

RULE = rule_named("NodeUnschedulable")
CORDONED = "node(s) were unschedulable"
KEY = "node.kubernetes.io/unschedulable"

CASES = [
    case("a schedulable node takes a pod without tolerations",
         node("n"), pod("agent")),
    case("a cordoned node blocks a pod without tolerations",
         node("n", unschedulable=True), pod("agent"), want=CORDONED),
    case("a toleration of the unschedulable taint with effect NoSchedule passes",
         node("n", unschedulable=True),
         pod("agent", tolerations=[{"key": KEY, "operator": "Exists", "effect": "NoSchedule"}])),
    case("a toleration of the unschedulable key with any effect passes",
         node("n", unschedulable=True),
         pod("agent", tolerations=[{"key": KEY, "operator": "Exists"}])),
    case("an Equal toleration of the unschedulable key with no value passes",
         node("n", unschedulable=True),
         pod("agent", tolerations=[{"key": KEY, "operator": "Equal", "effect": "NoSchedule"}])),
    case("an Equal toleration of the unschedulable key with a value does not pass",
         node("n", unschedulable=True),
         pod("agent", tolerations=[{"key": KEY, "operator": "Equal", "value": "true"}]),
         want=CORDONED),
    case("a toleration of the unschedulable key for NoExecute only does not pass",
         node("n", unschedulable=True),
         pod("agent", tolerations=[{"key": KEY, "operator": "Exists", "effect": "NoExecute"}]),
         want=CORDONED),
    case("an Exists toleration with no key tolerates the cordon",
         node("n", unschedulable=True), pod("agent", tolerations=[{"operator": "Exists"}])),
    case("an Exists toleration of NoSchedule with no key tolerates the cordon",
         node("n", unschedulable=True),
         pod("agent", tolerations=[{"operator": "Exists", "effect": "NoSchedule"}])),
    case("a toleration of another key does not tolerate the cordon",
         node("n", unschedulable=True),
         pod("agent", tolerations=[{"key": "dedicated", "operator": "Exists"}]),
         want=CORDONED),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_node_unschedulable(objects, want):
    check_rule(RULE, objects, want)
