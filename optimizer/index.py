"""numpy tables over a Snapshot, built once per window so rules pre-filter with array operations.

Axes are named in comments: `alloc[node, res]`, `req[cls, res]`. Agents with identical
scheduling-relevant content collapse into classes; the solver places counts of a class.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models import Pod
from models.selectors import parse_int64
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.nodetables import NodeTables
    from optimizer.preemption import Victims

BASE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")
MISSING = -1


@dataclass(frozen=True)
class AgentClass:
    """Pending agents that every rule treats the same; `members` index Snapshot.pending."""

    key: str
    members: tuple[int, ...]
    pod: Pod  # a representative
    priority: int

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class LabelColumn:
    """One label key over all nodes: integer codes (MISSING where absent) and parsed ints."""

    codes: np.ndarray  # int32[node]
    vocab: dict[str, int]
    ints: np.ndarray  # int64[node]; valid only where is_int
    is_int: np.ndarray  # bool[node]

    def values_mask(self, values: list[str]) -> np.ndarray:
        wanted = [self.vocab[v] for v in values if v in self.vocab]
        return np.isin(self.codes, np.asarray(wanted, dtype=np.int32))

    @property
    def present(self) -> np.ndarray:
        return self.codes != MISSING



def _label_column(values: list[str | None]) -> LabelColumn:
    vocab: dict[str, int] = {}
    codes = np.full(len(values), MISSING, dtype=np.int32)
    ints = np.zeros(len(values), dtype=np.int64)
    is_int = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            continue
        codes[i] = vocab.setdefault(v, len(vocab))
        parsed = parse_int64(v)
        if parsed is not None:
            ints[i], is_int[i] = parsed, True
    return LabelColumn(codes, vocab, ints, is_int)


def class_key(pod: Pod, priority: int) -> str:
    """Everything any rule may read from an agent, except its name."""
    spec = pod.spec.model_dump(
        mode="json", by_alias=True,
        include={"node_selector", "affinity", "tolerations", "topology_spread_constraints",
                 "preemption_policy", "scheduler_name"},
    )
    payload = {
        "ns": pod.namespace,
        "labels": pod.labels,
        "req": pod.requests(),
        "prio": priority,
        "tokens": pod.metadata.annotations.get("agentplace.io/tokens-per-hour"),
        "base_priority": pod.metadata.annotations.get("agentplace.io/base-priority"),
        # replan: a running agent's node (staying there is not a move)
        "current_node": pod.metadata.annotations.get("agentplace.io/current-node"),
        "spec": spec,
        # ResourceQuota: a pod that exists (has a uid) is already charged; new agents are
        # charged by limits too, by priorityClassName and deadline (scopes), and must name
        # their cpu/memory per container ("must specify ... for: <containers>")
        "admitted": bool(pod.metadata.uid),
        "quota": [pod.limits(), pod.spec.priority_class_name, pod.spec.active_deadline_seconds,
                  [[c.name, sorted(c.resources.requests), sorted(c.resources.limits)]
                   for c in (*pod.spec.containers, *pod.spec.init_containers)]],
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class Index:
    """Built once per window; read-only afterwards (but `victims`, which depends on the solve
    options: set once by optimize before any rule reads it)."""

    victims: Victims | None = None

    def __init__(self, snap: Snapshot, nodes: NodeTables | None = None) -> None:
        """`nodes`: the node side kept across windows (optimizer/nodetables.py), updated for
        this snapshot; None encodes the snapshot's nodes afresh. Either way the tables are the
        same; only the agent side (classes, requests) is always built here."""
        from optimizer.nodetables import NodeTables  # late: it imports this module

        tables = NodeTables.build(snap) if nodes is None else nodes
        tables.check(snap)
        self.snap = snap
        self.node_names = list(tables.node_names)
        pod_reqs = [p.requests() for p in snap.pending]
        named = tables.resource_names() | {r for q in pod_reqs for r in q}
        extended = sorted(named - set(BASE_RESOURCES))
        self.resources: list[str] = [*BASE_RESOURCES, *extended]
        self.res_pos = {r: i for i, r in enumerate(self.resources)}
        nr = len(self.resources)
        self.pods_res = self.res_pos["pods"]
        # [node, res], fresh copies: the tables are never written through an Index
        self.alloc, self.used = tables.columns(self.resources)

        groups: dict[str, list[int]] = {}
        for i, pod in enumerate(snap.pending):
            groups.setdefault(class_key(pod, snap.priority[i]), []).append(i)
        self.classes = [
            AgentClass(k, tuple(m), snap.pending[m[0]], snap.priority[m[0]])
            for k, m in groups.items()
        ]
        self.class_of = np.empty(len(snap.pending), dtype=np.int64)  # [agent] -> cls
        for c, cls in enumerate(self.classes):
            self.class_of[list(cls.members)] = c
        self.req = np.zeros((len(self.classes), nr), dtype=np.int64)  # [cls, res]
        for c, cls in enumerate(self.classes):
            for r, v in pod_reqs[cls.members[0]].items():
                self.req[c, self.res_pos[r]] = v
            self.req[c, self.pods_res] = 1
        self.class_size = np.array([c.size for c in self.classes], dtype=np.int64)
        self.class_priority = np.array([c.priority for c in self.classes], dtype=np.int64)

        # read-only arrays shared with the tables
        self.labels = dict(tables.labels)
        self.names = tables.names  # for matchFields metadata.name
        self.unschedulable = tables.unschedulable
        self.taints = list(tables.taints)
        self.taint_pos = {t: i for i, t in enumerate(self.taints)}
        self.node_taints = tables.node_taints  # [node, taint]

    @property
    def free(self) -> np.ndarray:
        """alloc - used, [node, res]; may be negative on an over-committed node."""
        return self.alloc - self.used

    def label(self, key: str) -> LabelColumn:
        col = self.labels.get(key)
        if col is None:
            col = _label_column([None] * len(self.node_names))
        return col

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_nodes(self) -> int:
        return len(self.node_names)
