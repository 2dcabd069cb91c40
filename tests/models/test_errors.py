"""Bad input: every error of a load is raised together, each naming object, field path and reason.

Object names are `Pod ns/name`, `Node name` and so on; objects without a usable name are named by
the file (or request body) and document position they came from. Paths use kube's field-path
style (`spec.containers[0].resources.requests.cpu`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from models import InputError, InputErrors, load_documents, load_paths
from tests.builders import expr, node, pod, required_node_affinity, taint

NA = "spec.affinity.nodeAffinity"
REQUIRED_TERM0 = f"{NA}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"


def errors_of(*docs: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(InputErrors) as info:
        load_documents(list(docs))
    return [(e.obj, e.path, e.reason) for e in info.value.errors]


def path_errors_of(*paths: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(InputErrors) as info:
        load_paths(list(paths))
    return [(e.obj, e.path, e.reason) for e in info.value.errors]


def agent(**kw: Any) -> dict[str, Any]:
    return pod("agent-7", namespace="team-a", **kw)


def with_spec(doc: dict[str, Any], **spec: Any) -> dict[str, Any]:
    doc["spec"].update(spec)
    return doc


def with_container(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    doc["spec"]["containers"][0].update(fields)
    return doc


def without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    target = doc
    for k in keys[:-1]:
        target = target[k]
    del target[keys[-1]]
    return doc


def priority_class(name: str, value: Any = 1000, **kw: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, **kw}


def bare_node(**status: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "status": status}


POD7 = "Pod team-a/agent-7"
C0 = "spec.containers[0]"


# --- one bad field: object, path and reason -----------------------------------------------------

@pytest.mark.parametrize(
    ("doc", "obj", "path", "reason"),
    [
        pytest.param(agent(cpu="12x"), POD7, f"{C0}.resources.requests.cpu",
                     "'12x' is not a quantity: quantities must match the regular expression",
                     id="a malformed cpu request names the pod, the container and the resource"),
        pytest.param(agent(cpu="-1"), POD7, f"{C0}.resources.requests.cpu",
                     "Invalid value: '-1': must be greater than or equal to 0",
                     id="a negative request is rejected as kube's validation rejects it"),
        pytest.param(with_container(agent(), resources={"limits": {"memory": "-1Gi"}}), POD7,
                     f"{C0}.resources.limits.memory",
                     "Invalid value: '-1Gi': must be greater than or equal to 0",
                     id="a negative limit is rejected too"),
        pytest.param(agent(extra={"ephemeral-storage": "-1"}), POD7,
                     f"{C0}.resources.requests.ephemeral-storage",
                     "Invalid value: '-1': must be greater than or equal to 0",
                     id="a negative resource with a dash in its name still gets a full path"),
        pytest.param(agent(cpu=None, extra={"nvidia.com/gpu": True}), POD7,
                     f"{C0}.resources.requests.nvidia.com/gpu", "True is not a quantity",
                     id="a boolean extended resource request names the resource"),
        pytest.param(with_spec(agent(), overhead={"cpu": "lots"}), POD7, "spec.overhead.cpu",
                     "'lots' is not a quantity", id="a malformed overhead"),
        pytest.param(with_spec(agent(), initContainers=[
                         {"name": "i", "resources": {"requests": {"memory": "1 Gi"}}}]),
                     POD7, "spec.initContainers[0].resources.requests.memory",
                     "'1 Gi' is not a quantity", id="a malformed init container request"),
        pytest.param(without(agent(), "spec", "containers"), POD7, "spec.containers",
                     "Required value", id="a pod without containers"),
        pytest.param(with_spec(agent(), containers=[]), POD7, "spec.containers",
                     "at least 1 item", id="a pod with an empty container list"),
        pytest.param(without(agent(), "spec"), POD7, "spec", "Required value",
                     id="a pod without a spec"),
        pytest.param(with_container(agent(), name=""), POD7, f"{C0}.name",
                     "at least 1 character", id="a container with an empty name"),
        pytest.param(with_container(agent(), restartPolicy="OnFailure"), POD7,
                     f"{C0}.restartPolicy", "'Always'",
                     id="a container restartPolicy other than Always"),
        pytest.param(without(agent(), "metadata", "name"), "Pod <unnamed, <input>#0>",
                     "metadata.name", "Required value",
                     id="a pod without a name is named by its position in the input"),
        pytest.param(without(agent(), "metadata"), "Pod <unnamed, <input>#0>", "metadata",
                     "Required value", id="a pod without metadata"),
        pytest.param(without(agent(), "kind"), "object agent-7 (<input>#0)", "kind",
                     "Required value", id="an object without a kind is named with its position"),
        pytest.param({"metadata": {}}, "object <unnamed, <input>#0>", "kind", "Required value",
                     id="an object with neither kind nor name"),
        pytest.param(agent(tolerations=[{"key": "", "operator": "Equal", "value": "x"}]), POD7,
                     "spec.tolerations[0].operator",
                     "Invalid value: 'Equal': operator must be Exists when `key` is empty, "
                     "which means \"match all values and all keys\"",
                     id="a toleration with an empty key and operator Equal"),
        pytest.param(agent(tolerations=[{"key": "k", "operator": "Exists"},
                                        {"key": "k", "operator": "Exists", "value": "v"}]),
                     POD7, "spec.tolerations[1].operator",
                     "Invalid value: 'v': value must be empty when `operator` is 'Exists'",
                     id="a toleration with operator Exists and a value"),
        pytest.param(agent(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule",
                                         "tolerationSeconds": 30}]),
                     POD7, "spec.tolerations[0].effect",
                     "Invalid value: 'NoSchedule': effect must be 'NoExecute' when "
                     "`tolerationSeconds` is set",
                     id="tolerationSeconds with effect NoSchedule"),
        pytest.param(agent(tolerations=[{"key": "k", "operator": "Matches"}]), POD7,
                     "spec.tolerations[0].operator", "'Matches'",
                     id="a toleration with an unknown operator"),
        pytest.param(agent(tolerations=[{"operator": "Exists", "effect": "NoScheduled"}]), POD7,
                     "spec.tolerations[0].effect", "'NoScheduled'",
                     id="a toleration with a misspelt effect"),
        pytest.param(node("gpu-1", taints=[taint("nvidia.com/gpu", "present", "NoScheduled")]),
                     "Node gpu-1", "spec.taints[0].effect", "'NoScheduled'",
                     id="a taint with a bad effect names the node"),
        pytest.param(node("n1", taints=[{"key": "k"}]), "Node n1", "spec.taints[0].effect",
                     "Required value", id="a taint without an effect"),
        pytest.param(node("n1", taints=[{"key": "", "effect": "NoSchedule"}]), "Node n1",
                     "spec.taints[0].key", "at least 1 character", id="a taint with an empty key"),
        pytest.param(bare_node(capacity={"cpu": "eight"}), "Node n1", "status.capacity.cpu",
                     "'eight' is not a quantity", id="a malformed node capacity"),
        pytest.param(bare_node(allocatable={"nvidia.com/gpu": "-1"}), "Node n1",
                     "status.allocatable.nvidia.com/gpu",
                     "Invalid value: '-1': must be greater than or equal to 0",
                     id="a negative extended resource on a node names the resource"),
        pytest.param(agent(affinity=required_node_affinity([expr("rank", "Lt", "1", "2")])), POD7,
                     f"{REQUIRED_TERM0}.matchExpressions[0].values",
                     "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'",
                     id="a node selector Lt with two values"),
        pytest.param(agent(affinity=required_node_affinity([expr("a", "Exists"),
                                                            expr("zone", "In")])), POD7,
                     f"{REQUIRED_TERM0}.matchExpressions[1].values",
                     "Required value: must be specified when `operator` is 'In'",
                     id="a node selector In with no values"),
        pytest.param(agent(affinity=required_node_affinity([expr("gpu", "Exists", "yes")])), POD7,
                     f"{REQUIRED_TERM0}.matchExpressions[0].values",
                     "Forbidden: may not be specified when `operator` is 'Exists'",
                     id="a node selector Exists with values"),
        pytest.param(agent(affinity=required_node_affinity([expr("gpu", "Has", "x")])), POD7,
                     f"{REQUIRED_TERM0}.matchExpressions[0].operator", "'Has'",
                     id="a node selector with an unknown operator"),
        pytest.param(agent(affinity=required_node_affinity(
                         fields=[expr("metadata.labels", "In", "x")])), POD7,
                     f"{NA}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
                     ".matchFields[0].key",
                     "Invalid value: 'metadata.labels': not a valid field selector key",
                     id="matchFields on a key other than metadata.name"),
        pytest.param(agent(affinity=required_node_affinity(
                         fields=[expr("metadata.name", "Exists")])), POD7,
                     f"{NA}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
                     ".matchFields[0].operator",
                     "Invalid value: 'Exists': not a valid selector operator",
                     id="matchFields with an operator other than In or NotIn"),
        pytest.param(agent(affinity=required_node_affinity()), POD7,
                     f"{NA}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
                     "at least 1 item", id="a required node affinity with no terms"),
        pytest.param(agent(affinity={"nodeAffinity": {
                         "preferredDuringSchedulingIgnoredDuringExecution": [
                             {"weight": 0, "preference": {"matchExpressions": []}}]}}), POD7,
                     f"{NA}.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
                     "greater than or equal to 1", id="a preferred node affinity with weight 0"),
        pytest.param(agent(affinity={"podAntiAffinity": {
                         "requiredDuringSchedulingIgnoredDuringExecution": [
                             {"labelSelector": {"matchLabels": {"app": "a"}}}]}}), POD7,
                     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                     "[0].topologyKey", "Required value",
                     id="a pod anti-affinity term without a topology key"),
        pytest.param(with_spec(agent(), topologySpreadConstraints=[
                         {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Never"}]),
                     POD7, "spec.topologySpreadConstraints[0].whenUnsatisfiable", "'Never'",
                     id="a topology spread constraint with a bad whenUnsatisfiable"),
        pytest.param(agent(priority=2**31), POD7, "spec.priority",
                     "less than or equal to 2147483647", id="a priority past int32"),
        pytest.param(agent(priority="high"), POD7, "spec.priority", "valid integer",
                     id="a priority that is not a number"),
        pytest.param(priority_class("huge", 2**31), "PriorityClass huge", "value",
                     "less than or equal to 2147483647", id="a PriorityClass value past int32"),
        pytest.param(without(priority_class("none"), "value"), "PriorityClass none", "value",
                     "Required value", id="a PriorityClass without a value"),
        pytest.param({"apiVersion": "v1", "kind": "ResourceQuota",
                      "metadata": {"name": "compute", "namespace": "team-a"},
                      "spec": {"hard": {"requests.cpu": "20 cores"}}},
                     "ResourceQuota team-a/compute", "spec.hard.requests.cpu",
                     "'20 cores' is not a quantity", id="a malformed quota"),
        pytest.param({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                      "metadata": {"name": "pdb", "namespace": "team-a"},
                      "spec": {"selector": {"matchExpressions": [{"key": "app",
                                                                  "operator": "In"}]}}},
                     "PodDisruptionBudget team-a/pdb", "spec.selector.matchExpressions[0].values",
                     "Required value: must be specified when `operator` is 'In'",
                     id="a disruption budget whose label selector has In without values"),
        pytest.param({"kind": "Namespace", "metadata": {"name": "ns", "labels": {"a": 1}}},
                     "Namespace ns", "metadata.labels.a", "valid string",
                     id="a label value that is not a string"),
    ],
)
def test_one_bad_field_is_reported_with_object_path_and_reason(doc, obj, path, reason):
    ((got_obj, got_path, got_reason),) = errors_of(doc)
    assert (got_obj, got_path) == (obj, path)
    assert reason in got_reason


# --- every error in one raise -------------------------------------------------------------------

def test_every_error_of_a_batch_is_collected_in_one_raise():
    got = errors_of(
        agent(cpu="12x"),
        pod("agent-8", namespace="team-a", memory="lots",
            tolerations=[{"key": "", "operator": "Equal"}]),
        node("n1", taints=[taint("k", effect="Never")]),
        {"kind": "Pod", "metadata": {"namespace": "team-a"}, "spec": {"containers": [{"name": "c"}]}},
        "just a string",
        pod("fine"),
    )
    assert [(o, p) for o, p, _ in got] == [
        (POD7, f"{C0}.resources.requests.cpu"),
        ("Pod team-a/agent-8", f"{C0}.resources.requests.memory"),
        ("Pod team-a/agent-8", "spec.tolerations[0].operator"),
        ("Node n1", "spec.taints[0].effect"),
        ("Pod <unnamed, <input>#3>", "metadata.name"),
        ("document <input>#4", ""),
    ]


def test_errors_from_several_files_and_paths_are_collected_together(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: Pod\nmetadata: {name: x\n")
    (tmp_path / "pods.yaml").write_text(yaml.safe_dump(agent(cpu="12x")))
    (tmp_path / "nodes.json").write_text('{"kind": "Node", "metadata": {"name": "n"},}')
    got = path_errors_of(tmp_path, tmp_path / "missing.yaml")
    assert [(o, p) for o, p, _ in got] == [
        (f"file {tmp_path / 'bad.yaml'}", ""),
        (f"file {tmp_path / 'nodes.json'}", ""),
        (f"path {tmp_path / 'missing.yaml'}", ""),
        (POD7, f"{C0}.resources.requests.cpu"),
    ]


def test_input_errors_print_one_line_per_error_under_a_count():
    with pytest.raises(InputErrors) as info:
        load_documents([agent(cpu="12x"), agent(cpu="1", memory="-5")])
    lines = str(info.value).splitlines()
    assert lines[0] == "2 input errors:"
    assert lines[1].startswith(
        "  Pod team-a/agent-7: spec.containers[0].resources.requests.cpu: '12x' is not a "
        "quantity: ")
    assert lines[2] == ("  Pod team-a/agent-7: spec.containers[0].resources.requests.memory: "
                        "Invalid value: '-5': must be greater than or equal to 0")
    assert isinstance(info.value, ValueError)


def test_a_single_error_is_counted_in_the_singular():
    with pytest.raises(InputErrors, match=r"^1 input error:\n  Pod team-a/agent-7: "):
        load_documents([agent(cpu="12x")])


@pytest.mark.parametrize(
    ("error", "text", "as_dict"),
    [
        pytest.param(InputError("Pod team-a/agent-7", "spec.containers[0].resources.requests.cpu",
                                "'12x' is not a quantity"),
                     "Pod team-a/agent-7: spec.containers[0].resources.requests.cpu: "
                     "'12x' is not a quantity",
                     {"object": "Pod team-a/agent-7",
                      "field": "spec.containers[0].resources.requests.cpu",
                      "reason": "'12x' is not a quantity"},
                     id="an error with a field path prints object, path and reason"),
        pytest.param(InputError("path /nope", "", "no such file or directory"),
                     "path /nope: no such file or directory",
                     {"object": "path /nope", "field": "", "reason": "no such file or directory"},
                     id="an error without a field path prints object and reason"),
    ],
)
def test_input_error_formats(error, text, as_dict):
    assert str(error) == text
    assert error.as_dict() == as_dict


# --- errors across objects ----------------------------------------------------------------------

def test_a_pod_defined_in_two_files_is_a_duplicate_naming_the_first_file(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump(agent()))
    second.write_text(yaml.safe_dump(agent(cpu="2")))
    assert path_errors_of(first, second) == [
        (POD7, "metadata.name", f"Duplicate value: also defined at {first}")]


def test_a_duplicate_within_one_multi_document_file_names_the_document(tmp_path):
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump_all([node("n1"), node("n2"), node("n1")]))
    assert path_errors_of(path) == [
        ("Node n1", "metadata.name", f"Duplicate value: also defined at {path}#0")]


@pytest.mark.parametrize(
    "docs",
    [
        pytest.param([pod("a", namespace="x"), pod("a", namespace="y")],
                     id="the same pod name in two namespaces"),
        pytest.param([pod("a"), node("a")], id="a pod and a node with the same name"),
        pytest.param([pod("a"), {"kind": "Namespace", "metadata": {"name": "a"}}],
                     id="a pod and a namespace with the same name"),
    ],
)
def test_same_name_in_different_scopes_is_not_a_duplicate(docs):
    inv = load_documents(docs)
    assert len(inv.pods) + len(inv.nodes) + len(inv.namespaces) == len(docs)


def test_priority_class_name_that_does_not_exist_is_not_found():
    assert errors_of(agent(priority_class="gold"), priority_class("silver")) == [
        (POD7, "spec.priorityClassName", "Not found: no PriorityClass with name gold was found")]


@pytest.mark.parametrize(
    "docs",
    [
        pytest.param([agent(priority_class="gold"), priority_class("gold")],
                     id="a class that is in the input"),
        pytest.param([agent(priority_class="system-node-critical")],
                     id="a built-in system class"),
        pytest.param([agent(priority_class="gold", priority=500)],
                     id="a missing class on a pod whose priority admission already resolved"),
    ],
)
def test_priority_class_names_that_resolve_are_accepted(docs):
    assert len(load_documents(docs).pods) == 1


def test_two_global_default_priority_classes_are_forbidden():
    assert errors_of(priority_class("a", globalDefault=True), priority_class("b", 5),
                     priority_class("c", 7, globalDefault=True)) == [
        ("PriorityClass c", "globalDefault", "Forbidden: a is already the global default")]


# --- files, paths and documents -----------------------------------------------------------------

def test_invalid_yaml_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: {a: b\nspec: {}\n")
    assert path_errors_of(path) == [(
        f"file {path}", "",
        "not valid YAML: line 6, column 5: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping started at line 5, column 11)")]


def test_invalid_json_names_the_file_and_position(tmp_path):
    path = tmp_path / "pods.json"
    path.write_text('{"kind": "Pod",}')
    assert path_errors_of(path) == [(
        f"file {path}", "",
        "not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 16 (char 15)")]


def test_broken_json_on_stdin_reports_the_json_error(monkeypatch):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO('{"kind": "Pod",'))
    ((obj, path, reason),) = path_errors_of("-")
    assert (obj, path) == ("file <stdin>", "")
    assert reason.startswith("not valid JSON: ")


def test_a_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert path_errors_of(missing) == [(f"path {missing}", "", "no such file or directory")]


def test_an_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("kind: Pod")
    assert path_errors_of(tmp_path) == [
        (f"directory {tmp_path}", "", "holds no .yaml, .yml or .json file")]


@pytest.mark.parametrize(
    ("text", "obj", "reason"),
    [
        pytest.param("hello\n", "document {path}", "expected an object, got 'hello'",
                     id="a document that is a bare string"),
        pytest.param("42\n", "document {path}", "expected an object, got 42",
                     id="a document that is a number"),
        pytest.param(yaml.safe_dump(pod("a")) + "---\n7\n", "document {path}#1",
                     "expected an object, got 7",
                     id="a scalar second document is named by its index"),
        pytest.param("kind: List\nitems:\n- 5\n", "document {path} items[0]",
                     "expected an object, got 5", id="a scalar item of a List"),
    ],
)
def test_a_document_that_is_a_scalar(tmp_path, text, obj, reason):
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    assert path_errors_of(path) == [(obj.format(path=path), "", reason)]


def test_a_list_whose_items_are_not_a_list():
    assert errors_of({"kind": "PodList", "items": {"a": 1}}) == [
        ("PodList <input>#0", "items", "must be a list")]


def test_a_list_item_without_a_name_is_named_by_its_position(tmp_path):
    path = tmp_path / "pods.json"
    path.write_text('{"kind": "PodList", "items": [{"metadata": {}, "spec": {}}]}')
    got = path_errors_of(path)
    assert [(o, p) for o, p, _ in got] == [
        (f"Pod <unnamed, {path} items[0]>", "metadata.name"),
        (f"Pod <unnamed, {path} items[0]>", "spec.containers"),
    ]


# --- null means unset ---------------------------------------------------------------------------

NULLS = """\
apiVersion: v1
kind: Pod
metadata:
  name: agent-7
  namespace:
  labels:
  annotations:
