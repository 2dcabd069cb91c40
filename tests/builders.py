"""Small builders for kubectl-shaped dicts, so table cases stay one line each."""

from __future__ import annotations

from typing import Any

from models import Inventory, load_documents


def node(name: str, cpu: str = "4", memory: str = "16Gi", pods: str = "110", *,
         labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False, extra: dict[str, str] | None = None) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"capacity": dict(alloc), "allocatable": alloc},
    }


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict[str, str]:
    out = {"key": key, "effect": effect}
    if value:
        out["value"] = value
    return out


def pod(name: str, cpu: str | None = "100m", memory: str | None = None, *,
        namespace: str = "default", node_name: str | None = None, priority: int | None = None,
        labels: dict[str, str] | None = None, tolerations: list[dict[str, Any]] | None = None,
        node_selector: dict[str, str] | None = None, affinity: dict[str, Any] | None = None,
        extra: dict[str, str] | None = None, phase: str | None = None,
        priority_class: str | None = None) -> dict[str, Any]:
    requests = {k: v for k, v in {"cpu": cpu, "memory": memory, **(extra or {})}.items()
                if v is not None}
    spec: dict[str, Any] = {"containers": [{"name": "agent", "image": "agent:1",
                                            "resources": {"requests": requests}}]}
    for key, value in (("nodeName", node_name), ("priority", priority),
                       ("tolerations", tolerations), ("nodeSelector", node_selector),
                       ("affinity", affinity), ("priorityClassName", priority_class)):
        if value is not None:
            spec[key] = value
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
        "status": {"phase": phase or ("Running" if node_name else "Pending")},
    }


def required_node_affinity(*terms: list[dict[str, Any]],
                           fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Each positional arg is one term's matchExpressions; terms are ORed."""
    node_terms: list[dict[str, Any]] = [{"matchExpressions": t} for t in terms]
    if fields is not None:
        node_terms.append({"matchFields": fields})
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": node_terms}}}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        out["values"] = list(values)
    return out


def inventory(*objects: dict[str, Any]) -> Inventory:
    return load_documents(list(objects))
