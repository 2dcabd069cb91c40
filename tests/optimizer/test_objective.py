"""The weighted objective: terms reported separately, priority dominant, cost per token, soft
preferences, profiles and overrides."""

from __future__ import annotations

from typing import Any

import pytest

from models import InputErrors
from optimizer import SolveConfig, optimize
from optimizer.config import ConfigError
from tests.builders import expr, inventory, node, pod, taint


def pricing(*classes: dict[str, Any], defaults: dict[str, int] | None = None) -> dict[str, Any]:
    return {"apiVersion": "agentplace.io/v1alpha1", "kind": "PricingTable",
            "metadata": {"name": "test-prices"},
            "spec": {"currency": "USD", "nodeClasses": list(classes),
                     "defaultTokensPerHour": defaults or {}}}


def node_class(name: str, price: str, tps: dict[str, str] | None = None, **match: str) -> dict[str, Any]:
    return {"name": name, "match": match, "pricePerHour": price,
            "tokensPerSecond": tps or {}}


def agent(name: str, cpu: str = "1", tokens: int | None = None, **kw: Any) -> dict[str, Any]:
    p = pod(name, cpu, labels={"agentplace.io/agent-class": "chat"}, **kw)
    if tokens is not None:
        p["metadata"]["annotations"] = {"agentplace.io/tokens-per-hour": str(tokens)}
    return p


COST = SolveConfig(time_limit=5, profile="cost")


def test_every_term_is_reported_and_contributions_add_up_to_the_objective():
    plan = optimize(inventory(node("a"), node("b"), agent("x"), agent("y")), SolveConfig(time_limit=5))
    terms = plan.objective_terms["terms"]
    assert set(terms) == {"balance", "pack", "cost", "soft", "preemption"}
    for t in terms.values():
        assert {"value", "max", "normalised", "weight", "coefficient", "contribution"} <= set(t)
    primary = plan.objective_terms["priority_scale"] * plan.objective_terms["priority_weight"]
    assert primary + sum(t["contribution"] for t in terms.values()) == plan.objective
    assert plan.objective_terms["profile"] == "balanced"


def test_cost_profile_picks_the_cheaper_node_class():
    inv = inventory(node("cheap", labels={"tier": "spot"}), node("dear", labels={"tier": "od"}),
                    agent("x", tokens=1000),
                    pricing(node_class("spot", "1.0", tier="spot"), node_class("od", "3.0", tier="od")))
    plan = optimize(inv, COST)
    assert plan.assignment() == {"default/x": "cheap"}
    detail = plan.objective_terms["terms"]["cost"]["detail"]
    assert detail["pricing_table"] == "test-prices" and detail["tokens_per_hour"] == 1000
    # 1 of 4 cpu of a 1.0 USD/h node serves 1000 tokens/h: 0.25 USD/h, 250 USD per 1M tokens
    assert detail["spend_per_hour"] == pytest.approx(0.25)
    assert detail["cost_per_million_tokens"] == pytest.approx(250.0)


def test_cost_per_token_favours_the_faster_node_even_when_it_costs_more_per_hour():
    # slow: 1 token/s serves 3,600 of the 36,000 tokens/h wanted -> 10x the time
    inv = inventory(node("slow", labels={"gpu": "t4"}), node("fast", labels={"gpu": "h100"}),
                    agent("x", tokens=36_000),
                    pricing(node_class("t4", "1.0", {"default": "1"}, gpu="t4"),
                            node_class("h100", "4.0", {"default": "100"}, gpu="h100")))
    plan = optimize(inv, COST)
    assert plan.assignment() == {"default/x": "fast"}


def test_priority_is_never_traded_for_cost():
    inv = inventory(node("dear", labels={"tier": "od"}),
                    agent("vip", cpu="4", priority=100, tokens=10),
                    agent("cheap-bulk", cpu="4", priority=1, tokens=10),
                    pricing(node_class("od", "1000", tier="od")))
    plan = optimize(inv, SolveConfig(time_limit=5, profile="cost", weights={"cost": 1000.0}))
    assert plan.assignment() == {"default/vip": "dear"}


