"""PodTopologySpread, hard constraints (whenUnsatisfiable: DoNotSchedule).

The table cases check the four readings on one node; the batch scenarios check the batch
reading (some binding order must exist, the final state need not satisfy maxSkew); a
hypothesis test compares the verifier and the encoding with a brute-force order search.
"""

from __future__ import annotations

import itertools
from collections import Counter
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from optimizer import optimize
from optimizer.baseline import counts_from_assignment, greedy
from optimizer.explain import cluster_usage, explain_agent
from optimizer.index import Index
from optimizer.model import ModelBuilder, candidate_pairs
from optimizer.rules.topology_spread import LABEL_REASON, REASON, PodTopologySpread
from optimizer.snapshot import Snapshot, build_snapshot
from optimizer.solve import prefilter
from tests.builders import inventory, node, pod
from tests.optimizer.rules.conftest import SOLVE, case, check_rule

RULE = PodTopologySpread()
APP = {"app": "web"}


def spread(key: str = "zone", max_skew: int = 1, selector: dict[str, Any] | None = None,
           when: str = "DoNotSchedule", **extra: Any) -> dict[str, Any]:
    """One topologySpreadConstraint; `selector` None selects app=web, {} is the empty one."""
    out: dict[str, Any] = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
                           "labelSelector": {"matchLabels": APP} if selector is None else selector}
    out.update(extra)
    return out


def agent(name: str = "agent", *constraints: dict[str, Any], labels: dict[str, str] | None = None,
          **kw: Any) -> dict[str, Any]:
    p = pod(name, labels=APP if labels is None else labels, **kw)
    p["spec"]["topologySpreadConstraints"] = list(constraints) or [spread()]
    return p


def running(name: str, on: str, labels: dict[str, str] | None = None, **kw: Any
            ) -> dict[str, Any]:
    return pod(name, node_name=on, labels=APP if labels is None else labels, **kw)


def zoned(name: str = "n", zone: str = "a", **labels: str) -> dict[str, Any]:
    return node(name, labels={"zone": zone, **labels})


def terminating(p: dict[str, Any]) -> dict[str, Any]:
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


TWO = {"minDomains": 2}  # one node is one domain: the global minimum is 0

CASES = [
    case("an agent without topology spread constraints fits a node without the key",
         node("n"), pod("agent")),
    case("a ScheduleAnyway constraint is scored, never filtered, even without the key",
         node("n"), agent("agent", spread(when="ScheduleAnyway"))),
    case("a node without the topology key fails with missing required label",
         node("n"), agent(), want=LABEL_REASON),
    case("a node lacking the key of the second constraint fails with missing required label",
         zoned(), agent("agent", spread(), spread(key="rack")), want=LABEL_REASON),
    case("a node with the key that is the only domain always fits",
         zoned(), running("r1", "n"), running("r2", "n"), running("r3", "n"), agent()),
    case("the hostname key works like any other key",
         node("n"), agent("agent", spread(key="kubernetes.io/hostname"))),
    case("fewer domains than minDomains make the minimum 0: one matching pod + self > maxSkew 1",
         zoned(), running("r1", "n"), agent("agent", spread(**TWO)), want=REASON),
    case("fewer domains than minDomains: an empty domain takes up to maxSkew",
         zoned(), agent("agent", spread(**TWO))),
    case("fewer domains than minDomains: maxSkew 2 leaves room for a second matching pod",
         zoned(), running("r1", "n"), agent("agent", spread(max_skew=2, **TWO))),
    case("pods of another namespace do not count",
         zoned(), running("r1", "n", namespace="other"), agent("agent", spread(**TWO))),
    case("terminating pods do not count",
         zoned(), terminating(running("r1", "n")), agent("agent", spread(**TWO))),
    case("pods outside the selector do not count",
         zoned(), running("r1", "n", labels={"app": "db"}), agent("agent", spread(**TWO))),
    case("an agent its own selector does not match adds 0 to the skew",
         zoned(), running("r1", "n"), agent("agent", spread(**TWO), labels={"app": "db"})),
    case("no labelSelector matches nothing, not even the agent",
         zoned(), running("r1", "n", labels={}),
         agent("agent", {"maxSkew": 1, "topologyKey": "zone",
                         "whenUnsatisfiable": "DoNotSchedule", "minDomains": 2})),
    case("an empty labelSelector counts every pod of the namespace",
         zoned(), running("r1", "n", labels={}), agent("agent", spread(selector={}, **TWO)),
         want=REASON),
    case("matchExpressions select like matchLabels",
         zoned(), running("r1", "n"),
         agent("agent", spread(selector={"matchExpressions": [
             {"key": "app", "operator": "In", "values": ["web", "api"]}]}, **TWO)),
         want=REASON),
    case("matchLabelKeys add the agent's own value: a pod of another version does not count",
         zoned(), running("r1", "n", labels={**APP, "version": "v1"}),
         agent("agent", spread(matchLabelKeys=["version"], **TWO),
               labels={**APP, "version": "v2"})),
    case("matchLabelKeys add the agent's own value: a pod of the same version counts",
         zoned(), running("r1", "n", labels={**APP, "version": "v2"}),
         agent("agent", spread(matchLabelKeys=["version"], **TWO),
               labels={**APP, "version": "v2"}),
         want=REASON),
    case("a matchLabelKeys key the agent does not carry is ignored",
         zoned(), running("r1", "n", labels={**APP, "version": "v1"}),
         agent("agent", spread(matchLabelKeys=["version"], **TWO)), want=REASON),
]


