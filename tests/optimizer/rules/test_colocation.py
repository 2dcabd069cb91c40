"""ColocationLimit (agentplace's extension rule): one node, running pods, one agent; then batches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.errors import InputError, InputErrors
from optimizer import SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.index import Index
from optimizer.rules.colocation import ANNOTATION, limits_of
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import inventory, node, pod
from tests.optimizer.rules.conftest import case, check_rule, rule_named

RULE = rule_named("ColocationLimit")


def app(name: str, app_label: str, *limits: tuple[str, str, int], node_name: str | None = None,
        namespace: str = "default") -> dict[str, Any]:
    """A pod of `app_label` declaring (ifPresent app, selector app, max) limits."""
    p = pod(name, node_name=node_name, labels={"app": app_label}, namespace=namespace)
    if limits:
        p["metadata"]["annotations"] = {ANNOTATION: json.dumps(
            [{"ifPresent": {"app": a}, "selector": {"app": b}, "max": k} for a, b, k in limits])}
    return p


def over(k: int, b: str, a: str) -> str:
    return f"node(s) would exceed a co-location limit: at most {k} pod(s) {{app={b}}} next to {{app={a}}}"


CASES = [
    case("no limits: fits", node("n"), app("r", "a", node_name="n"), app("agent", "b")),
    case("k = 0, an A runs: a B cannot join", node("n"), app("r", "a", node_name="n"),
         app("agent", "b", ("a", "b", 0)), want=over(0, "b", "a")),
    case("k = 0 declared by the running B: an A cannot join", node("n"),
         app("r", "b", ("a", "b", 0), node_name="n"), app("agent", "a"), want=over(0, "b", "a")),
    case("k = 1, an A and one B run: a second B cannot join", node("n"),
         app("r1", "a", node_name="n"), app("r2", "b", ("a", "b", 1), node_name="n"),
         app("agent", "b", ("a", "b", 1)), want=over(1, "b", "a")),
    case("k = 2, an A and one B run: a second B fits", node("n"),
         app("r1", "a", node_name="n"), app("r2", "b", ("a", "b", 2), node_name="n"),
         app("agent", "b", ("a", "b", 2))),
    case("no A on the node: any number of B", node("n"),
         app("r1", "b", ("a", "b", 0), node_name="n"), app("r2", "b", node_name="n"),
         app("agent", "b", ("a", "b", 0))),
    case("two B run, no A: the A would break k = 1", node("n"),
         app("r1", "b", ("a", "b", 1), node_name="n"), app("r2", "b", node_name="n"),
         app("agent", "a"), want=over(1, "b", "a")),
    case("self-limit k = 2: a third replica cannot join", node("n"),
         app("r1", "a", ("a", "a", 2), node_name="n"), app("r2", "a", node_name="n"),
         app("agent", "a", ("a", "a", 2)), want=over(2, "a", "a")),
    case("self-limit k = 2: a second replica fits", node("n"),
         app("r1", "a", ("a", "a", 2), node_name="n"), app("agent", "a", ("a", "a", 2))),
    case("other namespaces do not count", node("n"), app("r", "a", node_name="n", namespace="x"),
         app("agent", "b", ("a", "b", 0))),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_colocation_limit(objects, want):
    check_rule(RULE, objects, want)


def test_the_batch_keeps_every_limit_and_places_what_fits():
    # 3 nodes; A x3 (at most 1 per node), B x6 (at most 1 next to an A): the best plan leaves
    # one A out so that one node takes the other four B (8 placed; all 3 A would give 6)
    objs = [node(f"n{i}") for i in range(3)]
    objs += [app(f"a{i}", "a", ("a", "a", 1)) for i in range(3)]
    objs += [app(f"b{i}", "b", ("a", "b", 1)) for i in range(6)]
    plan = optimize(inventory(*objs), SolveConfig(time_limit=5, workers=1))
    on = plan.assignment()
    assert plan.verified
    assert len(on) == 8
    for n in ("n0", "n1", "n2"):
        here = [a.split("/")[1] for a, nn in on.items() if nn == n]
        a_here = sum(a.startswith("a") for a in here)
        assert a_here <= 1
        assert a_here == 0 or len(here) - a_here <= 1
    left = [u for u in plan.unplaced]
    assert len(left) == 1 and left[0].agent.startswith("default/a")
    assert "co-location limit" in left[0].reason


def test_the_greedy_respects_the_limit_as_it_binds():
    objs = [node("n0"), *(app(f"b{i}", "b", ("a", "b", 1)) for i in range(2)), app("a0", "a")]
    snap = build_snapshot(inventory(*objs))
    ix = Index(snap)
    static, _ = prefilter(ix)
    out = greedy(ix, static, "MostAllocated")
    # two B bound first, then A cannot join the node
    assert out.tolist() == [0, 0, -1]
    placements = [(p.ref, "n0") for p, n in zip(snap.pending, out, strict=True) if n >= 0]
    assert verify(placements, snap) == []


def test_verify_catches_a_plan_that_breaks_the_limit():
    objs = [node("n0"), app("a0", "a"), app("b0", "b", ("a", "b", 0))]
    snap = build_snapshot(inventory(*objs))
    found = verify([("default/a0", "n0"), ("default/b0", "n0")], snap)
    assert [v.rule for v in found] == ["ColocationLimit"]
    assert verify([("default/a0", "n0")], snap) == []


@pytest.mark.parametrize(("value", "field"), [
    ("not json", "metadata.annotations[agentplace.io/colocation-limits]"),
    ('{"max": 1}', "metadata.annotations[agentplace.io/colocation-limits]"),
    ('[{"ifPresent": {"app": "a"}, "selector": {"app": "b"}, "max": -1}]',
     "metadata.annotations[agentplace.io/colocation-limits][0].max"),
    ('[{"ifPresent": {}, "selector": {"app": "b"}, "max": 1}]',
     "metadata.annotations[agentplace.io/colocation-limits][0].ifPresent"),
])
def test_a_bad_annotation_names_the_pod_and_the_field(value, field):
    p = app("x", "b")
    p["metadata"]["annotations"] = {ANNOTATION: value}
    snap = build_snapshot(inventory(node("n"), p))
    with pytest.raises(InputError) as e:
        limits_of(snap.pending[0])
    assert e.value.obj == "Pod default/x" and e.value.path == field
    assert not isinstance(e.value, InputErrors)
