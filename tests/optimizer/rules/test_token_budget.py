"""TokenBudget: a tenant's token or currency budget per period, as a hard cap across windows."""

from __future__ import annotations

from typing import Any

import pytest

from models import InputErrors
from optimizer import SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.index import Index
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import inventory, node, pod

FAST = SolveConfig(time_limit=5)


def budget(name: str = "b", namespace: str = "team", tokens: str | None = "100k",
           dollars: str | None = None, spent: int = 0, period: str = "1h",
           labels: dict[str, str] | None = None, spent_dollars: str = "0") -> dict[str, Any]:
    spec: dict[str, Any] = {"period": period, "tenant": {"labels": labels or {}}}
    if tokens is not None:
        spec["tokens"] = tokens
    if dollars is not None:
        spec["dollars"] = dollars
    return {"apiVersion": "agentplace.io/v1alpha1", "kind": "TokenBudget",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec,
            "status": {"spentTokens": spent, "spentDollars": spent_dollars}}


def agent(name: str, tokens: int, priority: int = 0, namespace: str = "team",
          labels: dict[str, str] | None = None) -> dict[str, Any]:
    p = pod(name, "100m", namespace=namespace, priority=priority, labels=labels)
    p["metadata"]["annotations"] = {"agentplace.io/tokens-per-hour": str(tokens)}
    return p


def test_a_token_budget_keeps_the_higher_priority_agents():
    inv = inventory(node("n"), budget(tokens="100k"),
                    agent("vip", 60_000, priority=10), agent("low-1", 30_000), agent("low-2", 30_000))
    plan = optimize(inv, FAST)
    assert set(plan.assignment()) == {"team/vip", "team/low-1"}
    (row,) = plan.budgets
    assert row["window_tokens"] == 90_000 and row["spent_tokens"] == 90_000
    assert plan.unplaced[0].reason == (
        "token budget team/b exceeded: requested 30000 tokens per 1h, committed 90000 "
        "(0 earlier + 90000 this window), limit 100000; it would fit with a budget of 120000 "
        "tokens or without 20000 tokens of this window's agents")


def test_spend_committed_by_earlier_windows_carries_over():
    inv = inventory(node("n"), budget(tokens="100k", spent=80_000), agent("a", 30_000), agent("b", 20_000))
    plan = optimize(inv, FAST)
    assert list(plan.assignment()) == ["team/b"]
    assert plan.budgets[0]["spent_tokens"] == 100_000


def test_the_period_scales_each_agents_commitment():
    # 30 min at 150k/h commits 75k of a 100k budget: one agent only
    inv = inventory(node("n"), budget(tokens="100k", period="30m"), agent("a", 150_000), agent("b", 150_000))
    plan = optimize(inv, FAST)
    assert len(plan.placements) == 1 and plan.budgets[0]["window_tokens"] == 75_000


def test_only_the_tenant_is_charged():
    inv = inventory(node("n"), budget(tokens="50k", labels={"agentplace.io/tenant": "acme"}),
                    agent("acme-1", 40_000, labels={"agentplace.io/tenant": "acme"}),
                    agent("acme-2", 40_000, labels={"agentplace.io/tenant": "acme"}),
                    agent("other", 40_000), agent("elsewhere", 40_000, namespace="x"))
    plan = optimize(inv, FAST)
    assert len(plan.placements) == 3
    assert plan.budgets[0]["agents"] == 1


def test_a_currency_budget_prefers_cheaper_nodes_to_fit_more_agents():
    pricing = {"apiVersion": "agentplace.io/v1alpha1", "kind": "PricingTable",
               "metadata": {"name": "p"},
               "spec": {"nodeClasses": [{"name": "cheap", "match": {"tier": "cheap"}, "pricePerHour": "1"},
                                        {"name": "dear", "match": {"tier": "dear"}, "pricePerHour": "10"}]}}
    # each agent takes 1 of 4 cpu: 0.25/h on cheap, 2.5/h on dear; budget 0.6/h fits 2 on cheap
    agents = [pod(f"a{i}", "1", namespace="team") for i in range(3)]
    inv = inventory(node("cheap", "4", labels={"tier": "cheap"}), node("dear", "4", labels={"tier": "dear"}),
                    pricing, budget(tokens=None, dollars="0.6"), *agents)
    plan = optimize(inv, FAST)
    assert sorted(plan.assignment().values()) == ["cheap", "cheap"]
    assert plan.budgets[0]["spent_dollars"] == pytest.approx(0.5)


def test_the_verifier_rejects_a_plan_over_budget_and_the_greedy_respects_it():
    inv = inventory(node("n"), budget(tokens="50k"), agent("a", 40_000), agent("b", 40_000))
    snap = build_snapshot(inv)
    violations = verify([("team/a", "n"), ("team/b", "n")], snap)
    assert any(v.rule == "TokenBudget" and "80000 tokens > limit 50000" in v.message for v in violations)
    ix = Index(snap)
    static, _ = prefilter(ix)
    assert int((greedy(ix, static) >= 0).sum()) == 1


def test_a_single_agent_above_the_whole_budget_is_prefiltered():
    inv = inventory(node("n"), budget(tokens="10k"), agent("huge", 20_000))
    snap = build_snapshot(inv)
    _, full = prefilter(Index(snap))
    assert not full.any()
    plan = optimize(inv, FAST)
    assert plan.unplaced[0].reason.startswith("token budget team/b exceeded: requested 20000")


@pytest.mark.parametrize(("obj", "field", "fragment"), [
    pytest.param(budget(tokens=None), "spec.tokens", "needs tokens, dollars or both",
                 id="a budget with no cap"),
    pytest.param(budget(period="1 hour"), "spec.period", "should match pattern",
                 id="a period that is not a duration"),
    pytest.param(budget(tokens="1.5"), "spec.tokens", "whole number of tokens",
                 id="a fractional token budget"),
    pytest.param(budget(tokens=None, dollars="5"), "spec.dollars", "needs a PricingTable",
                 id="a currency budget without a pricing table"),
])
def test_bad_budgets_are_named(obj, field, fragment):
    with pytest.raises(InputErrors) as e:
        inventory(node("n"), obj)
    (err,) = e.value.errors
    assert err.obj == "TokenBudget team/b" and err.path == field and fragment in err.reason