@pytest.mark.parametrize(("objects", "want"), CASES)
def test_topology_spread_case(objects: list[dict[str, Any]], want: str | None) -> None:
    check_rule(RULE, objects, want)


# --- explain: kube's per-node reasons against the cluster as given ----------------------------


def test_explain_rejects_the_domain_ahead_and_the_node_without_the_key() -> None:
    snap = build_snapshot(inventory(
        zoned("a1", "a"), zoned("b1", "b"), node("bare"),
        running("r1", "a1"), running("r2", "a1"), agent()))
    e = explain_agent(snap.pending[0], snap, cluster_usage(snap))
    assert e.feasible == ["b1"]
    assert e.rejected == {"a1": REASON, "bare": LABEL_REASON}


def test_explain_message_when_every_node_is_rejected() -> None:
    snap = build_snapshot(inventory(
        zoned("a1", "a"), zoned("b1", "b"), node("bare"),
        running("r1", "a1"), running("r2", "a1"), running("r3", "b1"),
        agent("agent", spread(minDomains=3))))
    e = explain_agent(snap.pending[0], snap, cluster_usage(snap))
    assert e.message == (f"0/3 nodes are available: 1 {LABEL_REASON}, 2 {REASON}.")


# --- batch scenarios ------------------------------------------------------------------------


def zones_of(snap: Snapshot, assignment: dict[str, str]) -> list[str]:
    by_name = {n.name: n for n in snap.nodes}
    return sorted(by_name[n].labels.get("zone", "-") for n in assignment.values())


def plan_zones(*objects: dict[str, Any]) -> tuple[list[str], Any, Snapshot]:
    inv = inventory(*objects)
    plan = optimize(inv, SOLVE)
    snap = build_snapshot(inv)
    return zones_of(snap, plan.assignment()), plan, snap


def test_a_cluster_skewed_4_to_0_ends_4_to_2_one_valid_bind_at_a_time() -> None:
    zones, _, snap = plan_zones(
        zoned("a1", "a"), zoned("b1", "b"),
        *(running(f"r{i}", "a1") for i in range(4)), agent("x1"), agent("x2"))
    assert zones == ["b", "b"]
    assert RULE.verify({"default/x1": "b1", "default/x2": "b1"}, snap) == []


def test_six_agents_over_three_empty_zones_spread_two_two_two() -> None:
    zones, _, snap = plan_zones(
        zoned("a1", "a"), zoned("b1", "b"), zoned("c1", "c"),
        *(agent(f"x{i}") for i in range(6)))
    assert zones == ["a", "a", "b", "b", "c", "c"]
    ix = Index(snap)
    base = greedy(ix, prefilter(ix)[0])
    assert zones_of(snap, {str(i): snap.nodes[n].name for i, n in enumerate(base)}) == zones


def test_min_domains_above_the_domain_count_caps_each_domain_at_max_skew() -> None:
    zones, plan, _ = plan_zones(
        zoned("a1", "a"), zoned("b1", "b"),
        *(agent(f"x{i}", spread(max_skew=2, minDomains=3)) for i in range(7)))
    assert zones == ["a", "a", "b", "b"]
    assert len(plan.unplaced) == 3
    assert plan.unplaced[0].reason == (
        f"0/2 nodes are available: 2 {REASON}. preemption: 0/2 nodes are available: "
        "2 No preemption victims found for incoming pod..")


