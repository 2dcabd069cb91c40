"""kube-perf: scheduler_perf configs and templates -> Kubernetes objects -> both planners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import cli
from benchmarks.kube_perf.suite import (
    GREEDY,
    OURS,
    KubePerfConfig,
    inventory,
    place_init_pods,
    run_shape,
)
from benchmarks.kube_perf.workloads import (
    DATA_DIR,
    HOSTNAME,
    build_objects,
    discover,
    floor_for,
    parse_config,
    select,
)

NODE = """apiVersion: v1
kind: Node
metadata:
  generateName: scheduler-perf-
spec: {}
status:
  capacity:
    pods: "110"
    cpu: "4"
    memory: 32Gi
"""
NODE_EXT = """apiVersion: v1
kind: Node
metadata:
  generateName: ext-
status:
  capacity:
    pods: "110"
    cpu: "4"
    memory: 32Gi
    foo.com/bar-{{.Index}}: 1
"""
POD = """apiVersion: v1
kind: Pod
metadata:
  generateName: pod-
spec:
  containers:
  - name: pause
    image: pause
    resources:
      requests: {cpu: 100m, memory: 500Mi}
"""
POD_ANTI = """apiVersion: v1
kind: Pod
metadata:
  generateName: anti-
  labels: {color: green}
spec:
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector: {matchLabels: {color: green}}
        topologyKey: kubernetes.io/hostname
        namespaces: [sched-0, sched-1]
  containers:
  - name: pause
    image: pause
    resources:
      requests: {cpu: 100m, memory: 500Mi}
"""
POD_EXT = """apiVersion: v1
kind: Pod
metadata:
  name: ext-pod-{{.Index}}
spec:
  containers:
  - name: pause
    image: pause
    resources:
      requests:
        foo.com/bar-{{.Index}}: 1
"""
CONFIG = """
- name: SchedulingBasic
  defaultPodTemplatePath: ../templates/pod-default.yaml
  workloadTemplate:
  - opcode: createNodes
    countParam: $initNodes
    labelNodePrepareStrategy:
      labelKey: topology.kubernetes.io/zone
      labelValues: [moon-1, moon-2, moon-3]
  - opcode: createPods
    countParam: $initPods
  - opcode: createPods
    countParam: $measurePods
    collectMetrics: true
  workloads:
  - name: 5Nodes
    params: {initNodes: 5, initPods: 5, measurePods: 10}
  - name: 6Nodes_Gated
    featureGates: {Foo: true}
    params: {initNodes: 6, initPods: 4, measurePods: 8}
  - name: 6Nodes
    params: {initNodes: 6, initPods: 4, measurePods: 8}
  - name: 600Nodes
    threshold: 680
    params: {initNodes: 600, initPods: 100, measurePods: 1000}
- name: SchedulingPodAntiAffinity
  defaultPodTemplatePath: ../templates/pod-anti.yaml
  workloadTemplate:
  - opcode: createNodes
    countParam: $initNodes
  - opcode: createNamespaces
    prefix: sched
    count: 2
  - opcode: createPods
    countParam: $initPods
    namespace: sched-0
  - opcode: createPods
    countParam: $measurePods
    namespace: sched-1
    collectMetrics: true
  workloads:
  - name: 4Nodes
    threshold: 60
    params: {initNodes: 4, initPods: 1, measurePods: 4}
- name: SchedulingWithExtendedResource
  workloadTemplate:
  - opcode: createNodes
    nodeTemplatePath: ../templates/node-ext.yaml
    countParam: $nodes
  - opcode: createPods
    podTemplatePath: ../templates/pod-ext.yaml
    countParam: $measurePods
    collectMetrics: true
  workloads:
  - name: 3
    params: {nodes: 3, measurePods: 3}
- name: PreemptionBasic
  defaultPodTemplatePath: ../templates/pod-default.yaml
  workloadTemplate:
  - opcode: createNodes
    countParam: $initNodes
  - opcode: createPods
    countParam: $measurePods
    collectMetrics: true
  workloads:
  - name: 5Nodes
    params: {initNodes: 5, measurePods: 5}
