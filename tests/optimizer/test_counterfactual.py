"""Counterfactuals: the smallest single change that would let some node take an unplaced agent."""

from __future__ import annotations

import pytest

from optimizer import SolveConfig, optimize
from optimizer.explain import explain_pending
from optimizer.snapshot import build_snapshot
from tests.builders import expr, inventory, node, pod, required_node_affinity, taint

CASES = [
    pytest.param([node("n", "2"), pod("a", "3")], "fits on n with 1 more cpu free there",
                 id="a resource shortfall names the missing amount"),
    pytest.param([node("n", "2"), node("c", "8", unschedulable=True), pod("a", "3")],
                 "fits on c if the node were uncordoned",
                 id="a request above a node's whole allocatable ranks after an uncordon"),
    pytest.param([node("n", "4", pods="1"), pod("r", "100m", node_name="n"), pod("a", "1")],
                 "fits on n with 1 more pod slot free there", id="a full pod count"),
    pytest.param([node("n", taints=[taint("dedicated", "gpu")]), pod("a", "1")],
                 "fits on n if it tolerated dedicated=gpu:NoSchedule", id="an untolerated taint"),
    pytest.param([node("n", unschedulable=True), pod("a", "1")],
                 "fits on n if the node were uncordoned", id="a cordoned node"),
    pytest.param([node("n", labels={"zone": "a"}),
                  pod("a", "1", affinity=required_node_affinity([expr("zone", "In", "b")]))],
                 "fits on n if its nodeSelector / required node affinity admitted that node",
                 id="node affinity"),
    pytest.param([node("busy", "4"), node("idle", "4"), pod("r1", "3", node_name="busy"),
                  pod("r2", "2", node_name="idle"), pod("a", "3")],
                 "fits on idle with 1 more cpu free there",
                 id="the smallest shortfall wins over a larger one"),
    pytest.param([node("n", "2", taints=[taint("x")]), node("m", "2"), pod("a", "4")],
                 "fits on m with 2 more cpu free there",
                 id="a node one change away beats a node two changes away"),
    pytest.param([node("n", "1", taints=[taint("x")]), pod("a", "4")], None,
                 id="no node is one change away: none"),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_counterfactual_in_plan_and_explain(objects, want):
    inv = inventory(*objects)
    plan = optimize(inv, SolveConfig(time_limit=5))
    (unplaced,) = plan.unplaced
    assert unplaced.counterfactual == want
    (e,) = [x for x in explain_pending(build_snapshot(inv)) if x.agent == "default/a"]
    assert e.counterfactual == want


def test_a_quota_rejection_says_how_much_more_quota_would_admit_it():
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "team"},
             "spec": {"hard": {"requests.nvidia.com/gpu": "2"}},
             "status": {"hard": {"requests.nvidia.com/gpu": "2"}, "used": {"requests.nvidia.com/gpu": "1"}}}
    gpu = {"nvidia.com/gpu": "8"}
    inv = inventory(node("g", "8", extra=gpu), quota,
                    pod("a", "1", namespace="team", extra={"nvidia.com/gpu": "3"}))
    (u,) = optimize(inv, SolveConfig(time_limit=5)).unplaced
    assert "exceeded quota: q" in u.reason
    assert u.counterfactual == "admitted if quota team/q allowed 2 more requests.nvidia.com/gpu"


def test_a_spread_rejection_names_the_maxskew_that_would_admit_it():
    web = {"app": "web"}
    agent = pod("a", "2", labels=web)
    agent["spec"]["topologySpreadConstraints"] = [{
        "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": web}}]
    inv = inventory(node("za", "8", labels={"zone": "a"}), node("zb", "1", labels={"zone": "b"}),
                    pod("w1", "1", node_name="za", labels=web),
                    pod("w2", "1", node_name="za", labels=web), agent)
    (u,) = optimize(inv, SolveConfig(time_limit=5)).unplaced
    assert u.counterfactual == "fits on za with maxSkew 3 on zone (now 1)"
