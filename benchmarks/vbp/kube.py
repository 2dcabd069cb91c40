"""A VBP instance as a Kubernetes window: identical Nodes (the bins) and one pending Pod per item.

Mapping (every size stays an exact integer in the models' base units):
  dimension 0   -> cpu, in millicores: size s is requested as "<s>m", capacity C as "<C>m"
  dimension 1   -> memory, in Mi:        "<s>Mi" (exactly s * 2^20 bytes)
  dimension k>=2 -> extended resource  vbp.agentplace.io/d<k>, plain integer "<s>"
  pods          -> "1000" on every node, so the pod count never binds
A zero size is left out of the requests (kube treats a missing request as 0). Every pod has
priority 0, no selectors, no tolerations; nodes have no taints. Bins are `bin-00000`, … (name
order = the order in which kube-like scorers break ties), items are `vbp/item-00000`, … in the
instance's (seeded, shuffled) item order, which is the queue order the greedy follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models import Inventory, load_documents
from optimizer.snapshot import Snapshot

NAMESPACE = "vbp"
EXTENDED_PREFIX = "vbp.agentplace.io/d"
POD_SLOTS = "1000"


def resource_names(d: int) -> list[str]:
    return ["cpu", "memory", *(f"{EXTENDED_PREFIX}{k}" for k in range(2, d))][:d]


def quantity(k: int, value: int) -> str:
    if k == 0:
        return f"{value}m"
    if k == 1:
        return f"{value}Mi"
    return str(value)


def units_per_size(d: int) -> np.ndarray:
    """int64[d]: base units (what models/ and the index store) per unit of VBP size."""
    out = np.ones(d, dtype=np.int64)
    if d > 1:
        out[1] = 2**20
    return out


def node_name(b: int) -> str:
    return f"bin-{b:05d}"


def pod_name(i: int) -> str:
    return f"item-{i:05d}"


def pod_ref(i: int) -> str:
    return f"{NAMESPACE}/{pod_name(i)}"


def documents(capacity: np.ndarray, sizes: np.ndarray, bins: int) -> list[dict[str, Any]]:
    """kubectl-shaped dicts: `bins` identical Nodes and one pending Pod per item row."""
    if (sizes < 0).any() or (capacity < 0).any():
        raise ValueError("negative sizes cannot be expressed as Kubernetes resources")
    names = resource_names(len(capacity))
    alloc = {r: quantity(k, int(c)) for k, (r, c) in enumerate(zip(names, capacity, strict=True))}
    alloc["pods"] = POD_SLOTS
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": node_name(b), "labels": {"kubernetes.io/hostname": node_name(b)}},
         "status": {"capacity": dict(alloc), "allocatable": dict(alloc)}}
        for b in range(bins)
    ]
    for i, row in enumerate(sizes.tolist()):
        requests = {r: quantity(k, s) for k, (r, s) in enumerate(zip(names, row, strict=True)) if s}
        docs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(i), "namespace": NAMESPACE},
            "spec": {"priority": 0,
                     "containers": [{"name": "item", "resources": {"requests": requests}}]},
            "status": {"phase": "Pending"},
        })
    return docs


def inventory(capacity: np.ndarray, sizes: np.ndarray, bins: int) -> Inventory:
    return load_documents(documents(capacity, sizes, bins), source="vbp")


def back_to_vbp(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """The round trip: (capacity[d], sizes[n, d]) read back from the loaded objects, in VBP units.
    Capacity is taken from the first node (all are identical)."""
    if not snap.nodes:
        raise ValueError("no nodes")
    alloc = snap.nodes[0].allocatable()
    d = sum(1 for r in alloc if r in ("cpu", "memory") or r.startswith(EXTENDED_PREFIX))
    names, scale = resource_names(d), units_per_size(d)
    capacity = np.array([alloc.get(r, 0) for r in names], dtype=np.int64) // scale
    by_ref = {p.ref: p.requests() for p in snap.pending}
    rows = [[by_ref[pod_ref(i)].get(r, 0) for r in names] for i in range(len(by_ref))]
    sizes = np.array(rows, dtype=np.int64).reshape(len(rows), d) // scale
    return capacity, sizes


def placements(bin_of: Sequence[int] | np.ndarray) -> list[tuple[str, str]]:
    """(agent ref, node name) pairs for an item -> bin array; -1 means unplaced."""
    return [(pod_ref(i), node_name(int(b))) for i, b in enumerate(bin_of) if b >= 0]


def bins_from_plan(assignment: dict[str, str], n: int) -> np.ndarray:
    """int64[item]: bin index per item from a Plan's assignment, -1 when unplaced."""
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        node = assignment.get(pod_ref(i))
        if node is not None:
            out[i] = int(node.rsplit("-", 1)[1])
    return out