- name: SchedulingWithMixedChurn
  workloadTemplate:
  - opcode: createNodes
    countParam: $initNodes
  - opcode: churn
    mode: recreate
  - opcode: createPods
    countParam: $measurePods
    podTemplatePath: ../templates/pod-default.yaml
    collectMetrics: true
  workloads:
  - name: 5Nodes
    params: {initNodes: 5, measurePods: 5}
- name: SchedulingDaemonset
  workloadTemplate:
  - opcode: createNodes
    count: 1
    nodeTemplatePath: ../templates/node-with-name.yaml
  - opcode: createPods
    countParam: $measurePods
    podTemplatePath: ../templates/pod-default.yaml
    collectMetrics: true
  workloads:
  - name: 5Nodes
    params: {measurePods: 5}
"""


def write_data(root: Path) -> Path:
    base = root / DATA_DIR
    (base / "templates").mkdir(parents=True)
    (base / "misc").mkdir()
    for name, text in (("node-default.yaml", NODE), ("node-ext.yaml", NODE_EXT),
                       ("pod-default.yaml", POD), ("pod-anti.yaml", POD_ANTI),
                       ("pod-ext.yaml", POD_EXT)):
        (base / "templates" / name).write_text(text)
    (base / "misc" / "performance-config.yaml").write_text(CONFIG)
    return root


@pytest.fixture
def perf_data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data")


def _by_key(data: Path) -> dict:
    return {w.key: w for w in discover(data)}


def test_parse_config_params_thresholds_and_skips(perf_data: Path):
    ws = parse_config(perf_data / DATA_DIR / "misc" / "performance-config.yaml")
    assert [w.key for w in ws][:4] == ["SchedulingBasic/5Nodes", "SchedulingBasic/6Nodes_Gated",
                                       "SchedulingBasic/6Nodes", "SchedulingBasic/600Nodes"]
    w = {w.key: w for w in ws}
    assert w["SchedulingBasic/600Nodes"].threshold == 680
    assert w["SchedulingBasic/5Nodes"].sizes() == {"nodes": 5, "init_pods": 5, "measure_pods": 10}
    assert w["SchedulingBasic/6Nodes_Gated"].feature_gates == {"Foo": True}
    assert w["SchedulingBasic/5Nodes"].skip_reason() is None
    assert w["PreemptionBasic/5Nodes"].skip_reason() is None  # preemption is modelled
    assert "churn" in w["SchedulingWithMixedChurn/5Nodes"].skip_reason()
    assert "node-with-name.yaml" in w["SchedulingDaemonset/5Nodes"].skip_reason()
    # smoke floor comes from the case's performance workload
    assert floor_for(w["SchedulingBasic/5Nodes"], ws) == (680, "SchedulingBasic/600Nodes")


def test_tier_selection(perf_data: Path):
    ws = discover(perf_data)
    smoke = {w.case: w.name for w in select(ws, "smoke")}
    # the largest with <= 500 nodes; of same-size variants the plain one
    assert smoke["SchedulingBasic"] == "6Nodes"
    assert {w.case: w.name for w in select(ws, "standard")}["SchedulingBasic"] == "600Nodes"
    assert {w.case: w.name for w in select(ws, "stress")}["SchedulingBasic"] == "600Nodes"


def test_objects_from_templates(perf_data: Path):
    w = _by_key(perf_data)["SchedulingBasic/5Nodes"]
    built = build_objects(w)
    assert [n["metadata"]["name"] for n in built.nodes] == [f"scheduler-perf-{i}" for i in range(5)]
    n0 = built.nodes[0]
    assert n0["metadata"]["labels"][HOSTNAME] == "scheduler-perf-0"
    assert [n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in built.nodes] == \
        ["moon-1", "moon-2", "moon-3", "moon-1", "moon-2"]
    assert n0["status"]["allocatable"] == n0["status"]["capacity"]
    assert len(built.init_pods) == 5 and len(built.measured) == 10
    names = {p["metadata"]["name"] for p in built.init_pods + built.measured}
    assert len(names) == 15  # generateName + one counter per prefix: no duplicates
    assert place_init_pods(built)["method"] == "round-robin"
    inv = inventory(built)
    assert len(inv.nodes) == 5 and len(inv.running) == 5 and len(inv.pending) == 10
    # caps (the smoke tier): nodes scaled, pods per op capped
    capped = build_objects(_by_key(perf_data)["SchedulingBasic/600Nodes"], max_nodes=50,
                           max_pods=20)
    assert capped.caps == {"nodes": 50, "init_pods": 20, "measure_pods": 20}


def test_index_templates_and_constrained_init_pods(perf_data: Path):
    ext = build_objects(_by_key(perf_data)["SchedulingWithExtendedResource/3"])
    assert [n["status"]["capacity"].get(f"foo.com/bar-{i}") for i, n in enumerate(ext.nodes)] \
        == [1, 1, 1]
    assert [p["metadata"]["name"] for p in ext.measured] == [f"ext-pod-{i}" for i in range(3)]
    anti = build_objects(_by_key(perf_data)["SchedulingPodAntiAffinity/4Nodes"])
    assert place_init_pods(anti)["method"] == "greedy-LeastAllocated"
    assert anti.init_pods[0]["spec"]["nodeName"].startswith("scheduler-perf-")
    assert {ns["metadata"]["name"] for ns in anti.namespaces} == {"sched-0", "sched-1"}


def test_skip_message_when_the_data_is_absent(tmp_path: Path, capsys):
    missing = tmp_path / "nowhere"
    assert cli.main(["kube-perf", "--data", str(missing), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "AGENTPLACE_DATA" in out
    assert not (tmp_path / "o").exists()


def test_one_tiny_shape_both_planners_verified(perf_data: Path):
    w = _by_key(perf_data)["SchedulingPodAntiAffinity/4Nodes"]
    r = run_shape(w, KubePerfConfig(time_limit=5, workers=1), (60.0, w.key))
    assert r.violations == []
    ours, greedy = r.record["methods"][OURS], r.record["methods"][GREEDY]
    # 4 nodes, 1 running green pod: only 3 of the 4 anti-affine pods fit
    assert ours["placed"] == 3 and greedy["placed"] == 3 and ours["verified"]
    assert ours["status"] == "OPTIMAL" and ours["bound"] is not None
    assert ours["throughput"] > 0 and ours["vs_floor"] == round(ours["throughput"] / 60, 3)
    assert "untolerated" not in json.dumps(ours["unplaced_reasons"])


def test_cli_end_to_end_on_the_fixture(perf_data: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["kube-perf", "--data", str(perf_data), "--out", str(out), "--time-limit", "5",
                   "--workers", "1", "--sets", "SchedulingPodAntiAffinity,PreemptionBasic"])
    text = capsys.readouterr().out
    assert rc == 0, text
    res = json.loads((out / "results.json").read_text())
    assert res["ok"] and res["parameters"]["time_limit"] == 5
    shapes = {s["key"]: s for s in res["shapes"]}
    pre = shapes["PreemptionBasic/5Nodes"]
    assert not pre["skipped"]
    for m in pre["methods"].values():  # the fixture's nodes are empty: nothing to preempt
        assert m["placed"] == pre["measure_pods"] and m["evictions"] == 0 and m["verified"], m
    assert not shapes["SchedulingPodAntiAffinity/4Nodes"]["skipped"]
    assert (out / "results.csv").read_text().count("\n") == 3


@pytest.mark.slow
def test_smoke_run_on_one_real_shape(tmp_path: Path):
    from benchmarks.common import resolve_data_dir

    data = resolve_data_dir(None)
    if not (data / DATA_DIR).is_dir():
        pytest.skip(f"no {DATA_DIR} data under {data}")
    out = tmp_path / "out"
    rc = cli.main(["kube-perf", "--tier", "smoke", "--data", str(data), "--out", str(out),
                   "--sets", "SchedulingBasic", "--time-limit", "5"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    (shape,) = res["shapes"]
    assert shape["key"] == "SchedulingBasic/500Nodes" and shape["sizes"]["nodes"] == 500
    ours = shape["methods"][OURS]
    assert ours["placed"] == 500 and ours["verified"] and shape["floor"] == 680
