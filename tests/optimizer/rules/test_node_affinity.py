"""NodeAffinity: spec.nodeSelector AND required node affinity (terms ORed, expressions ANDed)."""

from __future__ import annotations

from typing import Any

import pytest

from optimizer import optimize
from tests.builders import expr, inventory, node, pod, required_node_affinity
from tests.optimizer.rules.conftest import SOLVE, case, check_rule, rule_named

RULE = rule_named("NodeAffinity")
MISMATCH = "node(s) didn't match Pod's node affinity/selector"
# a node left out of NodeAffinity's PreFilterResult (matchFields metadata.name In) is never
# filtered: the framework reports it as absent
ABSENT = "node(s) didn't satisfy plugin(s) [NodeAffinity]"

LABELS = {"zone": "a", "tier": "gold", "rank": "5", "neg": "-3", "word": "five", "empty": ""}


def labelled(**extra: str) -> dict[str, Any]:
    return node("n", labels={**LABELS, **extra})


def with_affinity(*terms: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return pod("agent", affinity=required_node_affinity(*terms, **kw))


def one(*expressions: dict[str, Any]) -> dict[str, Any]:
    """A pod whose single required term ANDs `expressions`."""
    return with_affinity(list(expressions))


def name_in(value: str) -> dict[str, Any]:
    return {"key": "metadata.name", "operator": "In", "values": [value]}


def name_not_in(value: str) -> dict[str, Any]:
    return {"key": "metadata.name", "operator": "NotIn", "values": [value]}


def terms(*node_terms: dict[str, Any]) -> dict[str, Any]:
    """A pod with raw nodeSelectorTerms (matchExpressions and/or matchFields)."""
    return pod("agent", affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(node_terms)}}})