def test_node_affinity_policy_honor_ignores_domains_the_agent_cannot_use() -> None:
    """Zone c has no gold node: with Honor it is no domain of the agents, with Ignore it is
    a domain stuck at 0 that caps every other zone at maxSkew."""
    def scenario(policy: str) -> list[str]:
        zones, _, _ = plan_zones(
            zoned("a1", "a", tier="gold"), zoned("b1", "b", tier="gold"), zoned("c1", "c"),
            *(agent(f"x{i}", spread(nodeAffinityPolicy=policy), node_selector={"tier": "gold"})
              for i in range(4)))
        return zones

    assert scenario("Honor") == ["a", "a", "b", "b"]
    assert scenario("Ignore") == ["a", "b"]


def test_node_taints_policy_honor_drops_the_tainted_zone() -> None:
    tainted = node("c1", labels={"zone": "c"},
                   taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])

    def placed(policy: str) -> int:
        zones, _, _ = plan_zones(
            zoned("a1", "a"), zoned("b1", "b"), tainted,
            *(agent(f"x{i}", spread(nodeTaintsPolicy=policy)) for i in range(4)))
        return len(zones)

    assert placed("Honor") == 4
    assert placed("Ignore") == 2


def test_an_agent_outside_its_own_selector_adds_nothing_and_goes_where_skew_allows() -> None:
    zones, _, _ = plan_zones(
        zoned("a1", "a"), zoned("b1", "b"),
        *(running(f"r{i}", "a1") for i in range(3)), running("rb", "b1"),
        *(agent(f"x{i}", labels={"app": "db"}) for i in range(4)))
    assert zones == ["b"] * 4


def test_agents_and_pods_of_another_namespace_do_not_count() -> None:
    zones, _, _ = plan_zones(
        zoned("a1", "a"), zoned("b1", "b"),
        *(running(f"r{i}", "a1", namespace="other") for i in range(5)),
        *(agent(f"x{i}", namespace="team") for i in range(4)))
    assert zones == ["a", "a", "b", "b"]


def test_agents_of_another_namespace_in_the_same_window_do_not_count() -> None:
    snap = build_snapshot(inventory(
        zoned("a1", "a"), zoned("b1", "b"),
        agent("x1", namespace="team"), agent("x2", namespace="team"),
        pod("o1", namespace="other", labels=APP), pod("o2", namespace="other", labels=APP)))
    plan = {"team/x1": "a1", "team/x2": "b1", "other/o1": "a1", "other/o2": "a1"}
    assert RULE.verify(plan, snap) == []


def test_the_verifier_rejects_a_plan_no_binding_order_can_produce() -> None:
    snap = build_snapshot(inventory(
        zoned("a1", "a"), zoned("b1", "b"), *(agent(f"x{i}") for i in range(3))))
    bad = RULE.verify({"default/x0": "a1", "default/x1": "a1", "default/x2": "a1"}, snap)
    assert [v.agent for v in bad] == ["default/x1", "default/x2"]
    assert all(v.message.startswith(f"{REASON}: ") for v in bad)
    assert RULE.verify({"default/x0": "a1", "default/x1": "a1", "default/x2": "b1"}, snap) == []


def test_the_verifier_finds_an_order_that_needs_an_unconstrained_pod_first() -> None:
    """A plain web pod bound into zone b raises the minimum so the spread agent may join a."""
    snap = build_snapshot(inventory(
        zoned("a1", "a"), zoned("b1", "b"), running("r1", "a1"),
        agent("x1"), pod("plain", labels=APP)))
    assert RULE.verify({"default/x1": "a1", "default/plain": "b1"}, snap) == []
    assert RULE.verify({"default/x1": "a1"}, snap) != []


def test_the_verifier_rejects_a_missing_key_with_kube_words() -> None:
    snap = build_snapshot(inventory(zoned("a1", "a"), node("bare"), agent("x1")))
    [v] = RULE.verify({"default/x1": "bare"}, snap)
    assert (v.rule, v.node, v.message) == ("PodTopologySpread", "bare", LABEL_REASON)


