"""Seeded windows of any size for the scale suite, as kubectl-shaped dicts.

basic: SchedulingBasic-like (kube-scheduler scheduler_perf `node-default.yaml`: 4 cpu, 32Gi,
       110 pods; `pod-default.yaml`: 100m cpu, 500Mi): identical nodes, one agent shape, every
       tenth node already running one pod (upstream binds init pods before measuring).
mixed: three zones, two node sizes, four agent shapes: plain small, plain large, a zone
       spread (maxSkew 1, DoNotSchedule, selector on its own label) and a required pod
       anti-affinity on kubernetes.io/hostname against its own label (one per node).
"""

from __future__ import annotations

from typing import Any

ZONES = ("zone-a", "zone-b", "zone-c")


def _node(name: str, cpu: str, memory: str, labels: dict[str, str]) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "spec": {}, "status": {"allocatable": alloc, "capacity": dict(alloc)}}


def _pod(name: str, cpu: str, memory: str, labels: dict[str, str], node: str | None = None,
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "agent", "image": "agent:1",
                                            "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
                            **(extra or {})}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "scale", "labels": labels},
            "spec": spec, "status": {"phase": "Running" if node else "Pending"}}


def basic(nodes: int, agents: int) -> list[dict[str, Any]]:
    docs = [_node(f"node-{i:06d}", "4", "32Gi", {}) for i in range(nodes)]
    docs += [_pod(f"init-{i:06d}", "100m", "500Mi", {"app": "init"}, node=f"node-{i:06d}")
             for i in range(0, nodes, 10)]
    docs += [_pod(f"agent-{j:06d}", "100m", "500Mi", {"app": "basic"}) for j in range(agents)]
    return docs


def mixed(nodes: int, agents: int) -> list[dict[str, Any]]:
    docs = []
    for i in range(nodes):
        big = i % 4 == 0
        docs.append(_node(f"node-{i:06d}", "16" if big else "8", "64Gi" if big else "32Gi",
                          {"topology.kubernetes.io/zone": ZONES[i % 3],
                           "size": "big" if big else "small"}))
    spread = {"topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]}
    anti = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": {"app": "anti"}}}]}}}
    # shares of the window: 50 % small, 20 % large, 20 % spread, 10 % anti-affinity (at most
    # one per node, so it can always fit)
    for j in range(agents):
        r = j % 10
        if r < 5:
            docs.append(_pod(f"small-{j:06d}", "250m", "512Mi", {"app": "small"}))
        elif r < 7:
            docs.append(_pod(f"large-{j:06d}", "2", "4Gi", {"app": "large"}))
        elif r < 9:
            docs.append(_pod(f"spread-{j:06d}", "500m", "1Gi", {"app": "spread"}, extra=spread))
        else:
            docs.append(_pod(f"anti-{j:06d}", "1", "2Gi", {"app": "anti"}, extra=anti))
    return docs


SHAPES = {"basic": basic, "mixed": mixed}
