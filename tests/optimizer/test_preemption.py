"""Priority preemption and PodDisruptionBudgets, decided in the same solve as the placements.

Each case states the cluster, the window, and what kube's DefaultPreemption (or the batch
reading) implies: which pods go, which stay, and for whom.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from models import Pod
from optimizer import SolveConfig, optimize
from optimizer.baseline import counts_from_assignment, greedy_plan
from optimizer.index import Index
from optimizer.preemption import find_victims, lost_minutes
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from optimizer.verify import verify
from tests.builders import inventory, node, pod, taint

FAST = SolveConfig(time_limit=5, workers=2)


def pdb(name: str, labels: dict[str, str], allowed: int, namespace: str = "default"
        ) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, "maxUnavailable": 1},
            "status": {"disruptionsAllowed": allowed}}


def priority_class(name: str, value: int, policy: str = "PreemptLowerPriority") -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "preemptionPolicy": policy}


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    obj["spec"].update(spec)
    return obj


def with_annotations(obj: dict[str, Any], **annotations: str) -> dict[str, Any]:
    obj["metadata"]["annotations"] = annotations
    return obj


def evicted(objects: list[dict[str, Any]], cfg: SolveConfig = FAST) -> tuple[set[str], dict[str, str]]:
    plan = optimize(inventory(*objects), cfg)
    assert plan.verified
    return {e.pod for e in plan.evictions}, plan.assignment()


CASES = [
    ("a higher-priority agent evicts the lower-priority pod that fills the only node",
     [node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=0), pod("hi", "2", priority=100)],
     {"default/low"}, {"default/hi": "n1"}),
    ("an agent of equal priority never preempts",
     [node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=100), pod("hi", "2", priority=100)],
     set(), {}),
    ("preemptionPolicy Never in the pod spec never preempts",
     [node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=0),
      with_spec(pod("hi", "2", priority=100), preemptionPolicy="Never")],
     set(), {}),
    ("preemptionPolicy Never from the PriorityClass never preempts",
     [priority_class("polite", 100, "Never"), node("n1", cpu="2"),
      pod("low", "2", node_name="n1", priority=0), pod("hi", "2", priority_class="polite")],
     set(), {}),
    ("a priority from the PriorityClass preempts a pod of a lower class",
     [priority_class("high", 1000), priority_class("low", 10), node("n1", cpu="2"),
      pod("low", "2", node_name="n1", priority_class="low"), pod("hi", "2", priority_class="high")],
     {"default/low"}, {"default/hi": "n1"}),
    ("no eviction where a free node fits",
     [node("n1", cpu="2"), node("n2", cpu="2"), pod("low", "2", node_name="n1", priority=0),
      pod("hi", "2", priority=100)],
     set(), {"default/hi": "n2"}),
    ("never evict on a node whose taint the agent does not tolerate (unresolvable)",
     [node("n1", cpu="2", taints=[taint("dedicated", "batch")]),
      pod("low", "2", node_name="n1", priority=0, tolerations=[{"operator": "Exists"}]),
      pod("hi", "2", priority=100)],
     set(), {}),
    ("only as many victims as needed: one of three small pods goes, the lowest priority",
     [node("n1", cpu="3"), pod("v5", "1", node_name="n1", priority=5),
      pod("v1", "1", node_name="n1", priority=1), pod("v9", "1", node_name="n1", priority=9),
      pod("hi", "1", priority=100)],
     {"default/v1"}, {"default/hi": "n1"}),
    ("preemption picks the node with the lower-priority victim",
     [node("n1", cpu="2"), node("n2", cpu="2"), pod("peer", "2", node_name="n1", priority=100),
      pod("low", "2", node_name="n2", priority=10), pod("hi", "2", priority=100)],
     {"default/low"}, {"default/hi": "n2"}),
    ("preemption picks the node with fewer victims at the same priority",
     [node("n1", cpu="2"), node("n2", cpu="2"), pod("a1", "1", node_name="n1", priority=10),
      pod("a2", "1", node_name="n1", priority=10), pod("b", "2", node_name="n2", priority=10),
      pod("hi", "2", priority=100)],
     {"default/b"}, {"default/hi": "n2"}),
    ("a PDB with no disruptions left protects its pod; the unprotected one goes instead",
     [node("n1", cpu="2"), node("n2", cpu="2"),
      pod("web", "2", node_name="n1", priority=0, labels={"app": "web"}),
      pod("batch", "2", node_name="n2", priority=50), pdb("web-pdb", {"app": "web"}, 0),
      pod("hi", "2", priority=100)],
     {"default/batch"}, {"default/hi": "n2"}),
    ("a PDB with disruptions left allows the eviction",
     [node("n1", cpu="2"), pod("web", "2", node_name="n1", priority=0, labels={"app": "web"}),
      pdb("web-pdb", {"app": "web"}, 1), pod("hi", "2", priority=100)],
     {"default/web"}, {"default/hi": "n1"}),
    ("a PDB in another namespace does not protect the pod",
     [node("n1", cpu="2"), pod("web", "2", node_name="n1", priority=0, labels={"app": "web"}),
      pdb("web-pdb", {"app": "web"}, 0, namespace="other"), pod("hi", "2", priority=100)],
     {"default/web"}, {"default/hi": "n1"}),
    ("a hard PDB budget of one lets only one of two agents preempt",
     [node("n1", cpu="2"), node("n2", cpu="2"),
      pod("w1", "2", node_name="n1", priority=0, labels={"app": "web"}),
      pod("w2", "2", node_name="n2", priority=0, labels={"app": "web"}),
      pdb("web-pdb", {"app": "web"}, 1), pod("hi-1", "2", priority=100), pod("hi-2", "2", priority=100)],
     1, 1),
    ("in one batch, two agents each preempt on their own node",
     [node("n1", cpu="2"), node("n2", cpu="2"), pod("l1", "2", node_name="n1", priority=0),
      pod("l2", "2", node_name="n2", priority=0), pod("hi-1", "2", priority=100),
      pod("hi-2", "2", priority=100)],
     {"default/l1", "default/l2"}, 2),
    ("a pod the agent's required anti-affinity matches is not evicted to make room for it",
     [node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=0, labels={"app": "x"}),
      pod("hi", "2", priority=100, labels={"app": "y"}, affinity={"podAntiAffinity": {
          "requiredDuringSchedulingIgnoredDuringExecution": [{
              "labelSelector": {"matchLabels": {"app": "x"}},
              "topologyKey": "kubernetes.io/hostname"}]}})],
     set(), {}),
    ("the freed room also takes lower-priority agents of the window",
     [node("n1", cpu="4"), pod("low", "4", node_name="n1", priority=0),
      pod("hi", "2", priority=100), pod("mid", "2", priority=50)],
     {"default/low"}, {"default/hi": "n1", "default/mid": "n1"}),
]


@pytest.mark.parametrize(("objects", "gone", "placed"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_preemption_table(objects: list[dict[str, Any]], gone: set[str] | int,
                          placed: dict[str, str] | int) -> None:
    got_gone, got_placed = evicted(objects)
    if isinstance(gone, int):
        assert len(got_gone) == gone
    else:
        assert got_gone == gone
    if isinstance(placed, int):
        assert len(got_placed) == placed
    else:
        assert got_placed == placed


def test_no_preemption_option_keeps_every_running_pod() -> None:
    objects = [node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=0),
               pod("hi", "2", priority=100)]
    gone, placed = evicted(objects, SolveConfig(time_limit=5, preemption=False))
    assert gone == set() and placed == {}


def test_best_effort_pdb_evicts_the_protected_pod_only_when_nothing_else_works() -> None:
    objects = [node("n1", cpu="2"), pod("web", "2", node_name="n1", priority=0, labels={"app": "web"}),
               pdb("web-pdb", {"app": "web"}, 0), pod("hi", "2", priority=100)]
    assert evicted(objects, FAST) == (set(), {})
    plan = optimize(inventory(*objects), SolveConfig(time_limit=5, pdb_mode="best-effort"))
    assert [e.pod for e in plan.evictions] == ["default/web"]
    assert "web-pdb" in plan.evictions[0].reason


def test_best_effort_pdb_still_prefers_an_unprotected_victim() -> None:
    objects = [node("n1", cpu="2"), node("n2", cpu="2"),
               pod("web", "2", node_name="n1", priority=0, labels={"app": "web"}),
               pod("batch", "2", node_name="n2", priority=0), pdb("web-pdb", {"app": "web"}, 0),
               pod("hi", "2", priority=100)]
    gone, placed = evicted(objects, SolveConfig(time_limit=5, pdb_mode="best-effort"))
    assert gone == {"default/batch"} and placed == {"default/hi": "n2"}


def test_the_eviction_names_the_agent_it_makes_room_for_and_kubes_reason() -> None:
    plan = optimize(inventory(node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=3),
                              pod("hi", "2", priority=100)), FAST)
    (e,) = plan.evictions
    assert (e.pod, e.node, e.agent, e.priority) == ("default/low", "n1", "default/hi", 3)
    assert e.reason.startswith("PreemptionByScheduler: ")
    terms = plan.objective_terms
    assert terms["evictions"] == 1 and terms["evicted_priority"] == 3
    assert terms["terms"]["preemption"]["value"] >= 1


def test_lost_work_breaks_ties_towards_the_recent_checkpoint() -> None:
    now = "2026-01-01T12:00:00Z"
    objects = [
        node("n1", cpu="2"), node("n2", cpu="2"),
        with_annotations(pod("old", "2", node_name="n1", priority=0),
                         **{"agentplace.io/last-checkpoint": "2026-01-01T09:00:00Z"}),
        with_annotations(pod("fresh", "2", node_name="n2", priority=0),
                         **{"agentplace.io/last-checkpoint": "2026-01-01T11:55:00Z"}),
        pod("hi", "2", priority=100)]
    inv = inventory(*objects)
    ix = Index(build_snapshot(inv))
    at = datetime.fromisoformat(now.replace("Z", "+00:00"))
    v = find_victims(ix, now=at)
    assert sorted(v.damage.tolist()) == [1 + 5, 1 + 180]
    plan = optimize(inv, SolveConfig(time_limit=5, now=at))
    assert [e.pod for e in plan.evictions] == ["default/fresh"]
    assert plan.objective_terms["terms"]["preemption"]["value"] == 6


def test_lost_minutes_reads_the_checkpoint_then_the_start_time() -> None:
    p = Pod.model_validate(with_annotations(pod("p", node_name="n"),
                                            **{"agentplace.io/last-checkpoint": "bad"}))
    assert lost_minutes(p, datetime(2026, 1, 1, tzinfo=UTC)) == 0
    p2 = Pod.model_validate({**pod("p", node_name="n"),
                             "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"}})
    assert lost_minutes(p2, datetime(2026, 1, 1, 0, 30, tzinfo=UTC)) == 30
    assert lost_minutes(p2, datetime(2026, 3, 1, tzinfo=UTC)) == 24 * 60


def test_the_greedy_baseline_preempts_like_kube() -> None:
    snap = build_snapshot(inventory(
        node("n1", cpu="3"), node("n2", cpu="3"),
        pod("a", "1", node_name="n1", priority=20), pod("b", "2", node_name="n1", priority=5),
        pod("c", "3", node_name="n2", priority=30), pod("hi", "2", priority=100)))
    ix = Index(snap)
    ix.victims = find_victims(ix)
    static, _ = prefilter(ix)
    nodes, gone = greedy_plan(ix, static)
    assert ix.node_names[int(nodes[0])] == "n1"
    refs = {snap.running[int(ix.victims.pods[v])].ref for v in np.nonzero(gone)[0]}
    assert refs == {"default/b"}  # a is reprieved: the lowest-priority victim is enough
    assert counts_from_assignment(ix, nodes).sum() == 1


def test_the_solver_never_places_less_priority_than_the_preempting_greedy() -> None:
    objects = [node(f"n{i}", cpu="4") for i in range(4)]
    objects += [pod(f"r{i}", "3", node_name=f"n{i}", priority=i) for i in range(4)]
    objects += [pod(f"p{i}", "2", priority=50 + i) for i in range(6)]
    plan = optimize(inventory(*objects), FAST)
    assert plan.objective_terms["priority_weight"] >= plan.baseline["priority_weight"]
    assert len(plan.placements) == 6


# --- the verifier ------------------------------------------------------------------------------

@pytest.fixture
def snap():
    return build_snapshot(inventory(
        priority_class("polite", 100, "Never"),
        node("n1", cpu="2"), node("n2", cpu="2"), node("n3", cpu="2"),
        pod("low", "2", node_name="n1", priority=0, labels={"app": "web"}),
        pod("other", "1", node_name="n2", priority=0),
        pod("top", "2", node_name="n3", priority=1000),
        pod("hi", "2", priority=100), pod("nice", "2", priority_class="polite"),
        pdb("web-pdb", {"app": "web"}, 0)))


BROKEN = [
    ("a pod evicted for an agent of equal or lower priority", [("default/hi", "n3")],
     [("default/top", "n3", "default/hi")], "not lower than"),
    ("an eviction for an agent placed elsewhere", [("default/hi", "n1")],
     [("default/other", "n2", "default/hi")], "not placed on n2"),
    ("an eviction for an agent whose preemptionPolicy is Never", [("default/nice", "n1")],
     [("default/low", "n1", "default/nice")], "preemptionPolicy is Never"),
    ("an eviction beyond a hard PDB budget", [("default/hi", "n1")],
     [("default/low", "n1", "default/hi")], "disruptionsAllowed 0"),
    ("a pod that is not running", [("default/hi", "n1")],
     [("default/ghost", "n1", "default/hi")], "not a running pod"),
    ("a pod named on the wrong node", [("default/hi", "n1")],
     [("default/low", "n2", "default/hi")], "runs on n1"),
    ("placements that need an eviction the plan does not make", [("default/hi", "n1")], [],
     "Insufficient cpu"),
]


@pytest.mark.parametrize(("placements", "evictions", "message"), [c[1:] for c in BROKEN],
                         ids=[c[0] for c in BROKEN])
def test_verifier_rejects(snap, placements, evictions, message) -> None:
    found = verify(placements, snap, evictions=evictions, pdb_mode="hard")
    assert any(message in str(v) for v in found), found


def test_verifier_rejects_an_unnecessary_eviction() -> None:
    snap = build_snapshot(inventory(node("n1", cpu="4"), pod("low", "1", node_name="n1", priority=0),
                                    pod("hi", "1", priority=100)))
    found = verify([("default/hi", "n1")], snap, evictions=[("default/low", "n1", "default/hi")])
    assert any("unnecessary" in str(v) for v in found)


def test_verifier_accepts_a_best_effort_pdb_violation_only_in_that_mode(snap) -> None:
    plan = [("default/hi", "n1")]
    ev = [("default/low", "n1", "default/hi")]
    assert verify(plan, snap, evictions=ev, pdb_mode="hard")
    assert verify(plan, snap, evictions=ev, pdb_mode="best-effort") == []


# --- explanations: kube's PostFilter part and the eviction counterfactual ------------------------

def unplaced(objects: list[dict[str, Any]], cfg: SolveConfig = FAST) -> tuple[str, str | None]:
    plan = optimize(inventory(*objects), cfg)
    (u,) = plan.unplaced
    return u.reason, u.counterfactual


def test_never_preempting_agent_gets_kubes_message_and_the_eviction_counterfactual() -> None:
    reason, cf = unplaced([node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=0),
                           with_spec(pod("hi", "2", priority=100), preemptionPolicy="Never")])
    assert reason == ("0/1 nodes are available: 1 Insufficient cpu. "
                      "preemption: not eligible due to preemptionPolicy=Never.")
    assert cf == ("fits on n1 if 1 pod(s) of priority <= 0 there were evicted (default/low); "
                  "its preemptionPolicy is Never")


def test_a_pdb_blocked_preemption_says_so_and_names_the_pdb() -> None:
    reason, cf = unplaced([node("n1", cpu="2"),
                           pod("web", "2", node_name="n1", priority=0, labels={"app": "web"}),
                           pdb("web-pdb", {"app": "web"}, 0), pod("hi", "2", priority=100)])
    assert reason.endswith("preemption: 0/1 nodes are available: 1 Evicting the lower-priority "
                           "pods would exceed a PodDisruptionBudget.")
    assert cf == ("fits on n1 if 1 pod(s) of priority <= 0 there were evicted (default/web) "
                  "(blocked by PDB default/web-pdb)")


def test_no_lower_priority_pods_and_unresolvable_nodes_read_like_kube() -> None:
    reason, _ = unplaced([node("n1", cpu="2"), node("n2", cpu="8", taints=[taint("gpu")]),
                          pod("peer", "2", node_name="n1", priority=100),
                          pod("hi", "2", priority=100)])
    assert reason == ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated "
                      "taint {gpu: }. preemption: 0/2 nodes are available: 1 No preemption "
                      "victims found for incoming pod., 1 Preemption is not helpful for "
                      "scheduling.")


def test_preemption_off_names_the_eviction_that_would_place_it() -> None:
    _, cf = unplaced([node("n1", cpu="2"), pod("low", "2", node_name="n1", priority=0),
                      pod("hi", "2", priority=100)], SolveConfig(time_limit=5, preemption=False))
    assert cf == ("fits on n1 if 1 pod(s) of priority <= 0 there were evicted (default/low); "
                  "preemption is off for this solve")


def test_the_dry_runs_read_each_nodes_own_pods() -> None:
    """postfilter groups the cluster's bound pods per node once for all its dry runs (a scan of
    every pod per node took 97 % of an over-full openb window): each node's victims must still be
    that node's own pods."""
    _, cf = unplaced([node("n1", cpu="2"), node("n2", cpu="2"), node("n3", cpu="2"),
                      pod("peer", "2", node_name="n1", priority=100),
                      pod("a", "1", node_name="n3", priority=0),
                      pod("b", "1", node_name="n3", priority=0),
                      pod("low", "2", node_name="n2", priority=0),
                      with_spec(pod("hi", "2", priority=100), preemptionPolicy="Never")])
    assert cf == ("fits on n2 if 1 pod(s) of priority <= 0 there were evicted (default/low); "
                  "its preemptionPolicy is Never")
