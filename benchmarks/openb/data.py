"""The openb data as agentplace input: Node YAML as given, pod CSV rows as pending Pods.

Source: `alibaba-gpu-v2023-openb/` (see its PROVENANCE.md): Alibaba cluster-trace-gpu-v2023 and
the FGD simulator's published results (Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC'23).

Mapping (the convention of optimizer/gpu_cards.py):
  - nodes: `node_yaml/openb_node_list_gpu_node.yaml` read by the project loader, unchanged
    (allocatable cpu, memory, pods, `alibabacloud.com/gpu-count`, `alibabacloud.com/gpu-milli`,
    label `alibabacloud.com/gpu-card-model`).
  - pods: one pending Pod per CSV row, namespace `openb`, requests cpu = `cpu_milli`m, memory =
    `memory_mib`Mi, `alibabacloud.com/gpu-milli` = `num_gpu` x `gpu_milli` (a share when num_gpu
    is 1 and gpu_milli < 1000, else whole cards); `gpu_spec` (models joined by "|") becomes
    required node affinity `alibabacloud.com/gpu-card-model In [...]`. Phase, times and qos are
    not used (the simulator replays every row as a new pod, whatever its phase).
  - workload: the simulator's workload tuning (its `-tune 1.3`): random rows are removed (when
    the list asks for more than the target) or random copies appended until the GPU request
    reaches `tune` x the cluster's GPU capacity, then the list is shuffled (`--shuffle-pod`);
    the order is the arrival order. Seeded with numpy (the simulator used Go's math/rand, so
    the sequence differs; seeds 42.. mirror its ten seeds in spirit only).
  - smoke scale: a seeded, model-stratified sample of the nodes, and the workload tuned to that
    sample's capacity.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models import Node, Pod, load_paths
from models.load import load_documents
from optimizer.gpu_cards import GPU_MILLI, GPU_MODEL, node_cards

DATA_DIR = "alibaba-gpu-v2023-openb"
NODE_YAML = "node_yaml/openb_node_list_gpu_node.yaml"
POD_CSV = "csv/openb_pod_list_{workload}.csv"
EXPECTED = "fgd-atc23-expected-results"
NAMESPACE = "openb"


@dataclass(frozen=True)
class Row:
    """One pod request of the trace."""

    name: str
    cpu: int  # millicores
    mem: int  # MiB
    gpus: int  # num_gpu
    milli: int  # gpu_milli per GPU
    spec: tuple[str, ...]  # allowed GPU models, empty = any

    @property
    def gpu_total(self) -> int:
        return self.gpus * self.milli if self.gpus else 0


def read_rows(path: Path) -> list[Row]:
    out = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            gpus = int(r["num_gpu"])
            milli = int(r["gpu_milli"]) if gpus else 0
            spec = tuple(m for m in (r.get("gpu_spec") or "").split("|") if m)
            out.append(Row(r["name"], int(r["cpu_milli"]), int(r["memory_mib"]), gpus,
                           min(milli, 1000) if gpus > 1 else milli, spec))
    return out


def read_nodes(data: Path) -> list[Node]:
    inv = load_paths([data / DATA_DIR / NODE_YAML])
    return list(inv.nodes)


def sample_nodes(nodes: list[Node], fraction: float, seed: int) -> list[Node]:
    """A seeded sample stratified by (GPU model, cards), at least one node per stratum."""
    if fraction >= 1:
        return nodes
    rng = np.random.default_rng(seed)
    strata: dict[tuple[str, int], list[Node]] = {}
    for n in nodes:
        strata.setdefault((n.labels.get(GPU_MODEL, ""), node_cards(n)), []).append(n)
    keep: set[str] = set()
    for group in strata.values():
        k = max(1, round(fraction * len(group)))
        keep.update(group[i].name for i in rng.choice(len(group), size=k, replace=False))
    return [n for n in nodes if n.name in keep]


def tune(rows: list[Row], capacity_milli: int, ratio: float, seed: int) -> list[Row]:
    """The simulator's workload tuning then shuffle: GPU request ~ ratio x capacity."""
    rng = np.random.default_rng(seed)
    target = ratio * capacity_milli
    out = list(rows)
    total = sum(r.gpu_total for r in out)
    while total > target and out:
        total -= out.pop(int(rng.integers(len(out)))).gpu_total
    i = 0
    while total < target:
        src = rows[int(rng.integers(len(rows)))]
        if total + src.gpu_total > target:
            break
        out.append(Row(f"{src.name}-tuned-{i}", src.cpu, src.mem, src.gpus, src.milli, src.spec))
        total += src.gpu_total
        i += 1
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def pod_doc(row: Row) -> dict[str, Any]:
    requests = {"cpu": f"{row.cpu}m", "memory": f"{row.mem}Mi"}
    if row.gpu_total:
        requests[GPU_MILLI] = str(row.gpu_total)
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "agent:1",
                                            "resources": {"requests": requests}}]}
    if row.spec:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": GPU_MODEL, "operator": "In", "values": list(row.spec)}]}]}}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": row.name.lower(), "namespace": NAMESPACE}, "spec": spec,
            "status": {"phase": "Pending"}}


def to_pods(rows: list[Row]) -> list[Pod]:
    return list(load_documents([pod_doc(r) for r in rows], "openb").pods)


@dataclass(frozen=True)
class Workload:
    name: str
    nodes: list[Node]
    rows: list[Row]  # arrival order
    capacity_milli: int

    def demand_pct(self) -> np.ndarray:
        """float[pod]: cumulative arrived GPU demand, % of capacity, after each arrival."""
        cum = np.cumsum([r.gpu_total for r in self.rows], dtype=np.int64)
        return 100.0 * cum / self.capacity_milli


def load_workload(data: Path, workload: str, *, node_fraction: float, tune_ratio: float,
                  seed: int) -> Workload:
    nodes = sample_nodes(read_nodes(data), node_fraction, seed)
    capacity = sum(node_cards(n) for n in nodes) * 1000
    rows = read_rows(data / DATA_DIR / POD_CSV.format(workload=workload))
    return Workload(workload, nodes, tune(rows, capacity, tune_ratio, seed), capacity)


def available_workloads(data: Path) -> list[str]:
    folder = data / DATA_DIR / "csv"
    return sorted(p.stem.removeprefix("openb_pod_list_") for p in folder.glob("openb_pod_list_*.csv"))


def published(data: Path, workload: str) -> dict[str, dict[int, float]]:
    """policy -> {demand %: mean % of GPUs allocated over the 10 seeds} (analysis_allo_discrete)."""
    return _published(data / DATA_DIR / EXPECTED / "analysis_allo_discrete.csv", workload)


def published_frag(data: Path, workload: str) -> dict[str, dict[int, float]]:
    """policy -> {demand %: mean GPU fragmentation, % of cluster GPUs} (analysis_frag_discrete)."""
    return _published(data / DATA_DIR / EXPECTED / "analysis_frag_discrete.csv", workload)


def _published(path: Path, workload: str) -> dict[str, dict[int, float]]:
    if not path.is_file():
        return {}
    sums: dict[str, dict[int, list[float]]] = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            if r["workload"] != f"openb_pod_list_{workload}":
                continue
            policy = r["sc_policy"].split("-", 1)[1]
            cols = sums.setdefault(policy, {})
            for k, v in r.items():
                if k.isdigit() and v not in ("", None):
                    cols.setdefault(int(k), []).append(float(v))
    return {p: {k: round(float(np.mean(v)), 2) for k, v in cols.items()} for p, cols in sums.items()}
