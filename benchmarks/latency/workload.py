"""A seeded interactive window: 500 nodes and 50 pending agents that exercise every hard rule.

Cluster (the same for every window of a run, seeded):
  nodes     500 in 3 zones (topology.kubernetes.io/zone), round robin; pools by index: every 10th
            `gpu` (32 cpu, 256Gi, 4 or 8 nvidia.com/gpu, gpu product label A100 or H100, taint
            nvidia.com/gpu=present:NoSchedule), every 5th other `highmem` (16 cpu, 128Gi), the
            rest `general` (8 cpu, 32Gi); every 97th node cordoned
  running   a 4-cpu `batch` pod on about half of the general nodes; an `app=vector-db` pod on
            every 4th highmem node (the retrieval agents' affinity target); some `app=chat` pods
  policy    PriorityClasses high (1000) / normal (100) / low (10); a ResourceQuota on team-b
            (requests.cpu 24, pods 30); a TokenBudget on team-a (8M tokens per hour); a PodGroup
            per window (minMember 4) in team-c
Window (50 agents, sizes drawn per window):
  team-a chat x15       topology spread over zones (maxSkew 1, DoNotSchedule), 6-10 x 100k
                        tokens/h each (the token budget binds), priority normal
  team-a retrieval x5   nodeSelector pool=highmem, required pod affinity to app=vector-db in the
                        zone, required anti-affinity to each other per host, priority normal
  team-b tool x20       required anti-affinity to app=batch per host, priority low or normal;
                        the quota binds
  team-c infer x6       1 GPU, toleration, required node affinity gpu product In [A100, H100],
                        priority high
  team-c gang x4        1 GPU each, a PodGroup with minMember 4 (all or nothing), priority normal
"""

from __future__ import annotations

import random
from typing import Any

from models import Inventory, load_documents

ZONES = ("zone-a", "zone-b", "zone-c")
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
GPU_PRODUCT = "nvidia.com/gpu.product"
GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
NODES, AGENTS = 500, 50


def _node(i: int, rng: random.Random) -> dict[str, Any]:
    pool = "gpu" if i % 10 == 0 else "highmem" if i % 5 == 0 else "general"
    cpu, mem = {"gpu": ("32", "256Gi"), "highmem": ("16", "128Gi"), "general": ("8", "32Gi")}[pool]
    alloc = {"cpu": cpu, "memory": mem, "pods": "110", "ephemeral-storage": "100Gi"}
    name = f"node-{i:04d}"
    labels = {ZONE: ZONES[i % 3], HOST: name, "pool": pool}
    spec: dict[str, Any] = {}
    if pool == "gpu":
        alloc["nvidia.com/gpu"] = rng.choice(("4", "8"))
        labels[GPU_PRODUCT] = rng.choice(("A100", "H100", "L4"))
        spec["taints"] = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    if i % 97 == 13:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": spec, "status": {"allocatable": alloc, "capacity": dict(alloc)}}


def _pod(name: str, ns: str, labels: dict[str, str], req: dict[str, str], *,
         node: str | None = None, priority_class: str | None = None,
         annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "agent", "resources": {"requests": req}}],
                            **spec}
    if node:
        body["nodeName"] = node
    if priority_class:
        body["priorityClassName"] = priority_class
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body,
            "status": {"phase": "Running" if node else "Pending"}}


def cluster(seed: int = 0, nodes: int = NODES) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs = [_node(i, rng) for i in range(nodes)]
    for i in range(nodes):
        name = f"node-{i:04d}"
        pool = docs[i]["metadata"]["labels"]["pool"]
        if pool == "general" and rng.random() < 0.5:
            docs.append(_pod(f"batch-{i}", "batch", {"app": "batch"}, {"cpu": "4", "memory": "8Gi"},
                             node=name))
        if pool == "highmem" and i % 4 == 0:
            docs.append(_pod(f"vector-db-{i}", "team-a", {"app": "vector-db"},
                             {"cpu": "4", "memory": "32Gi"}, node=name))
        if pool == "general" and i % 7 == 0:
            docs.append(_pod(f"chat-run-{i}", "team-a", {"app": "chat"},
                             {"cpu": "500m", "memory": "1Gi"}, node=name))
    docs += [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
              "metadata": {"name": n}, "value": v} for n, v in (("high", 1000), ("normal", 100),
                                                                ("low", 10))]
    docs += [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": ns, "labels": {"team": ns}}}
             for ns in ("team-a", "team-b", "team-c", "batch")]
    docs.append({"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "agent-quota", "namespace": "team-b"},
                 "spec": {"hard": {"requests.cpu": "24", "pods": "30"}}})
    docs.append({"apiVersion": "agentplace.io/v1alpha1", "kind": "TokenBudget",
                 "metadata": {"name": "chat-hourly", "namespace": "team-a"},
                 "spec": {"tenant": {"namespace": "team-a"}, "period": "1h", "tokens": "8M"}})
    return docs


def window(w: int, seed: int = 0) -> list[dict[str, Any]]:
    """The pending agents of window `w` (and its PodGroup): 50 agents, sizes drawn per window."""
    rng = random.Random(seed * 1_000_003 + w)
    docs: list[dict[str, Any]] = []
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "chat"}}}]
    for j in range(15):
        docs.append(_pod(f"chat-{w}-{j}", "team-a", {"app": "chat"},
                         {"cpu": rng.choice(("250m", "500m")), "memory": "1Gi"},
                         priority_class="normal", topologySpreadConstraints=spread,
                         annotations={"agentplace.io/tokens-per-hour":
                                      str(100_000 * rng.randint(6, 10))}))
    retrieval_aff = {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "vector-db"}}, "topologyKey": ZONE}]},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "retrieval"}}, "topologyKey": HOST}]}}
    for j in range(5):
        docs.append(_pod(f"retrieval-{w}-{j}", "team-a", {"app": "retrieval"},
                         {"cpu": "2", "memory": rng.choice(("8Gi", "16Gi"))},
                         priority_class="normal", nodeSelector={"pool": "highmem"},
                         affinity=retrieval_aff,
                         annotations={"agentplace.io/tokens-per-hour": "100000"}))
    tool_aff = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "batch"}}, "topologyKey": HOST,
         "namespaces": ["batch"]}]}}
    for j in range(20):
        docs.append(_pod(f"tool-{w}-{j}", "team-b", {"app": "tool"},
                         {"cpu": rng.choice(("1", "1500m")), "memory": "2Gi"},
                         priority_class=rng.choice(("low", "normal")), affinity=tool_aff))
    gpu_tol = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    gpu_aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": GPU_PRODUCT, "operator": "In", "values": ["A100", "H100"]}]}]}}}
    for j in range(6):
        docs.append(_pod(f"infer-{w}-{j}", "team-c", {"app": "infer"},
                         {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
                         priority_class="high", tolerations=gpu_tol, affinity=gpu_aff))
    group = f"train-{w}"
    docs.append({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                 "metadata": {"name": group, "namespace": "team-c"}, "spec": {"minMember": 4}})
    for j in range(4):
        docs.append(_pod(f"train-{w}-{j}", "team-c", {"app": "train", GROUP_LABEL: group},
                         {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
                         priority_class="normal", tolerations=gpu_tol))
    return docs


def inventory(w: int, seed: int = 0, base: list[dict[str, Any]] | None = None) -> Inventory:
    return load_documents([*(base if base is not None else cluster(seed)), *window(w, seed)],
                          source=f"latency-window-{w}")