def test_zone_and_hostname_constraints_bind_level_by_level() -> None:
    """Five agents, zone + hostname maxSkew 1, two empty hosts per zone. The encoding before
    case 4 ordered by zone and bounded hosts order-free (one agent per empty host: 4 placed,
    the greedy's 5 returned as FEASIBLE without a bound). Level by level (every host to 1,
    then one host to 2) all five bind, and the solver proves it."""
    inv = inventory(
        zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b"), zoned("b2", "b"),
        *(agent(f"x{i}", spread(), spread(key="kubernetes.io/hostname")) for i in range(5)))
    plan = optimize(inv, SOLVE)
    assert len(plan.placements) == 5 and plan.verified
    assert plan.status == "OPTIMAL" and plan.bound is not None
    assert not any("conservative rule encoding" in w for w in plan.warnings)
    assert sorted(Counter(plan.assignment().values()).values()) == [1, 1, 1, 2]


# --- the encoding and the verifier against a brute-force order search -------------------------

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


# --- zone + hostname (case 4) against a brute-force order search ----------------------------


def nested(hosts: list[int], run: list[int], s1: int, s2: int, agents: int) -> Snapshot:
    """Host h{i} in zone z{hosts[i]} with run[i] app=web pods; `agents` web agents with
    zone (maxSkew s1) and hostname (maxSkew s2) constraints."""
    objs: list[dict[str, Any]] = [zoned(f"h{i}", f"z{z}") for i, z in enumerate(hosts)]
    for i, r in enumerate(run):
        objs += [running(f"r{i}-{k}", f"h{i}") for k in range(r)]
    objs += [agent(f"w{i}", spread(max_skew=s1), spread(key="kubernetes.io/hostname",
                                                        max_skew=s2)) for i in range(agents)]
    return build_snapshot(inventory(*objs))


def nested_brute_force(hosts: list[int], running: list[int], final: list[int], s1: int,
                       s2: int) -> bool:
    """Is there an order binding final[h] agents to each host, each passing kube's Filter?"""
    zones = max(hosts) + 1

    @cache
    def search(left: tuple[int, ...]) -> bool:
        if not any(left):
            return True
        cur = [r + f - k for r, f, k in zip(running, final, left, strict=True)]
        z = [sum(c for c, zz in zip(cur, hosts, strict=True) if zz == v) for v in range(zones)]
        for h, k in enumerate(left):
            if k and z[hosts[h]] + 1 - min(z) <= s1 and cur[h] + 1 - min(cur) <= s2:
                if search(tuple(v - (e == h) for e, v in enumerate(left))):
                    return True
        return False

    return search(tuple(final))


def test_zone_and_hostname_max_skew_two_binds_in_blocks_of_two_levels() -> None:
    """Zone a has hosts h0, h2, h3, zone b only h1; hostname maxSkew 2. Hosts 1/3/1/1 bind
    (h1, h0, h1, h2, h3, h1), but neither the order-free bound (h1 above 0 + 2) nor level by
    level (after level 1, zone a leads 3 to 1) shows it: blocks of two levels do."""
    hosts, final = [0, 1, 0, 0], [1, 3, 1, 1]
    snap = nested(hosts, [0, 0, 0, 0], 1, 2, sum(final))
    ix = Index(snap)
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    for h, k in enumerate(final):
        counts[0, snap.node_pos[f"h{h}"]] = k
    assert nested_brute_force(hosts, [0, 0, 0, 0], final, 1, 2)
    assert encoding_accepts(snap, counts)


@st.composite
def nested_plans(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], int, int]:
    zones = draw(st.integers(2, 3))
    hosts = list(range(zones)) + draw(st.lists(st.integers(0, zones - 1), max_size=2))
    running = [draw(st.sampled_from([0, 0, 1, 2])) for _ in hosts]
    final = [draw(st.integers(0, 3)) for _ in hosts]
    return hosts, running, final, draw(st.integers(1, 2)), draw(st.integers(1, 2))