def test_soft_preferences_follow_preferred_affinity_and_avoid_prefer_no_schedule():
    prefers_b = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [expr("zone", "In", "b")]}}]}}
    inv = inventory(node("a", labels={"zone": "a"}), node("b", labels={"zone": "b"}),
                    node("c", labels={"zone": "b"}, taints=[taint("spot", effect="PreferNoSchedule")]),
                    agent("x", affinity=prefers_b))
    plan = optimize(inv, SolveConfig(time_limit=5, weights={"balance": 0.0}))
    assert plan.assignment() == {"default/x": "b"}
    assert plan.objective_terms["terms"]["soft"]["value"] == 0


def test_weights_override_a_profile_and_bad_weights_are_named():
    plan = optimize(inventory(node("a"), agent("x")),
                    SolveConfig(time_limit=5, profile="pack", weights={"soft": 2.0}))
    assert plan.objective_terms["profile"] == "pack"
    assert plan.objective_terms["terms"]["soft"]["weight"] == 2.0
    with pytest.raises(ConfigError, match=r"weights\.speed: unknown term"):
        optimize(inventory(node("a"), agent("x")), SolveConfig(weights={"speed": 1.0}))
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        optimize(inventory(node("a"), agent("x")), SolveConfig(weights={"cost": -1.0}))
    with pytest.raises(ConfigError, match="profile 'nope': not found"):
        optimize(inventory(node("a"), agent("x")), SolveConfig(profile="nope"))


def test_a_profiles_file_replaces_the_built_in_profiles(tmp_path):
    f = tmp_path / "profiles.yaml"
    f.write_text("profiles:\n  mine:\n    pack: 1.0\n")
    plan = optimize(inventory(node("a"), node("b"), agent("x"), agent("y")),
                    SolveConfig(time_limit=5, profile="mine", profiles_file=f))
    assert len(set(plan.assignment().values())) == 1
    assert plan.objective_terms["terms"]["balance"]["weight"] == 0.0


def test_token_demand_annotation_must_be_an_integer():
    with pytest.raises(InputErrors) as e:
        inventory(node("a"), agent("x", tokens=None) | {"metadata": {
            "name": "x", "namespace": "default",
            "annotations": {"agentplace.io/tokens-per-hour": "lots"}}})
    assert "metadata.annotations[agentplace.io/tokens-per-hour]" in str(e.value)


def test_agents_differing_only_in_token_demand_are_priced_separately():
    inv = inventory(node("a"), agent("x", tokens=1000), agent("y", tokens=2000),
                    pricing(node_class("all", "1.0")))
    plan = optimize(inv, COST)
    assert plan.model["agent_classes"] == 2
    assert plan.objective_terms["terms"]["cost"]["detail"]["tokens_per_hour"] == 3000


def test_term_bounds_bound_each_weighted_term_alone_with_priority_held():
    prefers_b = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [expr("zone", "In", "b")]}}]}}
    inv = inventory(node("a", labels={"zone": "a"}), node("b", "2", labels={"zone": "b"}),
                    *[agent(f"x{i}", affinity=prefers_b) for i in range(4)])
    plan = optimize(inv, SolveConfig(time_limit=5, term_bounds=True))
    terms = plan.objective_terms["terms"]
    soft = terms["soft"]["bound"]
    # zone b holds two of the four: at best two agents miss their preference (2 x 50)
    assert soft["status"] == "OPTIMAL" and soft["alone_bound"] == 100
    assert terms["soft"]["value"] >= soft["alone_bound"]
    assert "bound" in terms["balance"] and "bound" not in terms["pack"]  # pack has weight 0
    assert plan.objective_terms["placed_agents"] == 4 and plan.verified


def test_balance_resources_are_selectable_with_weights():
    # a GPU agent: balancing only GPUs spreads the two agents over both GPU nodes
    gpu = {"nvidia.com/gpu": "2"}
    inv = inventory(node("g1", "64", extra=gpu), node("g2", "64", extra=gpu),
                    agent("a", extra={"nvidia.com/gpu": "1"}), agent("b", extra={"nvidia.com/gpu": "1"}))
    plan = optimize(inv, SolveConfig(time_limit=5, balance_resources={"nvidia.com/gpu": 3}))
    bal = plan.objective_terms["terms"]["balance"]
    assert sorted(plan.assignment().values()) == ["g1", "g2"]
    assert bal["max"] == 300 and bal["value"] == 3 * 50
    assert "nvidia.com/gpu x3" in bal["description"]
