"""scheduler_perf's performance-config.yaml files and templates -> kubectl-shaped objects.

A test case's `workloadTemplate` is a list of ops; a workload binds its `$params`. Supported
ops: createNodes (template, count, labelNodePrepareStrategy), createNamespaces, createPods
(init pods, or the measured window when `collectMetrics: true`). Anything else (churn, barrier,
deletePods, createAny, createPodSets, a template that is not staged) makes the workload skipped
with the reason. Mapping decisions (recorded in results.json):
  - status.allocatable = status.capacity (the API server's defaulting does the same);
  - every node gets `kubernetes.io/hostname: <name>` (kubelet sets it; hostname-topology rules
    need it);
  - `{{.Index}}` in a template is the object's index within its op (upstream's convention);
  - pods get the op's namespace, else `namespace-<op>`; names are generateName + a counter.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = "k8s-scheduler-perf"
CONFIG_NAME = "performance-config.yaml"
DEFAULT_NODE_TEMPLATE = "../templates/node-default.yaml"
SUPPORTED_OPS = {"createNodes", "createNamespaces", "createPods"}
HOSTNAME = "kubernetes.io/hostname"
# rules agentplace does not implement yet: the test case is reported as skipped, never faked
UNIMPLEMENTED: dict[str, str] = {}


@dataclass(frozen=True)
class Workload:
    config: Path  # the performance-config.yaml it came from
    case: str  # test case name, e.g. SchedulingBasic
    name: str  # workload name, e.g. 5000Nodes_10000Pods
    ops: tuple[dict[str, Any], ...]
    params: dict[str, int]
    threshold: float | None  # upstream's floor, pods/s
    labels: tuple[str, ...] = ()
    feature_gates: dict[str, bool] = field(default_factory=dict)
    default_pod_template: str | None = None

    @property
    def key(self) -> str:
        return f"{self.case}/{self.name}"

    def count(self, op: dict[str, Any]) -> int:
        if "countParam" in op:
            return int(self.params[str(op["countParam"]).lstrip("$")])
        return int(op.get("count", 0))

    def sizes(self) -> dict[str, int]:
        nodes = sum(self.count(op) for op in self.ops if op.get("opcode") == "createNodes")
        init = sum(self.count(op) for op in self.ops
                   if op.get("opcode") == "createPods" and not op.get("collectMetrics"))
        measured = sum(self.count(op) for op in self.ops
                       if op.get("opcode") == "createPods" and op.get("collectMetrics"))
        return {"nodes": nodes, "init_pods": init, "measure_pods": measured}

    def skip_reason(self) -> str | None:
        for prefix, reason in UNIMPLEMENTED.items():
            if self.case.startswith(prefix):
                return reason
        for op in self.ops:
            code = op.get("opcode")
            if code not in SUPPORTED_OPS:
                return f"opcode {code!r} is not modelled (a window is a static snapshot)"
            if code in ("createNodes", "createPods"):
                try:
                    self.count(op)
                except (KeyError, ValueError) as e:
                    return f"{code}: count parameter missing: {e}"
                tpl = self.template_path(op)
                if tpl is None:
                    return f"{code}: no template given"
                if not tpl.is_file():
                    return f"template {tpl.name} is not staged in the data"
        if not self.sizes()["measure_pods"]:
            return "no measured pods"
        return None

    def template_path(self, op: dict[str, Any]) -> Path | None:
        if op.get("opcode") == "createNodes":
            rel = op.get("nodeTemplatePath") or DEFAULT_NODE_TEMPLATE
        else:
            rel = op.get("podTemplatePath") or self.default_pod_template
        return None if rel is None else (self.config.parent / rel).resolve()


def parse_config(path: Path) -> list[Workload]:
    cases = yaml.safe_load(path.read_text()) or []
    out = []
    for case in cases:
        if not isinstance(case, dict) or "name" not in case:
            continue
        ops = tuple(case.get("workloadTemplate") or ())
        for w in case.get("workloads") or ():
            gates = {**(case.get("featureGates") or {}), **(w.get("featureGates") or {})}
            out.append(Workload(
                config=path, case=str(case["name"]), name=str(w["name"]), ops=ops,
                params={k: int(v) for k, v in (w.get("params") or {}).items()
                        if isinstance(v, int | str) and str(v).isdigit()},
                threshold=float(w["threshold"]) if w.get("threshold") is not None else None,
                labels=tuple(w.get("labels") or ()), feature_gates=gates,
                default_pod_template=case.get("defaultPodTemplatePath")))
    return out


def discover(data: Path) -> list[Workload]:
    root = data / DATA_DIR
    return [w for cfg in sorted(root.glob(f"*/{CONFIG_NAME}")) for w in parse_config(cfg)]


# ---- tiers -----------------------------------------------------------------------------------

SMOKE_NODES = 500
SMOKE_PODS = 500


def _variant_rank(w: Workload) -> tuple[int, int]:
    """Prefer the plain workload over its feature-gate variants (same sizes)."""
    return (len(w.name), len(w.feature_gates))


def select(workloads: list[Workload], tier: str) -> list[Workload]:
    """One workload per test case: smoke = the largest with <= 500 nodes (pods capped at run
    time); standard = upstream's performance size (the first with a threshold, else the largest
    with <= 5000 nodes); stress = the largest."""
    by_case: dict[str, list[Workload]] = {}
    for w in workloads:
        by_case.setdefault(w.case, []).append(w)
    def biggest(pool: list[Workload]) -> Workload:
        return max(pool, key=lambda w: (_safe_sizes(w), [-x for x in _variant_rank(w)]))

    out = []
    for ws in by_case.values():
        if tier == "smoke":
            pick = biggest([w for w in ws if _safe_sizes(w)[0] <= SMOKE_NODES] or ws)
        elif tier == "standard":
            floors = [w for w in ws if w.threshold is not None and _safe_sizes(w)[0] <= 5000]
            pick = floors[0] if floors else biggest(
                [w for w in ws if _safe_sizes(w)[0] <= 5000] or ws)
        else:
            pick = biggest(ws)
        out.append(pick)
    return out


def _safe_sizes(w: Workload) -> tuple[int, int]:
    try:
        s = w.sizes()
    except (KeyError, ValueError):
        return (0, 0)
    return (s["nodes"], s["measure_pods"])


# ---- objects ---------------------------------------------------------------------------------

_INDEX = re.compile(r"\{\{\s*\.Index\s*\}\}")


def _render(text: str, index: int) -> dict[str, Any]:
    return yaml.safe_load(_INDEX.sub(str(index), text))


def _rendered(path: Path, count: int) -> list[dict[str, Any]]:
    text = path.read_text()
    if not _INDEX.search(text):
        base = yaml.safe_load(text)
        return [copy.deepcopy(base) for _ in range(count)]
    return [_render(text, i) for i in range(count)]


def has_constraints(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("affinity") or spec.get("topologySpreadConstraints")
                or spec.get("nodeSelector"))


@dataclass
class Built:
    nodes: list[dict[str, Any]]
    init_pods: list[dict[str, Any]]  # without spec.nodeName yet
    measured: list[dict[str, Any]]
    namespaces: list[dict[str, Any]]
    caps: dict[str, int]  # counts actually built, after tier caps


def build_objects(w: Workload, max_nodes: int | None = None,
                  max_pods: int | None = None) -> Built:
    """Nodes, init pods and measured pods as kubectl-shaped dicts. With caps (smoke tier), node
    ops are scaled down to at most max_nodes in all and each pod op to at most max_pods."""
    nodes: list[dict[str, Any]] = []
    init: list[dict[str, Any]] = []
    measured: list[dict[str, Any]] = []
    namespaces: dict[str, dict[str, Any]] = {}
    total_nodes = w.sizes()["nodes"]
    scale = min(1.0, max_nodes / total_nodes) if max_nodes and total_nodes else 1.0
    names: dict[str, int] = {}

    def name_for(obj: dict[str, Any]) -> str:
        meta = obj.setdefault("metadata", {})
        if meta.get("name"):
            return str(meta["name"])
        prefix = meta.pop("generateName", None) or "obj-"
        n = names.get(prefix, 0)
        names[prefix] = n + 1
        return f"{prefix}{n}"

    for k, op in enumerate(w.ops):
        code = op["opcode"]
        if code == "createNamespaces":
            for i in range(int(op.get("count", 1))):
                ns = f"{op.get('prefix', 'namespace')}-{i}"
                namespaces[ns] = {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": ns}}
            continue
        count = w.count(op)
        path = w.template_path(op)
        assert path is not None
        if code == "createNodes":
            count = max(1, round(count * scale)) if scale < 1 and count else count
            strategy = op.get("labelNodePrepareStrategy") or {}
            values = list(strategy.get("labelValues") or [])
            for i, obj in enumerate(_rendered(path, count)):
                name = name_for(obj)
                meta = obj["metadata"]
                meta["name"] = name
                labels = meta.setdefault("labels", {}) or {}
                meta["labels"] = labels
                labels[HOSTNAME] = name
                if values:
                    labels[strategy["labelKey"]] = values[i % len(values)]
                status = obj.setdefault("status", {})
                status.setdefault("allocatable", dict(status.get("capacity") or {}))
                nodes.append(obj)
            continue
        if max_pods is not None:
            count = min(count, max_pods)
        ns = op.get("namespace") or f"namespace-{k}"
        namespaces.setdefault(ns, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": ns}})
        target = measured if op.get("collectMetrics") else init
        for obj in _rendered(path, count):
            obj["metadata"]["name"] = name_for(obj)
            obj["metadata"]["namespace"] = ns
            target.append(obj)
    return Built(nodes, init, measured, list(namespaces.values()),
                 {"nodes": len(nodes), "init_pods": len(init), "measure_pods": len(measured)})


def floor_for(w: Workload, workloads: list[Workload]) -> tuple[float | None, str | None]:
    """Upstream's throughput floor (pods/s) for w: its own threshold, else the first threshold
    of the same test case (smoke sizes have none; the floor then belongs to a larger size)."""
    if w.threshold is not None:
        return w.threshold, w.key
    for o in workloads:
        if o.case == w.case and o.config == w.config and o.threshold is not None:
            return o.threshold, o.key
    return None, None
