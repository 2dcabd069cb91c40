"""TaintToleration, after kube's tainttoleration/taint_toleration_test.go: one node, one agent."""

from __future__ import annotations

import pytest

from tests.builders import node, pod, taint
from tests.optimizer.rules.conftest import case, check_rule, rule_named

RULE = rule_named("TaintToleration")


def untolerated(key: str, value: str = "") -> str:
    return f"node(s) had untolerated taint {{{key}: {value}}}"


def tol(key: str = "", operator: str | None = None, value: str = "",
        effect: str = "") -> dict[str, str]:
    out = {"key": key, "value": value, "effect": effect}
    if operator is not None:
        out["operator"] = operator
    return {k: v for k, v in out.items() if v}


CASES = [
    case("a node without taints takes a pod without tolerations",
         node("n"), pod("agent")),
    case("a NoSchedule taint blocks a pod without tolerations",
         node("n", taints=[taint("dedicated", "gpu", "NoSchedule")]), pod("agent"),
         want=untolerated("dedicated", "gpu")),
    case("a NoExecute taint blocks a pod without tolerations",
         node("n", taints=[taint("dedicated", "gpu", "NoExecute")]), pod("agent"),
         want=untolerated("dedicated", "gpu")),
    case("a PreferNoSchedule taint does not block: it is only a preference",
         node("n", taints=[taint("dedicated", "gpu", "PreferNoSchedule")]), pod("agent")),
    case("a taint with no value is reported with an empty value",
         node("n", taints=[taint("spot")]), pod("agent"),
         want=untolerated("spot", "")),
    case("an Exists toleration with no key tolerates every taint",
         node("n", taints=[taint("a", "1"), taint("b", "2", "NoExecute")]),
         pod("agent", tolerations=[tol(operator="Exists")])),
    case("an Exists toleration with a key tolerates any value of that key",
         node("n", taints=[taint("dedicated", "anything-at-all")]),
         pod("agent", tolerations=[tol("dedicated", "Exists")])),
    case("an Exists toleration with a key does not tolerate another key",
         node("n", taints=[taint("other", "x")]),
         pod("agent", tolerations=[tol("dedicated", "Exists")]),
         want=untolerated("other", "x")),
    case("an Equal toleration with the taint's value tolerates it",
         node("n", taints=[taint("dedicated", "gpu")]),
         pod("agent", tolerations=[tol("dedicated", "Equal", "gpu")])),
    case("an Equal toleration with another value does not tolerate",
         node("n", taints=[taint("dedicated", "gpu")]),
         pod("agent", tolerations=[tol("dedicated", "Equal", "cpu")]),
         want=untolerated("dedicated", "gpu")),
    case("an Equal toleration with no value tolerates only a taint with no value",
         node("n", taints=[taint("dedicated", "gpu")]),
         pod("agent", tolerations=[tol("dedicated", "Equal")]),
         want=untolerated("dedicated", "gpu")),
    case("an Equal toleration with no value tolerates a taint with no value",
         node("n", taints=[taint("spot")]),
         pod("agent", tolerations=[tol("spot", "Equal")])),
    case("an omitted operator means Equal: the value must match",
         node("n", taints=[taint("dedicated", "gpu")]),
         pod("agent", tolerations=[tol("dedicated", value="gpu")])),
    case("an omitted operator means Equal: another value does not tolerate",
         node("n", taints=[taint("dedicated", "gpu")]),
         pod("agent", tolerations=[tol("dedicated", value="cpu")]),
         want=untolerated("dedicated", "gpu")),
    case("an explicit empty operator means Equal: the value must match",
         node("n", taints=[taint("dedicated", "gpu")]),
         pod("agent", tolerations=[{"key": "dedicated", "operator": "", "value": "gpu"}])),
    case("an explicit empty operator means Equal: another value does not tolerate",
         node("n", taints=[taint("dedicated", "gpu")]),
         pod("agent", tolerations=[{"key": "dedicated", "operator": "", "value": "cpu"}]),
         want=untolerated("dedicated", "gpu")),
    case("a toleration with no effect matches a NoSchedule taint",
         node("n", taints=[taint("dedicated", "gpu", "NoSchedule")]),
         pod("agent", tolerations=[tol("dedicated", "Equal", "gpu")])),
    case("a toleration with no effect matches a NoExecute taint",
         node("n", taints=[taint("dedicated", "gpu", "NoExecute")]),
         pod("agent", tolerations=[tol("dedicated", "Exists")])),
    case("a NoSchedule toleration does not tolerate a NoExecute taint",
         node("n", taints=[taint("dedicated", "gpu", "NoExecute")]),
         pod("agent", tolerations=[tol("dedicated", "Exists", effect="NoSchedule")]),
         want=untolerated("dedicated", "gpu")),
    case("a NoExecute toleration does not tolerate a NoSchedule taint",
         node("n", taints=[taint("dedicated", "gpu", "NoSchedule")]),
         pod("agent", tolerations=[tol("dedicated", "Equal", "gpu", effect="NoExecute")]),
         want=untolerated("dedicated", "gpu")),
    case("a matching-effect toleration tolerates",
         node("n", taints=[taint("dedicated", "gpu", "NoExecute")]),
         pod("agent", tolerations=[tol("dedicated", "Equal", "gpu", effect="NoExecute")])),
    case("an Exists toleration with only an effect tolerates every taint of that effect",
         node("n", taints=[taint("a", "1"), taint("b", "2")]),
         pod("agent", tolerations=[tol(operator="Exists", effect="NoSchedule")])),
    case("an Exists toleration with only an effect leaves taints of other effects",
         node("n", taints=[taint("a", "1"), taint("b", "2", "NoExecute")]),
         pod("agent", tolerations=[tol(operator="Exists", effect="NoSchedule")]),
         want=untolerated("b", "2")),
    case("of several untolerated taints the first in node order is reported",
         node("n", taints=[taint("zeta", "1"), taint("alpha", "2"), taint("mid", "3")]),
         pod("agent"),
         want=untolerated("zeta", "1")),
    case("a tolerated first taint lets the next untolerated one be reported",
         node("n", taints=[taint("zeta", "1"), taint("alpha", "2", "NoExecute")]),
         pod("agent", tolerations=[tol("zeta", "Exists")]),
         want=untolerated("alpha", "2")),
    case("a leading PreferNoSchedule taint is skipped when reporting",
         node("n", taints=[taint("soft", "1", "PreferNoSchedule"), taint("hard", "2")]),
         pod("agent"),
         want=untolerated("hard", "2")),
    case("every hard taint tolerated by its own toleration fits",
         node("n", taints=[taint("a", "1"), taint("b", "2", "NoExecute"),
                           taint("c", "3", "PreferNoSchedule")]),
         pod("agent", tolerations=[tol("a", "Equal", "1"), tol("b", "Exists")])),
    case("the same key with two effects needs both tolerated",
         node("n", taints=[taint("k", "v", "NoSchedule"), taint("k", "v", "NoExecute")]),
         pod("agent", tolerations=[tol("k", "Equal", "v", effect="NoSchedule")]),
         want=untolerated("k", "v")),
    case("a toleration with tolerationSeconds still tolerates a NoExecute taint",
         node("n", taints=[taint("k", "v", "NoExecute")]),
         pod("agent", tolerations=[{"key": "k", "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 30}])),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_taint_toleration(objects, want):
    check_rule(RULE, objects, want)