@SETTINGS
@given(nested_plans())
# final states passing both constraints' case-1 conditions that no order reaches: zone z0's one
# host must lead by two, which the zone check forbids once the hosts of z1 catch up
@example(([1, 1, 0], [0, 0, 0], [2, 2, 3], 1, 1))
@example(([1, 1, 0], [2, 0, 0], [0, 2, 3], 1, 1))
@example(([1, 0, 1], [1, 2, 2], [2, 2, 1], 2, 1))
def test_zone_and_hostname_levels_are_sound_and_exact_for_host_max_skew_one(
        case_: tuple[list[int], list[int], list[int], int, int]) -> None:
    hosts, run, final, s1, s2 = case_
    snap = nested(hosts, run, s1, s2, sum(final))
    ix = Index(snap)
    assignment: dict[str, str] = {}
    for h, k in enumerate(final):
        for _ in range(k):
            assignment[f"default/w{len(assignment)}"] = f"h{h}"
    valid = nested_brute_force(hosts, run, final, s1, s2)
    assert (RULE.verify(assignment, snap) == []) == valid, case_
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    for a, n in assignment.items():
        counts[ix.class_of[snap.agent_pos[a]], snap.node_pos[n]] += 1
    accepted = encoding_accepts(snap, counts)
    assert not accepted or valid, ("the encoding accepted an invalid plan", case_)
    if s2 == 1:
        assert accepted == valid, ("the encoding rejected a valid plan", case_)


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    domains = draw(st.integers(1, 3))
    other = draw(st.sampled_from(["none", "self-free", "own-group", "plain"]))
    return {
        "domains": domains,
        "running": [draw(st.integers(0, 4)) for _ in range(domains)],
        "max_skew": draw(st.integers(1, 2)),
        "min_domains": draw(st.integers(1, 4)),
        "other": other,
        "n_web": draw(st.integers(1, 4)),
        "n_other": 0 if other == "none" else draw(st.integers(1, 3)),
    }


def build(inst: dict[str, Any]) -> Snapshot:
    """Domain d is node n{d} in zone z{d}; web agents spread app=web; the other class is a
    db agent spreading app=web (self-free), app=db (its own group) or a plain web pod."""
    con = spread(max_skew=inst["max_skew"], minDomains=inst["min_domains"])
    objs: list[dict[str, Any]] = [zoned(f"n{d}", f"z{d}") for d in range(inst["domains"])]
    for d, r in enumerate(inst["running"]):
        objs += [running(f"r{d}-{i}", f"n{d}") for i in range(r)]
    objs += [agent(f"w{i}", con) for i in range(inst["n_web"])]
    for i in range(inst["n_other"]):
        if inst["other"] == "self-free":
            objs.append(agent(f"o{i}", con, labels={"app": "db"}))
        elif inst["other"] == "own-group":
            objs.append(agent(f"o{i}", spread(max_skew=inst["max_skew"],
                                              selector={"matchLabels": {"app": "db"}},
                                              minDomains=inst["min_domains"]),
                              labels={"app": "db"}))
        else:
            objs.append(pod(f"o{i}", labels=APP))
    return build_snapshot(inventory(*objs))


def brute_force(inst: dict[str, Any], counts: tuple[tuple[int, ...], ...]) -> bool:
    """Is there an order binding counts[cls][d] agents of each class to each domain? Written
    from kube's Filter alone: class 0 = web (app=web, spreads app=web), class 1 = the other."""
    nd, s, md = inst["domains"], inst["max_skew"], inst["min_domains"]
    other = inst["other"]

    def ok(cls: int, d: int, web: tuple[int, ...], db: tuple[int, ...]) -> bool:
        if cls == 1 and other == "plain":
            return True
        own = db if (cls == 1 and other == "own-group") else web
        self_match = 0 if (cls == 1 and other == "self-free") else 1
        lo = 0 if nd < md else min(own)
        return own[d] + self_match - lo <= s

    @cache
    def search(left: tuple[tuple[int, ...], ...], web: tuple[int, ...], db: tuple[int, ...]
               ) -> bool:
        if not any(any(row) for row in left):
            return True
        for cls, d in itertools.product(range(len(left)), range(nd)):
            if left[cls][d] and ok(cls, d, web, db):
                nleft = tuple(tuple(v - (c == cls and e == d) for e, v in enumerate(row))
                              for c, row in enumerate(left))
                adds_web = cls == 0 or other == "plain"
                nweb = tuple(v + (adds_web and e == d) for e, v in enumerate(web))
                ndb = tuple(v + (cls == 1 and other == "own-group" and e == d)
                            for e, v in enumerate(db))
                if search(nleft, nweb, ndb):
                    return True
        return False

    return search(counts, tuple(inst["running"]), (0,) * nd)