CASES = [
    # nodeSelector
    case("a pod without nodeSelector or affinity fits any node",
         labelled(), pod("agent")),
    case("a nodeSelector matching the node's label exactly fits",
         labelled(), pod("agent", node_selector={"zone": "a"})),
    case("a nodeSelector with another value does not match",
         labelled(), pod("agent", node_selector={"zone": "b"}), want=MISMATCH),
    case("a nodeSelector on a label the node lacks does not match",
         labelled(), pod("agent", node_selector={"gpu": "a100"}), want=MISMATCH),
    case("a nodeSelector of several labels needs all of them",
         labelled(), pod("agent", node_selector={"zone": "a", "tier": "silver"}), want=MISMATCH),
    case("a nodeSelector of several labels all present fits",
         labelled(), pod("agent", node_selector={"zone": "a", "tier": "gold"})),
    case("a nodeSelector with an empty value matches a label present with an empty value",
         labelled(), pod("agent", node_selector={"empty": ""})),
    case("a nodeSelector with an empty value does not match a missing label",
         labelled(), pod("agent", node_selector={"gpu": ""}), want=MISMATCH),
    case("a nodeSelector matches the kubernetes.io/hostname label",
         labelled(), pod("agent", node_selector={"kubernetes.io/hostname": "n"})),
    # In / NotIn
    case("In with the node's value fits",
         labelled(), one(expr("zone", "In", "a", "b"))),
    case("In without the node's value does not match",
         labelled(), one(expr("zone", "In", "b", "c")), want=MISMATCH),
    case("In on a label the node lacks does not match",
         labelled(), one(expr("gpu", "In", "a100")), want=MISMATCH),
    case("NotIn with the node's value does not match",
         labelled(), one(expr("zone", "NotIn", "a")), want=MISMATCH),
    case("NotIn without the node's value fits",
         labelled(), one(expr("zone", "NotIn", "b", "c"))),
    case("NotIn on a label the node lacks matches",
         labelled(), one(expr("gpu", "NotIn", "a100"))),
    # Exists / DoesNotExist
    case("Exists on a present label fits",
         labelled(), one(expr("tier", "Exists"))),
    case("Exists on a label present with an empty value fits",
         labelled(), one(expr("empty", "Exists"))),
    case("Exists on a missing label does not match",
         labelled(), one(expr("gpu", "Exists")), want=MISMATCH),
    case("DoesNotExist on a missing label fits",
         labelled(), one(expr("gpu", "DoesNotExist"))),
    case("DoesNotExist on a present label does not match",
         labelled(), one(expr("zone", "DoesNotExist")), want=MISMATCH),
    # Gt / Lt
    case("Gt with a smaller bound fits",
         labelled(), one(expr("rank", "Gt", "4"))),
    case("Gt with an equal bound does not match: it is strict",
         labelled(), one(expr("rank", "Gt", "5")), want=MISMATCH),
    case("Lt with a larger bound fits",
         labelled(), one(expr("rank", "Lt", "6"))),
    case("Lt with an equal bound does not match: it is strict",
         labelled(), one(expr("rank", "Lt", "5")), want=MISMATCH),
    case("Gt on a non-integer label value does not match",
         labelled(), one(expr("word", "Gt", "0")), want=MISMATCH),
    case("Lt on a non-integer label value does not match",
         labelled(), one(expr("word", "Lt", "100")), want=MISMATCH),
    case("Lt on an empty label value does not match",
         labelled(), one(expr("empty", "Lt", "100")), want=MISMATCH),
    case("Gt on a label the node lacks does not match",
         labelled(), one(expr("gpu", "Gt", "0")), want=MISMATCH),
    case("Lt on a label the node lacks does not match",
         labelled(), one(expr("gpu", "Lt", "100")), want=MISMATCH),
    case("a negative node label value compares as a number",
         labelled(), one(expr("neg", "Lt", "0"))),
    case("a negative node label value below a Gt bound does not match",
         labelled(), one(expr("neg", "Gt", "0")), want=MISMATCH),
    case("a negative Gt bound is not a valid label value: the term matches no node",
         labelled(), one(expr("rank", "Gt", "-4")), want=MISMATCH),
    case("a negative Lt bound is not a valid label value: the term matches no node",
         labelled(), one(expr("neg", "Lt", "-2")), want=MISMATCH),
    case("a plus-signed Gt bound is not a valid label value: the term matches no node",
         labelled(), one(expr("rank", "Gt", "+4")), want=MISMATCH),
    case("Gt compares numerically, not as strings",
         labelled(rank="10"), one(expr("rank", "Gt", "9"))),
    case("Gt reads a leading plus sign as ParseInt does",
         labelled(rank="+7"), one(expr("rank", "Gt", "6"))),
    case("Gt reads leading zeros as ParseInt does",
         labelled(rank="007"), one(expr("rank", "Lt", "8"))),
    case("Gt on a value beyond int64 does not match",
         labelled(rank="9223372036854775808"), one(expr("rank", "Gt", "0")), want=MISMATCH),
    # values labels.NewRequirement rejects make the whole term match nothing
    case("NotIn with a value containing a space matches no node",
         labelled(), one(expr("zone", "NotIn", "b c")), want=MISMATCH),
    case("In listing an invalid value beside the node's value matches no node",
         labelled(), one(expr("zone", "In", "a", "-a")), want=MISMATCH),
    case("a 64-character value is not a valid label value",
         labelled(), one(expr("zone", "NotIn", "x" * 64)), want=MISMATCH),
    case("a 63-character value is a valid label value",
         labelled(), one(expr("zone", "NotIn", "x" * 63))),
    case("an empty value is a valid label value",
         labelled(), one(expr("zone", "NotIn", ""))),
    case("an invalid value in one expression spoils its whole term",
         labelled(), one(expr("zone", "In", "a"), expr("tier", "NotIn", "not valid")),
         want=MISMATCH),
    case("an invalid value spoils only its own term",
         labelled(), with_affinity([expr("zone", "NotIn", "has space")],
                                   [expr("zone", "In", "a")])),
    # terms ORed, expressions ANDed
    case("expressions of one term are ANDed: one failing fails the term",
         labelled(), one(expr("zone", "In", "a"), expr("tier", "In", "silver")),
         want=MISMATCH),
    case("expressions of one term all holding fit",
         labelled(), one(expr("zone", "In", "a"), expr("tier", "Exists"),
                         expr("rank", "Gt", "1"))),
    case("terms are ORed: a later matching term is enough",
         labelled(), with_affinity([expr("zone", "In", "b")], [expr("tier", "In", "gold")])),
    case("terms are ORed: no term matching does not match",
         labelled(), with_affinity([expr("zone", "In", "b")], [expr("tier", "In", "silver")]),
         want=MISMATCH),
    case("an empty term matches no node",
         labelled(), terms({}), want=MISMATCH),
    case("an empty term beside a matching term does not hide it",
         labelled(), terms({}, {"matchExpressions": [expr("zone", "In", "a")]})),
    case("a term with empty matchExpressions and matchFields lists matches no node",
         labelled(), terms({"matchExpressions": [], "matchFields": []}), want=MISMATCH),
    # matchFields metadata.name
    case("matchFields metadata.name In the node's name fits",
         labelled(), with_affinity(fields=[name_in("n")])),
    case("matchFields metadata.name In another name leaves the node out at PreFilter",
         labelled(), with_affinity(fields=[name_in("other")]), want=ABSENT),
    case("matchFields metadata.name NotIn the node's name does not match",
         labelled(), with_affinity(fields=[name_not_in("n")]), want=MISMATCH),
    case("matchFields metadata.name NotIn another name fits",
         labelled(), with_affinity(fields=[name_not_in("other")])),
    case("matchFields In the node's name ANDed with a failing expression does not match",
         labelled(), terms({"matchFields": [name_in("n")],
                            "matchExpressions": [expr("zone", "In", "b")]}),
         want=MISMATCH),
    case("matchFields In the node's name ANDed with a holding expression fits",
         labelled(), terms({"matchFields": [name_in("n")],
                            "matchExpressions": [expr("zone", "In", "a")]})),
    case("a term without matchFields lets every node past PreFilter",
         labelled(), terms({"matchFields": [name_in("other")]},
                           {"matchExpressions": [expr("zone", "In", "b")]}),
         want=MISMATCH),
    case("matchFields In on two terms pins the union of their names",
         labelled(), terms({"matchFields": [name_in("other")]},
                           {"matchFields": [name_in("n")]})),
    # nodeSelector AND affinity
    case("nodeSelector and affinity both holding fit",
         labelled(), pod("agent", node_selector={"zone": "a"},
                         affinity=required_node_affinity([expr("tier", "In", "gold")]))),
    case("nodeSelector holding does not excuse failing affinity",
         labelled(), pod("agent", node_selector={"zone": "a"},
                         affinity=required_node_affinity([expr("tier", "In", "silver")])),
         want=MISMATCH),
    case("affinity holding does not excuse a failing nodeSelector",
         labelled(), pod("agent", node_selector={"zone": "b"},
                         affinity=required_node_affinity([expr("tier", "In", "gold")])),
         want=MISMATCH),
    case("preferred node affinity alone never filters",
         labelled(), pod("agent", affinity={"nodeAffinity": {
             "preferredDuringSchedulingIgnoredDuringExecution": [
                 {"weight": 10, "preference": {"matchExpressions": [expr("zone", "In", "b")]}}]}})),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_node_affinity(objects, want):
    check_rule(RULE, objects, want)


def test_matchfields_pinning_disjoint_names_fails_prefilter_with_kubes_message():
    # NodeAffinity.PreFilter returns UnschedulableAndUnresolvable(errReasonConflict); FitError
    # then prints the PreFilter message once, with no node count
    check_rule(RULE, [labelled(), terms({"matchFields": [name_in("n"), name_in("other")]})],
               "pod affinity terms conflict",
               message="0/1 nodes are available: pod affinity terms conflict.")


def unplaced_reason(*objects: dict[str, Any]) -> str:
    plan = optimize(inventory(*objects), SOLVE)
    assert plan.placements == []
    (u,) = plan.unplaced
    return u.reason


def test_nodes_outside_the_prefilter_result_are_counted_as_absent():
    assert unplaced_reason(
        node("a", cpu="1"), node("b", cpu="8"),
        pod("agent", cpu="2", affinity=required_node_affinity(fields=[name_in("a")])),
    ) == ("0/2 nodes are available: 1 Insufficient cpu, "
          "1 node(s) didn't satisfy plugin(s) [NodeAffinity]. preemption: 0/2 nodes are "
          "available: 1 No preemption victims found for incoming pod., 1 Preemption is not "
          "helpful for scheduling.")


def test_prefilter_runs_before_every_filter_plugin():
    # kube: node b never reaches Filter, so it is absent, not unschedulable
    assert unplaced_reason(
        node("a", unschedulable=True), node("b", unschedulable=True),
        pod("agent", affinity=required_node_affinity(fields=[name_in("a")])),
    ) == ("0/2 nodes are available: 1 node(s) didn't satisfy plugin(s) [NodeAffinity], "
          "1 node(s) were unschedulable. preemption: 0/2 nodes are available: 2 Preemption is "
          "not helpful for scheduling.")


PRE_FILTER_CASES = [
    pytest.param(pod("agent"), (None, None), id="no affinity: every node, no failure"),
    pytest.param(pod("agent", node_selector={"zone": "a"}), (None, None),
                 id="a nodeSelector alone pins no names"),
    pytest.param(with_affinity([expr("zone", "In", "a")]), (None, None),
                 id="a term without matchFields lets every node through"),
    pytest.param(with_affinity(fields=[name_not_in("n")]), (None, None),
                 id="matchFields NotIn pins no names"),
    pytest.param(terms({"matchFields": [name_in("a")]}, {"matchFields": [name_in("b")]}),
                 ({"a", "b"}, None), id="terms pinning names give their union"),
    pytest.param(terms({"matchFields": [name_in("a")]}, {"matchExpressions": [
        expr("zone", "In", "a")]}), (None, None), id="one unpinned term lets every node through"),
    pytest.param(terms({"matchFields": [name_in("a"), name_not_in("b")]}), ({"a"}, None),
                 id="NotIn beside In in a term does not narrow the set"),
    pytest.param(terms({"matchFields": [name_in("a"), name_in("b")]}),
                 (None, "pod affinity terms conflict"), id="disjoint names in one term conflict"),
]


@pytest.mark.parametrize(("agent", "want"), PRE_FILTER_CASES)
def test_pre_filter(agent, want):
    (p,) = inventory(agent).pending
    assert RULE.pre_filter(p) == want


def test_a_prefilter_failure_is_reported_once_for_the_whole_cluster():
    assert unplaced_reason(
        node("a"), node("b", unschedulable=True),
        terms({"matchFields": [name_in("a"), name_in("b")]}),
    ) == ("0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are "
          "available: 2 Preemption is not helpful for scheduling.")
