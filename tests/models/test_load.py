"""Loading real-looking kubectl output: kinds, lifecycle classification, wrappers, sources, requests.

The fixtures under tests/fixtures/kubectl/ are shaped exactly like `kubectl get nodes -o yaml`,
`kubectl get pods -A -o json`, the API's own PodList, and a multi-document YAML of policy objects,
with every field kubectl prints (managedFields, conditions, images, nodeInfo, ...).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from models import Inventory, Pod, load_documents, load_paths

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kubectl"
KI, MI, GI = 2**10, 2**20, 2**30


def counts(inv: Inventory) -> dict[str, int]:
    """Non-zero object counts by kind."""
    out = {
        "Node": len(inv.nodes),
        "Pod": len(inv.pods),
        "Namespace": len(inv.namespaces),
        "PriorityClass": len(inv.priority_classes),
        "ResourceQuota": len(inv.quotas),
        "PodDisruptionBudget": len(inv.pdbs),
    }
    return {k: v for k, v in out.items() if v}


def pod_named(inv: Inventory, ref: str) -> Pod:
    return next(p for p in inv.pods if p.ref == ref)


@pytest.fixture(scope="module")
def cluster() -> Inventory:
    return load_paths([FIXTURES])


# --- counts by kind -----------------------------------------------------------------------------

SKIPPED = [
    "skipped 1 object(s) of kind Deployment: not used for placement",
    "skipped 1 object(s) of kind Service: not used for placement",
]


@pytest.mark.parametrize(
    ("names", "expected", "warnings"),
    [
        pytest.param(["nodes.yaml"], {"Node": 4}, [],
                     id="kubectl get nodes -o yaml holds four nodes in a kind List"),
        pytest.param(["pods.json"], {"Pod": 6}, [],
                     id="kubectl get pods -A -o json holds six pods in a kind List"),
        pytest.param(["podlist-raw.json"], {"Pod": 2}, [],
                     id="the API's raw PodList holds two pods whose items carry no kind"),
        pytest.param(["policy.yaml"],
                     {"Namespace": 2, "PriorityClass": 3, "ResourceQuota": 1,
                      "PodDisruptionBudget": 1}, SKIPPED,
                     id="the multi-document policy YAML holds every policy kind plus two skipped"),
        pytest.param(["nodes.yaml", "pods.json", "podlist-raw.json", "policy.yaml"],
                     {"Node": 4, "Pod": 8, "Namespace": 2, "PriorityClass": 3,
                      "ResourceQuota": 1, "PodDisruptionBudget": 1}, SKIPPED,
                     id="several files given together add up"),
    ],
)
def test_fixture_files_load_with_the_expected_counts_by_kind(names, expected, warnings):
    inv = load_paths([FIXTURES / n for n in names])
    assert counts(inv) == expected
    assert inv.warnings == warnings


def test_the_fixture_directory_loads_as_one_inventory(cluster):
    assert counts(cluster) == {"Node": 4, "Pod": 8, "Namespace": 2, "PriorityClass": 3,
                               "ResourceQuota": 1, "PodDisruptionBudget": 1}
    assert cluster.warnings == SKIPPED


# --- lifecycle classification -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("ref", "bound", "pending", "terminal"),
    [
        pytest.param("kube-system/coredns-7db6d8ff4d-x2x9q", True, False, False,
                     id="a Running pod with a nodeName is bound"),
        pytest.param("team-a/agent-runner-7d9f8c6b5-abcde", True, False, False,
                     id="a Running agent with a sidecar is bound"),
        pytest.param("team-a/nightly-report-28631220-k7x2p", False, False, True,
                     id="a Succeeded job pod is terminal even though it has a nodeName"),
        pytest.param("team-a/agent-runner-7d9f8c6b5-pqrst", False, True, False,
                     id="an unschedulable Pending pod without a nodeName is pending"),
        pytest.param("team-b/trainer-0", True, False, False,
                     id="a Pending pod already given a nodeName is bound, not pending"),
        pytest.param("team-b/batch-scorer-6b7c8d9e0f-zz8mv", False, False, True,
                     id="an evicted Failed pod is terminal and holds nothing"),
        pytest.param("team-c/planner-0", True, False, False,
                     id="a running pod from the raw PodList is bound"),
        pytest.param("team-c/planner-1", False, True, False,
                     id="a pending pod from the raw PodList is pending"),
    ],
)
def test_pod_lifecycle_is_classified_from_phase_and_node_name(cluster, ref, bound, pending,
                                                              terminal):
    pod = pod_named(cluster, ref)
    assert (pod.is_bound, pod.is_pending, pod.is_terminal) == (bound, pending, terminal)


def test_inventory_running_and_pending_exclude_terminal_pods(cluster):
    assert sorted(p.ref for p in cluster.running) == [
        "kube-system/coredns-7db6d8ff4d-x2x9q",
        "team-a/agent-runner-7d9f8c6b5-abcde",
        "team-b/trainer-0",
        "team-c/planner-0",
    ]
    assert sorted(p.ref for p in cluster.pending) == [
        "team-a/agent-runner-7d9f8c6b5-pqrst",
        "team-c/planner-1",
    ]


@pytest.mark.parametrize(
    ("phase", "node_name", "bound", "pending", "terminal"),
    [
        pytest.param(None, None, False, True, False,
                     id="a pod with no status yet and no node is pending"),
        pytest.param("Pending", None, False, True, False, id="Pending without a node is pending"),
        pytest.param("Pending", "n1", True, False, False, id="Pending on a node is bound"),
        pytest.param("Running", "n1", True, False, False, id="Running on a node is bound"),
        pytest.param("Unknown", "n1", True, False, False,
                     id="Unknown on a node still holds its capacity"),
        pytest.param("Succeeded", "n1", False, False, True, id="Succeeded on a node is terminal"),
        pytest.param("Failed", "n1", False, False, True, id="Failed on a node is terminal"),
        pytest.param("Failed", None, False, False, True,
                     id="Failed before scheduling is terminal, not pending"),
    ],
)
def test_lifecycle_table_for_every_phase(phase, node_name, bound, pending, terminal):
    raw: dict[str, Any] = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
                           "spec": {"containers": [{"name": "c"}]}}
    if node_name:
        raw["spec"]["nodeName"] = node_name
    if phase:
        raw["status"] = {"phase": phase}
    pod = Pod.model_validate(raw)
    assert (pod.is_bound, pod.is_pending, pod.is_terminal) == (bound, pending, terminal)


# --- what the fixture objects hold --------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "allocatable"),
    [
        pytest.param("cp-1", {"cpu": 4000, "memory": 16265000 * KI,
                              "ephemeral-storage": 101430960 * KI, "hugepages-1Gi": 0,
                              "hugepages-2Mi": 0, "pods": 110},
                     id="the control plane node reads status.allocatable, not capacity"),
        pytest.param("worker-1", {"cpu": 8000, "memory": 32679364 * KI,
                                  "ephemeral-storage": 101430960 * KI, "hugepages-1Gi": 0,
                                  "hugepages-2Mi": 0, "pods": 110},
                     id="a plain worker with cpu 8 and memory in Ki"),
        pytest.param("worker-2", {"cpu": 7910, "memory": 31653444 * KI,
                                  "ephemeral-storage": 93478772582, "hugepages-1Gi": 0,
                                  "hugepages-2Mi": 0, "pods": 110},
                     id="millicore cpu and a plain byte count of ephemeral storage"),
        pytest.param("gpu-1", {"cpu": 31850, "memory": 260561372 * KI,
                               "ephemeral-storage": 475821230553, "hugepages-1Gi": 4 * GI,
                               "hugepages-2Mi": 0, "nvidia.com/gpu": 4, "pods": 110},
                     id="a gpu node with hugepages and the nvidia.com/gpu extended resource"),
    ],
)
def test_node_allocatable_is_in_integer_base_units(cluster, name, allocatable):
    node = next(n for n in cluster.nodes if n.name == name)
    assert node.allocatable() == allocatable


def test_node_taints_and_cordon_come_through(cluster):
    by_name = {n.name: n for n in cluster.nodes}
    assert [str(t) for t in by_name["cp-1"].spec.taints] == [
        "node-role.kubernetes.io/control-plane:NoSchedule"]
    assert by_name["worker-2"].spec.unschedulable is True
    assert [str(t) for t in by_name["gpu-1"].spec.taints] == ["nvidia.com/gpu=present:NoSchedule"]
    assert by_name["worker-1"].spec.taints == []
    assert by_name["gpu-1"].labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"


def test_policy_objects_come_through_with_their_fields(cluster):
    classes = {pc.name: pc for pc in cluster.priority_classes}
    assert {n: (pc.value, pc.global_default, pc.preemption_policy)
            for n, pc in classes.items()} == {
        "agent-high": (100000, False, "PreemptLowerPriority"),
        "agent-default": (1000, True, "PreemptLowerPriority"),
        "batch-low": (-10, False, "Never"),
    }
    (quota,) = cluster.quotas
    assert quota.ref == "team-a/compute"
    assert {k: q.text for k, q in quota.spec.hard.items()} == {
        "limits.memory": "64Gi", "pods": "50", "requests.cpu": "20",
        "requests.memory": "48Gi", "requests.nvidia.com/gpu": "4"}
    assert quota.status.used["requests.memory"].units("memory") == 1088 * MI
    (pdb,) = cluster.pdbs
    assert (pdb.ref, pdb.spec.min_available, pdb.spec.selector.match_labels) == (
        "team-a/agent-runner", "50%", {"app": "agent-runner"})
    assert (pdb.status.disruptions_allowed, pdb.status.expected_pods) == (0, 2)
    assert sorted(ns.name for ns in cluster.namespaces) == ["team-a", "team-b"]


def test_kubectl_pod_metadata_comes_through(cluster):
    pod = pod_named(cluster, "team-a/agent-runner-7d9f8c6b5-abcde")
    assert pod.metadata.owner_references[0].kind == "ReplicaSet"
    assert pod.metadata.owner_references[0].controller is True
    assert pod.metadata.creation_timestamp is not None
    assert pod.metadata.creation_timestamp.isoformat() == "2024-06-10T11:58:02+00:00"
    assert (pod.spec.priority, pod.spec.priority_class_name) == (1000, "agent-default")
    assert [t.toleration_seconds for t in pod.spec.tolerations] == [300, 300]


# --- unknown kinds ------------------------------------------------------------------------------

def test_unknown_kinds_are_skipped_with_one_warning_per_kind_never_silently():
    inv = load_documents([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}},
    ])
    assert counts(inv) == {}
    assert inv.warnings == [
        "skipped 1 object(s) of kind ConfigMap: not used for placement",
        "skipped 1 object(s) of kind Deployment: not used for placement",
        "skipped 2 object(s) of kind Service: not used for placement",
    ]


def test_unknown_kinds_are_not_validated_so_they_cannot_fail_a_load():
    inv = load_documents([{"kind": "Deployment", "metadata": {}, "spec": "anything"}])
    assert inv.warnings == ["skipped 1 object(s) of kind Deployment: not used for placement"]


def test_a_node_without_allocatable_loads_with_a_warning():
    inv = load_documents([{"kind": "Node", "metadata": {"name": "bare"},
                           "status": {"capacity": {"cpu": "4"}}}])
    assert inv.nodes[0].allocatable() == {}
    assert inv.warnings == [
        "Node bare: status.allocatable is missing: kube-scheduler treats it as zero, so "
        "nothing can be placed there"]


# --- List wrappers ------------------------------------------------------------------------------

POD = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "c"}]}}
NODE = {"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "1"}}}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param({"kind": "List", "items": [{"kind": "Pod", **POD}, {"kind": "Node", **NODE}]},
                     {"Pod": 1, "Node": 1}, id="a kind List of mixed kinds unwraps"),
        pytest.param({"apiVersion": "v1", "kind": "PodList", "items": [POD]}, {"Pod": 1},
                     id="PodList items without a kind inherit Pod"),
        pytest.param({"apiVersion": "v1", "kind": "NodeList", "items": [NODE]}, {"Node": 1},
                     id="NodeList items without a kind inherit Node"),
        pytest.param({"kind": "PodList", "items": [{"kind": "Node", **NODE}]}, {"Node": 1},
                     id="an item's own kind wins over the list's"),
        pytest.param({"kind": "List", "items": [{"kind": "List", "items": [{"kind": "Pod", **POD}]}]},
                     {"Pod": 1}, id="nested lists unwrap"),
        pytest.param({"kind": "List", "items": []}, {}, id="an empty List is no objects"),
        pytest.param({"kind": "List", "items": None}, {}, id="a List with null items is empty"),
        pytest.param([{"kind": "Pod", **POD}, {"kind": "Node", **NODE}], {"Pod": 1, "Node": 1},
                     id="a bare top-level sequence of objects unwraps"),
    ],
)
def test_list_wrappers_unwrap(doc, expected):
    assert counts(load_documents([doc])) == expected


# --- sources: files, directories, stdin, JSON detection ----------------------------------------

def test_directory_loading_is_recursive_and_reads_only_yaml_yml_and_json(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(FIXTURES / "nodes.yaml", tmp_path / "a" / "b" / "nodes.yml")
    shutil.copy(FIXTURES / "pods.json", tmp_path / "a" / "pods.json")
    shutil.copy(FIXTURES / "policy.yaml", tmp_path / "policy.yaml")
    (tmp_path / "README.md").write_text("# not a manifest: {")
    (tmp_path / "a" / "notes.txt").write_text("kind: [")
    (tmp_path / "a" / "pods.json.bak").write_text("{")
    inv = load_paths([tmp_path])
    assert counts(inv) == {"Node": 4, "Pod": 6, "Namespace": 2, "PriorityClass": 3,
                           "ResourceQuota": 1, "PodDisruptionBudget": 1}


def test_directory_and_file_arguments_combine(tmp_path):
    shutil.copy(FIXTURES / "nodes.yaml", tmp_path / "nodes.yaml")
    inv = load_paths([tmp_path, FIXTURES / "podlist-raw.json"])
    assert counts(inv) == {"Node": 4, "Pod": 2}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("pods.json", id="kubectl JSON read from stdin"),
        pytest.param("nodes.yaml", id="kubectl YAML read from stdin"),
        pytest.param("policy.yaml", id="multi-document YAML read from stdin"),
    ],
)
def test_dash_reads_stdin(monkeypatch, name):
    text = (FIXTURES / name).read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert counts(load_paths(["-"])) == counts(load_paths([FIXTURES / name]))


def test_stdin_combines_with_files(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO((FIXTURES / "pods.json").read_text()))
    assert counts(load_paths([FIXTURES / "nodes.yaml", "-"])) == {"Node": 4, "Pod": 6}


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        pytest.param("pods.yaml", json.dumps({"kind": "Pod", **POD}),
                     id="JSON in a .yaml file is detected by its opening brace"),
        pytest.param("pods.yaml", "\n\n  " + json.dumps([{"kind": "Pod", **POD}]),
                     id="a JSON array after leading blank lines is detected"),
        pytest.param("pods.json", json.dumps({"kind": "List", "items": [{"kind": "Pod", **POD}]},
                                             indent=4),
                     id="an indented JSON List in a .json file"),
        pytest.param("pods.yaml", "{kind: Pod, metadata: {name: p}, spec: {containers: [{name: c}]}}",
                     id="flow-style YAML that only looks like JSON still loads as YAML"),
        pytest.param("pods.yml", yaml.safe_dump({"kind": "Pod", **POD}),
                     id="block YAML in a .yml file"),
        pytest.param("pods.yaml", "---\n" + yaml.safe_dump({"kind": "Pod", **POD}) + "---\n",
                     id="YAML with leading and trailing document markers has no empty objects"),
    ],
)
def test_json_and_yaml_are_told_apart(tmp_path, filename, text):
    path = tmp_path / filename
    path.write_text(text)
    assert counts(load_paths([path])) == {"Pod": 1}


def test_load_documents_accepts_already_parsed_request_bodies():
    inv = load_documents([{"kind": "Pod", **POD}, None, {"kind": "PodList", "items": [
        {"metadata": {"name": "q", "namespace": "ns"}, "spec": {"containers": [{"name": "c"}]}}]}])
    assert sorted(p.ref for p in inv.pods) == ["ns/p", "ns/q"]


def test_pods_without_a_namespace_default_to_default():
    inv = load_documents([{"kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "c"}]}}])
    assert inv.pods[0].ref == "default/p"


def test_inventory_extend_concatenates_everything(cluster):
    inv = Inventory()
    inv.extend(cluster)
    inv.extend(load_documents([{"kind": "Service", "metadata": {"name": "s"}}]))
    assert counts(inv) == counts(cluster)
    assert inv.warnings == [*cluster.warnings,
                            "skipped 1 object(s) of kind Service: not used for placement"]


# --- effective requests -------------------------------------------------------------------------

def ctr(requests: dict[str, Any] | None = None, limits: dict[str, Any] | None = None,
        restart_policy: str | None = None, name: str = "c") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "resources": {}}
    if requests is not None:
        out["resources"]["requests"] = requests
    if limits is not None:
        out["resources"]["limits"] = limits
    if restart_policy:
        out["restartPolicy"] = restart_policy
    return out


def pod_with(containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None,
             overhead: dict[str, Any] | None = None) -> Pod:
    spec: dict[str, Any] = {"containers": containers}
    if init:
        spec["initContainers"] = init
    if overhead:
        spec["overhead"] = overhead
    return Pod.model_validate({"kind": "Pod", "metadata": {"name": "p"}, "spec": spec})


SIDECAR = "Always"


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(pod_with([ctr({"cpu": "100m", "memory": "128Mi"})]),
                     {"cpu": 100, "memory": 128 * MI}, id="one container's requests"),
        pytest.param(pod_with([ctr({"cpu": "100m", "memory": "128Mi"}),
                               ctr({"cpu": "250m", "memory": "256Mi"}, name="d")]),
                     {"cpu": 350, "memory": 384 * MI}, id="app containers are summed"),
        pytest.param(pod_with([ctr(limits={"cpu": "1", "memory": "1Gi"})]),
                     {"cpu": 1000, "memory": GI},
                     id="limits stand in for absent requests as API defaulting does"),
        pytest.param(pod_with([ctr({"cpu": "200m"}, {"cpu": "1", "memory": "512Mi"})]),
                     {"cpu": 200, "memory": 512 * MI},
                     id="defaulting from limits is per resource, a request still wins"),
        pytest.param(pod_with([ctr({"cpu": "500m"})], init=[ctr({"cpu": "2"}, name="i")]),
                     {"cpu": 2000}, id="a larger init container sets the floor"),
        pytest.param(pod_with([ctr({"cpu": "500m", "memory": "1Gi"})],
                              init=[ctr({"cpu": "100m", "memory": "2Gi"}, name="i")]),
                     {"cpu": 500, "memory": 2 * GI},
                     id="the init maximum is taken per resource"),
        pytest.param(pod_with([ctr({"cpu": "500m"})],
                              init=[ctr({"cpu": "1"}, name="i1"), ctr({"cpu": "3"}, name="i2")]),
                     {"cpu": 3000}, id="init containers run one at a time, so only the largest counts"),
        pytest.param(pod_with([ctr({"cpu": "500m"})],
                              init=[ctr(limits={"cpu": "2"}, name="i")]),
                     {"cpu": 2000}, id="init containers default their requests from limits too"),
        pytest.param(pod_with([ctr({"cpu": "500m", "memory": "1Gi"})],
                              init=[ctr({"cpu": "100m", "memory": "64Mi"}, restart_policy=SIDECAR,
                                        name="s")]),
                     {"cpu": 600, "memory": GI + 64 * MI},
                     id="a restartable sidecar init container adds to the app sum"),
        pytest.param(pod_with([ctr({"cpu": "500m"})],
                              init=[ctr({"cpu": "100m"}, restart_policy=SIDECAR, name="s"),
                                    ctr({"cpu": "1"}, name="i")]),
                     {"cpu": 1100},
                     id="a sidecar keeps running beside a later init container's peak"),
        pytest.param(pod_with([ctr({"cpu": "500m"})],
                              init=[ctr({"cpu": "1"}, name="i"),
                                    ctr({"cpu": "100m"}, restart_policy=SIDECAR, name="s")]),
                     {"cpu": 1000},
                     id="a sidecar started after an init container does not add to its peak"),
        pytest.param(pod_with([ctr({"cpu": "200m"})],
                              init=[ctr({"cpu": "100m"}, restart_policy=SIDECAR, name="s1"),
                                    ctr({"cpu": "300m"}, restart_policy=SIDECAR, name="s2"),
                                    ctr({"cpu": "500m"}, name="i")]),
                     {"cpu": 900}, id="sidecars accumulate into later init containers' peaks"),
        pytest.param(pod_with([ctr({"cpu": "250m"})],
                              overhead={"cpu": "250m", "memory": "120Mi"}),
                     {"cpu": 500, "memory": 120 * MI}, id="spec.overhead is added on top"),
        pytest.param(pod_with([ctr({"cpu": "100m"})], init=[ctr({"cpu": "2"}, name="i")],
                              overhead={"cpu": "100m"}),
                     {"cpu": 2100}, id="overhead is added after the init maximum"),
        pytest.param(pod_with([ctr({"cpu": "1"}, {"nvidia.com/gpu": "2"})]),
                     {"cpu": 1000, "nvidia.com/gpu": 2},
                     id="an extended resource given only as a limit becomes a request"),
        pytest.param(pod_with([ctr({"cpu": "1", "example.com/fpga": 1}),
                               ctr({"example.com/fpga": 2}, name="d")]),
                     {"cpu": 1000, "example.com/fpga": 3}, id="extended resources are summed"),
        pytest.param(pod_with([ctr({"hugepages-2Mi": "64Mi", "ephemeral-storage": "1Gi"})]),
                     {"hugepages-2Mi": 64 * MI, "ephemeral-storage": GI},
                     id="hugepages and ephemeral storage are counted in bytes"),
        pytest.param(pod_with([ctr({"cpu": "0", "memory": "0"})]), {},
                     id="zero requests are dropped"),
        pytest.param(pod_with([ctr({"cpu": "0", "memory": "1Gi"})]), {"memory": GI},
                     id="a zero request is dropped while the others stay"),
        pytest.param(pod_with([ctr()]), {}, id="a container without resources requests nothing"),
        pytest.param(pod_with([ctr({"cpu": 2, "memory": 0.5})]), {"cpu": 2000, "memory": 1},
                     id="YAML numbers are quantities and memory rounds up to a whole byte"),
        pytest.param(pod_with([ctr({"cpu": "0.1m"}), ctr({"cpu": "0.1m"}, name="d"),
                               ctr({"cpu": "0.1m"}, name="e")]),
                     {"cpu": 1}, id="fractions of a millicore are summed before rounding up"),
        pytest.param(pod_with([ctr({"cpu": "0.9999999995"}),
                               ctr({"cpu": "0.0000000004"}, name="d")]),
                     {"cpu": 1001},
                     id="each value is rounded up to a whole nano first, as kube parses it"),
    ],
)
def test_effective_requests_follow_kube_pod_requests(pod, expected):
    assert pod.requests() == expected


def test_fixture_pod_requests_include_the_sidecar_and_defaulted_limits(cluster):
    assert pod_named(cluster, "team-a/agent-runner-7d9f8c6b5-abcde").requests() == {
        "cpu": 550, "memory": GI + 64 * MI}
    assert pod_named(cluster, "team-a/agent-runner-7d9f8c6b5-pqrst").requests() == {
        "cpu": 3000, "memory": 8 * GI}
    assert pod_named(cluster, "team-b/trainer-0").requests() == {
        "cpu": 8000, "memory": 64 * GI, "nvidia.com/gpu": 2}