def encoding_accepts(snap: Snapshot, counts: np.ndarray) -> bool:
    ix = Index(snap)
    _, full = prefilter(ix)
    full &= RULE.prefilter(ix) if RULE.prefilter(ix) is not None else True
    if (counts > 0)[~full].any():
        return False
    cls, node_, upper = candidate_pairs(ix, full)
    mb = ModelBuilder(ix, cls, node_, upper)
    mb.build_variables()
    RULE.encode(mb, ix)
    for p, (c, n) in enumerate(zip(cls.tolist(), node_.tolist(), strict=True)):
        mb.model.add(mb.x[p] == int(counts[c, n]))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    return solver.solve(mb.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)


@st.composite
def instance_and_plan(draw: st.DrawFn) -> tuple[dict[str, Any], list[list[int]]]:
    inst = draw(instances())
    plan = []
    for size in (inst["n_web"], inst["n_other"]):
        row = [0] * inst["domains"]
        for _ in range(draw(st.integers(0, size))):
            row[draw(st.integers(0, inst["domains"] - 1))] += 1
        plan.append(row)
    return inst, plan


@SETTINGS
@given(instance_and_plan())
def test_verify_is_exact_and_the_encoding_sound_against_brute_force(
        case_: tuple[dict[str, Any], list[list[int]]]) -> None:
    inst, plan = case_
    snap = build(inst)
    ix = Index(snap)
    assignment: dict[str, str] = {}
    taken = {"w": 0, "o": 0}
    for row_i, row in enumerate(plan):
        prefix = "wo"[row_i]
        for d, k in enumerate(row):
            for _ in range(k):
                assignment[f"default/{prefix}{taken[prefix]}"] = f"n{d}"
                taken[prefix] += 1
    valid = brute_force(inst, tuple(tuple(r) for r in plan[: 1 + (inst["n_other"] > 0)]))
    assert (RULE.verify(assignment, snap) == []) == valid, (inst, plan)
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    for a, n in assignment.items():
        counts[ix.class_of[snap.agent_pos[a]], snap.node_pos[n]] += 1
    accepted = encoding_accepts(snap, counts)
    assert not accepted or valid, ("the encoding accepted an invalid plan", inst, plan)
    if inst["other"] != "plain":
        # closed groups (and a selfMatch=0 class, bound first or last): the encoding is exact
        assert accepted == valid, ("the encoding rejected a valid plan", inst, plan)


@SETTINGS
@given(instances())
def test_greedy_binds_one_valid_agent_at_a_time(inst: dict[str, Any]) -> None:
    snap = build(inst)
    ix = Index(snap)
    node_of = greedy(ix, prefilter(ix)[0])
    assignment = {snap.pending[a].ref: snap.nodes[n].name
                  for a, n in enumerate(node_of.tolist()) if n >= 0}
    assert RULE.verify(assignment, snap) == []
    assert counts_from_assignment(ix, node_of).sum() == len(assignment)
    plan = optimize(snap, SOLVE)
    assert plan.verified
    assert plan.objective_terms["placed_agents"] >= counts_from_assignment(ix, node_of).sum() \
        or inst["other"] == "plain"


def test_the_verifier_gives_up_as_a_violation_when_the_search_budget_runs_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import optimizer.rules.topology_spread as ts

    monkeypatch.setattr(ts, "SEARCH_BUDGET", 1)
    # this plan is provable without search (water-filling): exercise the search itself
    monkeypatch.setattr(ts, "_water_filling_suffices", lambda *args: False)
    snap = build_snapshot(inventory(
        zoned("a1", "a"), zoned("b1", "b"), *(agent(f"x{i}") for i in range(4))))
    bad = RULE.verify({f"default/x{i}": f"{'ab'[i % 2]}1" for i in range(4)}, snap)
    assert bad and all("search steps" in v.message for v in bad)


HOST = "kubernetes.io/hostname"


@st.composite
def mixed(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int | None]]:
    """Two zones of one or two hosts, running web/db pods, up to five agents each with zone
    and/or hostname constraints on web or db, and a random plan (node index or unplaced)."""
    hosts = [("a", 0), ("b", 0)] + [(z, 1) for z in ("a", "b") if draw(st.booleans())]
    objs: list[dict[str, Any]] = [zoned(f"{z}{h}", z) for z, h in hosts]
    for z, h in hosts:
        for i in range(draw(st.integers(0, 2))):
            app = draw(st.sampled_from(["web", "db"]))
            objs.append(running(f"r-{z}{h}-{i}", f"{z}{h}", labels={"app": app}))
    plan: list[int | None] = []
    for i in range(draw(st.integers(1, 5))):
        cons = [spread(key=key, max_skew=draw(st.integers(1, 2)),
                       selector={"matchLabels": {"app": draw(st.sampled_from(["web", "db"]))}},
                       minDomains=draw(st.integers(1, 3)))
                for key in ("zone", HOST) if draw(st.booleans())]
        p = pod(f"x{i}", labels={"app": draw(st.sampled_from(["web", "db"]))})
        p["spec"]["topologySpreadConstraints"] = cons
        objs.append(p)
        plan.append(draw(st.one_of(st.none(), st.integers(0, len(hosts) - 1))))
    return objs, plan