spec:
  containers:
  - name: agent
    image:
    resources:
      requests:
        cpu: 100m
      limits:
  initContainers:
  overhead:
  nodeName:
  nodeSelector:
  affinity:
    nodeAffinity:
    podAntiAffinity:
  tolerations:
  priority:
  priorityClassName:
  topologySpreadConstraints:
status:
---
apiVersion: v1
kind: Node
metadata:
  name: n1
spec:
  taints:
  unschedulable:
status:
  capacity:
  allocatable:
    cpu: "4"
"""


def test_null_fields_are_accepted_as_unset(tmp_path: Path):
    path = tmp_path / "nulls.yaml"
    path.write_text(NULLS)
    inv = load_paths([path])
    (p,) = inv.pods
    assert p.ref == "default/agent-7"
    assert (p.spec.tolerations, p.spec.node_selector, p.spec.init_containers) == ([], {}, [])
    assert (p.spec.node_name, p.spec.priority, p.is_pending) == (None, None, True)
    assert p.requests() == {"cpu": 100}
    (n,) = inv.nodes
    assert (n.spec.taints, n.spec.unschedulable, n.allocatable()) == ([], False, {"cpu": 4000})


def test_empty_toleration_operator_means_equal_as_in_kube():
    (p,) = load_documents([agent(tolerations=[{"key": "k", "operator": "", "value": "v"}])]).pods
    assert p.spec.tolerations[0].operator == "Equal"
    assert p.spec.tolerations[0].tolerates("k", "v", "NoSchedule")
    assert not p.spec.tolerations[0].tolerates("k", "w", "NoSchedule")


def test_a_null_quantity_is_rejected_not_read_as_zero():
    doc = with_container(agent(), resources={"requests": {"cpu": "1", "memory": None}})
    ((obj, path, reason),) = errors_of(doc)
    assert (obj, path) == (POD7, f"{C0}.resources.requests.memory")
    assert reason.startswith("None is not a quantity")
