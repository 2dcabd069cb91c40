"""NodeResourcesFit, after kube's noderesources/fit_test.go: free = allocatable - running requests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import node, pod
from tests.optimizer.rules.conftest import case, check_rule, rule_named

RULE = rule_named("NodeResourcesFit")
GPU = "nvidia.com/gpu"
CPU, MEMORY, EPHEMERAL = "Insufficient cpu", "Insufficient memory", "Insufficient ephemeral-storage"
NO_GPU = f"Insufficient {GPU}"
TOO_MANY = "Too many pods"


def running(name: str, cpu: str | None = "100m", memory: str | None = None,
            **kw: Any) -> dict[str, Any]:
    return pod(name, cpu, memory, node_name="n", **kw)


def raw_pod(containers: list[dict[str, Any]],
            init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = pod("agent")
    out["spec"]["containers"] = [{"name": f"c{i}", "resources": r}
                                 for i, r in enumerate(containers)]
    if init:
        out["spec"]["initContainers"] = [{"name": f"i{i}", "resources": r}
                                         for i, r in enumerate(init)]
    return out


CASES = [
    case("a small pod fits an empty node",
         node("n"), pod("agent", "1", "1Gi")),
    # each resource short
    case("more cpu than the node has is Insufficient cpu",
         node("n", cpu="1"), pod("agent", "2"), want=CPU),
    case("more memory than the node has is Insufficient memory",
         node("n", memory="1Gi"), pod("agent", "1", "2Gi"), want=MEMORY),
    case("more ephemeral-storage than the node has is Insufficient ephemeral-storage",
         node("n", extra={"ephemeral-storage": "10Gi"}),
         pod("agent", extra={"ephemeral-storage": "20Gi"}), want=EPHEMERAL),
    case("more GPUs than the node has is Insufficient nvidia.com/gpu",
         node("n", extra={GPU: "1"}), pod("agent", extra={GPU: "2"}), want=NO_GPU),
    case("a node that does not list an extended resource has none of it",
         node("n"), pod("agent", extra={GPU: "1"}), want=NO_GPU),
    case("a node that does not list ephemeral-storage has none of it",
         node("n"), pod("agent", extra={"ephemeral-storage": "1Mi"}), want=EPHEMERAL),
    case("an extended resource listed as zero is the same as not listed",
         node("n", extra={GPU: "0"}), pod("agent", extra={GPU: "1"}), want=NO_GPU),
    # exactly equal
    case("a cpu request exactly equal to allocatable fits",
         node("n", cpu="4"), pod("agent", "4")),
    case("a cpu request in millicores equal to allocatable in cores fits",
         node("n", cpu="1.5"), pod("agent", "1500m")),
    case("one millicore over allocatable does not fit",
         node("n", cpu="1.5"), pod("agent", "1501m"), want=CPU),
    case("a memory request exactly equal to allocatable fits",
         node("n", memory="4Gi"), pod("agent", "1", "4096Mi")),
    case("a GPU request exactly equal to allocatable fits",
         node("n", extra={GPU: "2"}), pod("agent", extra={GPU: "2"})),
    case("a request exactly equal to what running pods leave free fits",
         node("n", cpu="4"), running("r1", "3"), pod("agent", "1")),
    # running pods
    case("running pods' requests count against the node",
         node("n", cpu="4"), running("r1", "3"), pod("agent", "2"), want=CPU),
    case("running pods' memory requests count against the node",
         node("n", memory="4Gi"), running("r1", "1", "3Gi"), running("r2", "1", "512Mi"),
         pod("agent", "1", "1Gi"), want=MEMORY),
    case("running pods' GPUs count against the node",
         node("n", extra={GPU: "4"}), running("r1", extra={GPU: "3"}),
         pod("agent", extra={GPU: "2"}), want=NO_GPU),
    case("a Succeeded pod bound to the node holds no capacity",
         node("n", cpu="4"), running("done", "3", phase="Succeeded"), pod("agent", "2")),
    case("a Failed pod bound to the node holds no capacity",
         node("n", cpu="4"), running("crashed", "3", phase="Failed"), pod("agent", "2")),
    case("a Succeeded pod bound to the node does not count toward pods",
         node("n", pods="1"), running("done", phase="Succeeded"), pod("agent")),
    # zero requests skip the resource
    case("a pod with no cpu request fits a node over-committed on cpu",
         node("n", cpu="1"), running("r1", "2"), pod("agent", None, "1Gi")),
    case("a pod with a zero cpu request fits a node over-committed on cpu",
         node("n", cpu="1"), running("r1", "2"), pod("agent", "0", "1Gi")),
    case("a zero GPU request fits a node that lists no GPUs",
         node("n"), pod("agent", extra={GPU: "0"})),
    case("a pod requesting nothing fits a node full on every resource",
         node("n", cpu="1", memory="1Gi"), running("r1", "1", "1Gi"), pod("agent", None)),
    case("a non-zero request on an over-committed resource is still checked",
         node("n", cpu="1"), running("r1", "2"), pod("agent", "1m"), want=CPU),
    # pod count
    case("a node with as many pods as allocatable pods is Too many pods",
         node("n", pods="2"), running("r1"), running("r2"), pod("agent"), want=TOO_MANY),
    case("a node with one free pod slot takes one more pod",
         node("n", pods="3"), running("r1"), running("r2"), pod("agent")),
    case("a node allowing zero pods takes none",
         node("n", pods="0"), pod("agent"), want=TOO_MANY),
    case("a pod requesting nothing still needs a pod slot",
         node("n", pods="1"), running("r1", None), pod("agent", None), want=TOO_MANY),
    # several reasons at once
    case("short on cpu and memory reports both",
         node("n", cpu="1", memory="1Gi"), pod("agent", "2", "2Gi"), want=(CPU, MEMORY)),
    case("Too many pods comes first, then the resources",
         node("n", cpu="1", pods="1"), running("r1", "500m"), pod("agent", "1"),
         want=(TOO_MANY, CPU)),
    case("short on every resource reports them in kube's order",
         node("n", cpu="1", memory="1Gi", extra={"ephemeral-storage": "1Gi", GPU: "1"}),
         pod("agent", "2", "2Gi", extra={"ephemeral-storage": "2Gi", GPU: "2"}),
         want=(CPU, MEMORY, EPHEMERAL, NO_GPU)),
    case("short on two extended resources reports both, ordered by name",
         node("n", extra={GPU: "1", "example.com/fpga": "1"}),
         pod("agent", extra={GPU: "2", "example.com/fpga": "2"}),
         want=("Insufficient example.com/fpga", NO_GPU)),
    case("short on cpu only reports only cpu",
         node("n", cpu="1", memory="8Gi"), pod("agent", "2", "1Gi"), want=CPU),
    # how the pod's request is computed
    case("a container with only a limit requests its limit",
         node("n", cpu="2"), raw_pod([{"limits": {"cpu": "3"}}]), want=CPU),
    case("container requests are summed",
         node("n", cpu="2"), raw_pod([{"requests": {"cpu": "1"}}, {"requests": {"cpu": "1500m"}}]),
         want=CPU),
    case("the largest init container counts when it exceeds the app containers",
         node("n", cpu="2"), raw_pod([{"requests": {"cpu": "1"}}],
                                     init=[{"requests": {"cpu": "3"}}]), want=CPU),
    case("an init container smaller than the app containers adds nothing",
         node("n", cpu="2"), raw_pod([{"requests": {"cpu": "2"}}],
                                     init=[{"requests": {"cpu": "1"}}])),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_node_resources_fit(objects, want):
    check_rule(RULE, objects, want)


def test_many_distinct_extended_resources_fit_only_where_offered() -> None:
    """kube-perf's SchedulingWithExtendedResource: agent i asks for 1 of its own resource, which
    only node i offers. The prefilter tests only the resources a block of classes requests (the
    dense class x node x resource test took minutes at 5,000); every agent still fits exactly its
    node, and an agent asking for nothing fits everywhere."""
    from optimizer.index import Index
    from optimizer.snapshot import build_snapshot
    from tests.builders import inventory

    n = 60
    nodes = [node(f"n{i}", extra={f"foo.com/bar-{i}": "1"}) for i in range(n)]
    agents = [pod(f"a{i}", extra={f"foo.com/bar-{i}": "1"}) for i in range(n)] + [pod("plain")]
    ix = Index(build_snapshot(inventory(*nodes, *agents)))
    fit = RULE.prefilter(ix)
    assert fit is not None
    rows = {p.ref: fit[ix.class_of[k]] for k, p in enumerate(ix.snap.pending)}
    for i in range(n):
        assert [ix.node_names[j] for j in rows[f"default/a{i}"].nonzero()[0]] == [f"n{i}"]
    assert rows["default/plain"].all()
    # the encoding (capacity rows only for requested resources) and the verifier agree
    from optimizer import SolveConfig, optimize

    extra = [pod(f"b{i}", extra={f"foo.com/bar-{i}": "1"}) for i in range(0, n, 2)]  # 2nd claimant
    plan = optimize(inventory(*nodes, *agents, *extra), SolveConfig(time_limit=10, workers=1))
    on = {p.agent: p.node for p in plan.placements}
    assert len(on) == n + 1 and len(plan.unplaced) == len(extra)
    assert all(on.get(f"default/a{i}", f"n{i}") == f"n{i}" for i in range(n))
    assert all(on.get(f"default/b{i}", f"n{i}") == f"n{i}" for i in range(0, n, 2))


def test_over_committed_nodes_bind_only_the_resources_their_candidates_ask_for() -> None:
    """An over-committed node (running requests above allocatable, e.g. allocatable lowered
    after binding) takes agents that do not ask for the over-committed resource, and a node no
    agent may use gets no capacity row at all (the encode once raised KeyError there)."""
    from optimizer import SolveConfig, optimize
    from tests.builders import inventory

    inv = inventory(
        node("over", cpu="2", extra={"example.com/foo": "1"}),
        pod("hog", "1", node_name="over", extra={"example.com/foo": "2"}),
        node("fenced", cpu="2", memory="1Gi", labels={"pool": "x"}),
        pod("hog2", "3", node_name="fenced"),
        pod("plain", "500m"), pod("foo", "100m", extra={"example.com/foo": "1"}),
        pod("pinned", "100m", node_selector={"pool": "nowhere"}))
    plan = optimize(inv, SolveConfig(time_limit=5))
    on = {p.agent: p.node for p in plan.placements}
    assert on == {"default/plain": "over"} and plan.verified
    assert {u.agent for u in plan.unplaced} == {"default/foo", "default/pinned"}
