"""Scenario files: every bad field named (change, field, why); each change kind applied purely."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from models import InputErrors
from models.scenario import apply_scenario, load_scenario, parse_scenario
from tests.builders import inventory, node, pod

ZONE = "topology.kubernetes.io/zone"


def owned(doc: dict[str, Any], kind: str, name: str = "owner") -> dict[str, Any]:
    doc["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": name,
                                           "uid": f"uid-{name}", "controller": True}]
    doc["metadata"]["uid"] = f"uid-{doc['metadata']['name']}"
    return doc


def cluster() -> Any:
    return inventory(
        node("a1", "4", labels={ZONE: "a"}), node("b1", "4", labels={ZONE: "b"}),
        node("b2", "4", labels={ZONE: "b"}),
        owned(pod("web-1", "1", namespace="t", node_name="b1", labels={"app": "web"}), "ReplicaSet"),
        owned(pod("web-2", "1", namespace="t", node_name="b2", labels={"app": "web"}), "ReplicaSet"),
        pod("bare", "1", namespace="t", node_name="b2"),
        owned(pod("logs-b1", "100m", namespace="kube-system", node_name="b1"), "DaemonSet"),
        pod("done", "1", namespace="t", node_name="b1", phase="Succeeded"),
        pod("agent-1", "1", namespace="t", labels={"team": "x"}),
        pod("agent-2", "1", namespace="t", labels={"team": "y"}),
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "t"},
         "spec": {"hard": {"requests.cpu": "10"}}, "status": {"used": {"requests.cpu": "3"}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "web", "namespace": "t"},
         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
         "status": {"disruptionsAllowed": 1}},
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
         "metadata": {"name": "high"}, "value": 1000},
        {"apiVersion": "agentplace.io/v1alpha1", "kind": "TokenBudget",
         "metadata": {"name": "b", "namespace": "t"}, "spec": {"tokens": "1M"}},
    )


def scenario(*changes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "agentplace.io/v1alpha1", "kind": "Scenario",
            "metadata": {"name": "s"}, "changes": list(changes), **extra}


def errors_of(doc: dict[str, Any], inv: Any = None) -> list[str]:
    with pytest.raises(InputErrors) as exc:
        sc = parse_scenario(doc)
        apply_scenario(inv or cluster(), sc)
    return [str(e) for e in exc.value.errors]


PARSE_ERRORS = [
    ("an unknown change kind is named with the allowed ones",
     scenario({"loseNodes": {"names": ["a1"]}}),
     "Scenario s: changes[0].loseNodes: Extra inputs are not permitted"),
    ("two kinds in one change are refused",
     scenario({"removeNodes": {"names": ["a1"]}, "addNodes": {"copyOf": "a1", "count": 1}}),
     "Scenario s: changes[0]: exactly one of removeNodes, drainNodes, addNodes, setQuota, "
     "setTokenBudget, setPriority, addAgents per change, got removeNodes, addNodes"),
    ("a misspelt selector key is an error, not a selector matching every node",
     scenario({"removeNodes": {"selector": {"matchLabel": {ZONE: "b"}}}}),
     "Scenario s: changes[0].removeNodes.selector.matchLabel: Extra inputs are not permitted"),
    ("a node set needs names or a selector",
     scenario({"drainNodes": {}}),
     "Scenario s: changes[0].drainNodes.names: Required value: give names, a selector or both"),
    ("addNodes needs a count of at least one",
     scenario({"addNodes": {"copyOf": "a1", "count": 0}}),
     "Scenario s: changes[0].addNodes.count: Input should be greater than or equal to 1 (got 0)"),
    ("addNodes takes one of copyOf, like and a template",
     scenario({"addNodes": {"copyOf": "a1", "template": node("x"), "count": 1}}),
     "Scenario s: changes[0].addNodes.copyOf: Invalid value: give exactly one of copyOf, like and "
     "template"),
    ("a template node is validated like a loaded one",
     scenario({"addNodes": {"template": {"status": {"allocatable": {"cpu": "4x"}}}, "count": 1}}),
     "Scenario s: changes[0].addNodes.template.status.allocatable.cpu: "),
    ("addAgents copyOf must be namespace/name",
     scenario({"addAgents": {"copyOf": "agent-1", "count": 3}}),
     "Scenario s: changes[0].addAgents.copyOf: Invalid value: 'agent-1': expected namespace/name"),
    ("a quota value must be a quantity",
     scenario({"setQuota": {"namespace": "t", "name": "q", "hard": {"requests.cpu": "lots"}}}),
     "Scenario s: changes[0].setQuota.hard.requests.cpu: "),
    ("a budget change needs tokens or dollars",
     scenario({"setTokenBudget": {"namespace": "t", "name": "b"}}),
     "Scenario s: changes[0].setTokenBudget.tokens: Required value: give tokens, dollars or both"),
    ("setPriority takes a priority or a class, not both",
     scenario({"setPriority": {"agents": {"namespace": "t"}, "priority": 5,
                               "priorityClassName": "high"}}),
     "Scenario s: changes[0].setPriority.priority: Invalid value: give exactly one of priority "
     "and priorityClassName"),
    ("a scenario without changes or solve options asks nothing",
     scenario(),
     "Scenario s: changes: Required value: a scenario needs changes, solve options or both"),
    ("solve options are checked too",
     scenario(solve={"timeLimit": -1}),
     "Scenario s: solve.timeLimit: Input should be greater than 0 (got -1)"),
    ("the kind must be Scenario",
     {**scenario({"removeNodes": {"names": ["a1"]}}), "kind": "Pod"},
     "Scenario s: kind: Input should be 'Scenario' (got 'Pod')"),
]


@pytest.mark.parametrize(("doc", "want"), [c[1:] for c in PARSE_ERRORS],
                         ids=[c[0] for c in PARSE_ERRORS])
def test_parse_errors_name_the_change_the_field_and_why(doc, want):
    assert any(e.startswith(want) for e in errors_of(doc)), errors_of(doc)


APPLY_ERRORS = [
    ("a node name that does not exist",
     scenario({"removeNodes": {"names": ["zz"]}}),
     "Scenario s: changes[0].removeNodes.names[0]: Not found: no Node named 'zz'"),
    ("a selector that selects no node",
     scenario({"drainNodes": {"selector": {"matchLabels": {ZONE: "q"}}}}),
     "Scenario s: changes[0].drainNodes.selector: Invalid value: selects no node"),
    ("copying an unknown node",
     scenario({"addNodes": {"copyOf": "zz", "count": 1}}),
     "Scenario s: changes[0].addNodes.copyOf: Not found: no Node named 'zz'"),
    ("added node names that collide with existing ones",
     scenario({"addNodes": {"copyOf": "a1", "count": 2, "namePrefix": "x"}},
              {"addNodes": {"copyOf": "b1", "count": 1, "namePrefix": "x"}}),
     "Scenario s: changes[1].addNodes.namePrefix: Duplicate value: a Node named 'x-1' already exists"),
    ("an unknown quota",
     scenario({"setQuota": {"namespace": "t", "name": "nope", "hard": {"cpu": "1"}}}),
     "Scenario s: changes[0].setQuota.name: Not found: no ResourceQuota t/nope"),
    ("a dollar budget without a pricing table",
     scenario({"setTokenBudget": {"namespace": "t", "name": "b", "dollars": "5"}}),
     "Scenario s: changes[0].setTokenBudget.dollars: Invalid value: a currency budget needs a "
     "PricingTable in the input to price placements"),
    ("an unknown priority class",
     scenario({"setPriority": {"agents": {"namespace": "t"}, "priorityClassName": "urgent"}}),
     "Scenario s: changes[0].setPriority.priorityClassName: Not found: no PriorityClass with name "
     "urgent was found"),
    ("an agent selector that selects nothing",
     scenario({"setPriority": {"agents": {"namespace": "t", "selector": {"matchLabels": {"team": "z"}}},
                               "priority": 5}}),
     "Scenario s: changes[0].setPriority.agents: Invalid value: selects no pending agent"),
    ("copying an unknown pod",
     scenario({"addAgents": {"copyOf": "t/ghost", "count": 1}}),
     "Scenario s: changes[0].addAgents.copyOf: Not found: no Pod t/ghost"),
]


@pytest.mark.parametrize(("doc", "want"), [c[1:] for c in APPLY_ERRORS],
                         ids=[c[0] for c in APPLY_ERRORS])
def test_references_that_resolve_to_nothing_are_errors(doc, want):
    assert want in errors_of(doc)


def test_every_error_of_a_scenario_is_reported_together():
    errs = errors_of(scenario({"removeNodes": {"names": ["x"]}}, {"addNodes": {"copyOf": "y", "count": 1}}))
    assert len(errs) == 2


def test_load_scenario_reports_yaml_and_document_count(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("metadata: {name: [\n")
    with pytest.raises(InputErrors, match=r"file .*bad.yaml: not valid YAML"):
        load_scenario(bad)
    two = tmp_path / "two.yaml"
    two.write_text("a: 1\n---\nb: 2\n")
    with pytest.raises(InputErrors, match="expected one Scenario document, found 2"):
        load_scenario(two)


def applied(*changes: dict[str, Any]) -> Any:
    inv = cluster()
    before = copy.deepcopy(inv)
    out = apply_scenario(inv, parse_scenario(scenario(*changes)))
    assert inv == before, "apply_scenario must not modify its input"
    return out


def test_remove_nodes_requeues_controlled_pods_and_loses_the_rest():
    out = applied({"removeNodes": {"selector": {"matchLabels": {ZONE: "b"}}}})
    assert [n.name for n in out.inventory.nodes] == ["a1"]
    fates = {e.pod: e.fate for e in out.evictions}
    assert fates == {"t/web-1": "requeued", "t/web-2": "requeued", "t/bare": "lost",
                     "kube-system/logs-b1": "daemonset"}
    pending = {p.ref: p for p in out.inventory.pending}
    assert set(pending) == {"t/agent-1", "t/agent-2", "t/web-1", "t/web-2"}
    assert pending["t/web-1"].metadata.uid == "uid-web-1"  # admitted: quota already charged
    assert out.inventory.running == []
    assert "t/done" not in {p.ref for p in out.inventory.pods}  # a finished pod goes with its node
    assert out.removed_nodes == ["b1", "b2"]


def test_drain_cordons_keeps_daemonsets_and_stops_at_the_disruption_budget():
    out = applied({"drainNodes": {"names": ["b1", "b2"]}})
    b1 = next(n for n in out.inventory.nodes if n.name == "b1")
    assert b1.spec.unschedulable and any(t.key == "node.kubernetes.io/unschedulable" for t in b1.spec.taints)
    fates = {e.pod: e.fate for e in out.evictions}
    # the PDB allows one disruption: web-1 goes, web-2 stays on its cordoned node
    assert fates == {"t/web-1": "requeued", "t/web-2": "blocked", "t/bare": "lost"}
    running = {p.ref for p in out.inventory.running}
    assert running == {"t/web-2", "kube-system/logs-b1"}


def test_add_nodes_copies_a_node_with_new_names_and_labels():
    out = applied({"addNodes": {"copyOf": "a1", "count": 2, "namePrefix": "extra",
                                "labels": {ZONE: "c"}}})
    new = out.inventory.nodes[-2:]
    assert [n.name for n in new] == ["extra-1", "extra-2"]
    assert new[0].labels[ZONE] == "c" and new[0].labels["kubernetes.io/hostname"] == "extra-1"
    assert new[0].allocatable()["cpu"] == 4000
    assert out.added_nodes == ["extra-1", "extra-2"]


def test_add_nodes_from_a_template():
    out = applied({"addNodes": {"template": node("ignored", "16", labels={ZONE: "d"}), "count": 1}})
    assert out.inventory.nodes[-1].name == "whatif-node-1"
    assert out.inventory.nodes[-1].allocatable()["cpu"] == 16000


def test_set_quota_merges_hard_limits():
    out = applied({"setQuota": {"namespace": "t", "name": "q", "hard": {"requests.cpu": "2", "pods": "5"}}})
    hard = out.inventory.quotas[0].spec.hard
    assert hard["requests.cpu"].text == "2" and hard["pods"].text == "5"


def test_set_token_budget_changes_the_cap():
    out = applied({"setTokenBudget": {"namespace": "t", "name": "b", "tokens": "3M"}})
    assert out.inventory.token_budgets[0].spec.tokens.value == 3_000_000


def test_set_priority_by_selector_and_by_class():
    out = applied({"setPriority": {"agents": {"namespace": "t", "selector": {"matchLabels": {"team": "x"}}},
                                   "priority": 777}})
    prio = {p.ref: p.spec.priority for p in out.inventory.pending}
    assert prio == {"t/agent-1": 777, "t/agent-2": None}
    out = applied({"setPriority": {"agents": {"names": ["t/agent-2"]}, "priorityClassName": "high"}})
    agent2 = next(p for p in out.inventory.pending if p.ref == "t/agent-2")
    assert agent2.spec.priority_class_name == "high"


def test_add_agents_copies_a_pod_as_new_unadmitted_agents():
    out = applied({"addAgents": {"copyOf": "t/web-1", "count": 3, "labels": {"burst": "yes"}}})
    new = [p for p in out.inventory.pending if p.ref in out.added_agents]
    assert [p.ref for p in new] == ["t/web-1-burst-1", "t/web-1-burst-2", "t/web-1-burst-3"]
    assert all(p.metadata.uid is None and p.spec.node_name is None for p in new)
    assert new[0].labels == {"app": "web", "burst": "yes"}


def test_changes_apply_in_order():
    # nodes added in zone b are removed by the later zone-b removal
    out = applied({"addNodes": {"copyOf": "a1", "count": 1, "labels": {ZONE: "b"}}},
                  {"removeNodes": {"selector": {"matchLabels": {ZONE: "b"}}}})
    assert [n.name for n in out.inventory.nodes] == ["a1"]


def test_like_copies_the_first_selected_node_or_pod():
    out = applied({"addNodes": {"like": {"selector": {"matchLabels": {ZONE: "b"}}}, "count": 1}},
                  {"addAgents": {"like": {"namespace": "t", "selector": {"matchLabels": {"app": "web"}}},
                                 "count": 1}})
    assert out.added_nodes == ["b1-copy-1"]
    assert out.added_agents == ["t/web-1-burst-1"]
    errs = errors_of(scenario({"addAgents": {"like": {"namespace": "nope"}, "count": 1}}))
    assert errs == ["Scenario s: changes[0].addAgents.like: Invalid value: selects no pod"]