def brute_force_mixed(objs: list[dict[str, Any]], plan: list[int | None]) -> bool:
    """Any order of the placed agents in which each passes kube's Filter, from the raw dicts."""
    nodes = [o for o in objs if o["kind"] == "Node"]
    agents = [o for o in objs if o["kind"] == "Pod" and "nodeName" not in o["spec"]]
    bound0 = [(o["metadata"]["labels"]["app"], o["spec"]["nodeName"])
              for o in objs if o["kind"] == "Pod" and "nodeName" in o["spec"]]
    placed = [(a, nodes[n]["metadata"]["name"]) for a, n in zip(agents, plan, strict=True)
              if n is not None]
    labels = {n["metadata"]["name"]: n["metadata"]["labels"] for n in nodes}

    def ok(a: dict[str, Any], at: str, bound: list[tuple[str, str]]) -> bool:
        for c in a["spec"]["topologySpreadConstraints"]:
            key, sel = c["topologyKey"], c["labelSelector"]["matchLabels"]["app"]
            domains = {lb[key] for lb in labels.values()}
            count = {d: 0 for d in domains}
            for app, on in bound:
                if app == sel:
                    count[labels[on][key]] += 1
            lo = 0 if len(domains) < c["minDomains"] else min(count.values())
            me = int(a["metadata"]["labels"]["app"] == sel)
            if count[labels[at][key]] + me - lo > c["maxSkew"]:
                return False
        return True

    @cache
    def search(done: frozenset[int]) -> bool:
        if len(done) == len(placed):
            return True
        bound = bound0 + [(placed[i][0]["metadata"]["labels"]["app"], placed[i][1])
                          for i in done]
        return any(search(done | {i}) for i in range(len(placed))
                   if i not in done and ok(placed[i][0], placed[i][1], bound))

    return search(frozenset())


@SETTINGS
@given(mixed())
def test_several_constraints_and_foreign_counts_verify_exactly_and_encode_soundly(
        case_: tuple[list[dict[str, Any]], list[int | None]]) -> None:
    objs, plan = case_
    snap = build_snapshot(inventory(*objs))
    names = sorted(o["metadata"]["name"] for o in objs if o["kind"] == "Node")
    node_names = [o["metadata"]["name"] for o in objs if o["kind"] == "Node"]
    assignment = {f"default/x{i}": node_names[n] for i, n in enumerate(plan) if n is not None}
    valid = brute_force_mixed(objs, plan)
    assert (RULE.verify(assignment, snap) == []) == valid, (objs, plan)
    ix = Index(snap)
    counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
    for a, n in assignment.items():
        counts[ix.class_of[snap.agent_pos[a]], snap.node_pos[n]] += 1
    assert names == list(ix.node_names)
    assert not encoding_accepts(snap, counts) or valid, ("accepted an invalid plan", objs, plan)
    node_of = greedy(ix, prefilter(ix)[0])  # the greedy checks kube's Filter at every bind
    assert RULE.verify({snap.pending[a].ref: snap.nodes[n].name
                        for a, n in enumerate(node_of.tolist()) if n >= 0}, snap) == []


HEAVY = settings(max_examples=4000, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@HEAVY
@given(instance_and_plan())
def test_heavy_one_group_against_brute_force(
        case_: tuple[dict[str, Any], list[list[int]]]) -> None:
    test_verify_is_exact_and_the_encoding_sound_against_brute_force.hypothesis.inner_test(case_)


@pytest.mark.slow
@HEAVY
@given(mixed())
def test_heavy_mixed_constraints_against_brute_force(
        case_: tuple[list[dict[str, Any]], list[int | None]]) -> None:
    test_several_constraints_and_foreign_counts_verify_exactly_and_encode_soundly.hypothesis \
        .inner_test(case_)
