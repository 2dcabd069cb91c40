"""ColocationLimit: agentplace's extension rule "at most k pods of group B next to group A".

Kubernetes has required pod anti-affinity for k = 0 (no B where any A runs) but nothing for
k >= 1 (the Alibaba 2018 scheduling competition's interference rules, and per-node density caps
such as "at most 3 replicas of an app per host"). The rule is carried by a pod annotation:

    metadata:
      annotations:
        agentplace.io/colocation-limits: '[{"ifPresent": {"app": "a"}, "selector": {"app": "b"}, "max": 2}]'

Each entry reads: on a node (kubernetes.io/hostname domain) that hosts any pod whose labels match
`ifPresent`, at most `max` pods whose labels match `selector` may run. Both are matchLabels maps
(every key=value must hold); only pods in the declaring pod's namespace count. When `ifPresent`
and `selector` match the same pods (a self-limit), it caps that group at `max` per node. The
annotation is the transport of a cluster-wide policy: the limits in force are the union of the
entries of every pod in the snapshot (running and pending), deduplicated; a CRD would be its
proper home. Convention: put an entry on the pods its `selector` matches (the limited pods), so
that `explain`, which only sees the agent and the bound pods, sees every limit that can bind.

The verdict depends only on the final content of a node and only tightens as pods are added, so
a plan satisfying it at the end satisfies it at every step of any binding order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from ortools.sat.python import cp_model

from models import Node, Pod
from models.errors import InputError
from optimizer.index import Index
from optimizer.rules.base import Assignment, ClusterView, NodeUsage, Reason, Violation
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.model import ModelBuilder

ANNOTATION = "agentplace.io/colocation-limits"
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Limit:
    """One entry: in `namespace`, next to any pod matching `if_present`, at most `max` pods
    matching `selector`."""

    namespace: str
    if_present: Labels
    selector: Labels
    max: int

    def is_a(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and _holds(self.if_present, pod.labels)

    def is_b(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and _holds(self.selector, pod.labels)

    def message(self) -> str:
        return (f"node(s) would exceed a co-location limit: at most {self.max} pod(s) "
                f"{_fmt(self.selector)} next to {_fmt(self.if_present)}")


def _holds(sel: Labels, labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in sel)


def _fmt(sel: Labels) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in sel) + "}"


def _labels(raw: Any, where: str, obj: str) -> Labels:
    if not isinstance(raw, dict) or not raw or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise InputError(obj, f"metadata.annotations[{ANNOTATION}]{where}",
                         "must be a non-empty map of label key -> string value (matchLabels)")
    return tuple(sorted(raw.items()))


@lru_cache(maxsize=4096)
def _parse(text: str, namespace: str, obj: str) -> tuple[Limit, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(obj, f"metadata.annotations[{ANNOTATION}]", f"not JSON: {e}") from None
    if not isinstance(data, list):
        raise InputError(obj, f"metadata.annotations[{ANNOTATION}]", "must be a JSON list")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise InputError(obj, f"metadata.annotations[{ANNOTATION}][{i}]", "must be an object")
        k = entry.get("max")
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(obj, f"metadata.annotations[{ANNOTATION}][{i}].max",
                             f"{k!r}: must be an integer >= 0")
        out.append(Limit(namespace, _labels(entry.get("ifPresent"), f"[{i}].ifPresent", obj),
                         _labels(entry.get("selector"), f"[{i}].selector", obj), k))
    return tuple(out)


def limits_of(pod: Pod) -> tuple[Limit, ...]:
    text = pod.metadata.annotations.get(ANNOTATION)
    if not text:
        return ()
    return _parse(text, pod.namespace, f"Pod {pod.ref}")


def limits_in_force(pods: Iterable[Pod]) -> list[Limit]:
    """The union of every pod's entries, in first-seen order."""
    seen: dict[Limit, None] = {}
    for p in pods:
        for lim in limits_of(p):
            seen.setdefault(lim)
    return list(seen)


@dataclass
class _Tables:
    limits: list[Limit]
    a_cls: np.ndarray  # bool[limit, cls]
    b_cls: np.ndarray  # bool[limit, cls]
    run_a: np.ndarray  # int64[limit, node]: running pods matching ifPresent
    run_b: np.ndarray  # int64[limit, node]: running pods matching selector


def _matcher(limits: list[Limit]) -> Any:
    """pod -> (bool[limit] matches ifPresent, bool[limit] matches selector), testing only the
    limits that name one of the pod's own labels (thousands of limits, a few labels per pod)."""
    by_a: dict[tuple[str, str, str], list[int]] = {}
    by_b: dict[tuple[str, str, str], list[int]] = {}
    for i, lim in enumerate(limits):
        by_a.setdefault((lim.namespace, *lim.if_present[0]), []).append(i)
        by_b.setdefault((lim.namespace, *lim.selector[0]), []).append(i)

    def match(pod: Pod) -> tuple[np.ndarray, np.ndarray]:
        a = np.zeros(len(limits), dtype=bool)
        b = np.zeros(len(limits), dtype=bool)
        for k, v in pod.labels.items():
            key = (pod.namespace, k, v)
            for i in by_a.get(key, ()):
                a[i] = limits[i].is_a(pod)
            for i in by_b.get(key, ()):
                b[i] = limits[i].is_b(pod)
        return a, b

    return match


def _tables(ix: Index) -> _Tables | None:
    snap = ix.snap
    limits = limits_in_force((*snap.running, *snap.pending))
    if not limits:
        return None
    nl, nc, nn = len(limits), ix.num_classes, ix.num_nodes
    match = _matcher(limits)
    a_cls = np.zeros((nl, nc), dtype=bool)
    b_cls = np.zeros((nl, nc), dtype=bool)
    for c, cls in enumerate(ix.classes):
        a_cls[:, c], b_cls[:, c] = match(cls.pod)
    run_a = np.zeros((nl, nn), dtype=np.int64)
    run_b = np.zeros((nl, nn), dtype=np.int64)
    for n, pods in enumerate(snap.running_on):
        for p in pods:
            a, b = match(snap.running[p])
            run_a[:, n] += a
            run_b[:, n] += b
    return _Tables(limits, a_cls, b_cls, run_a, run_b)


def _blocked(a_here: np.ndarray, b_count: np.ndarray, is_a: bool, is_b: bool, k: int) -> np.ndarray:
    """bool[node]: one more agent (is_a / is_b) breaks the limit, given A presence and B count."""
    if is_b:
        active = np.ones_like(a_here) if is_a else a_here
        return active & (b_count + 1 > k)
    if is_a:
        return b_count > k
    return np.zeros_like(a_here)


class ColocationLimit:
    name: ClassVar[str] = "ColocationLimit"

    def __init__(self) -> None:
        self._cache: tuple[Index, _Tables | None] | None = None
        self._track: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._view: tuple[ClusterView, list[Limit]] | None = None

    def tables(self, ix: Index) -> _Tables | None:
        if self._cache is None or self._cache[0] is not ix:
            self._cache = (ix, _tables(ix))
            self._track = None
        return self._cache[1]

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """A single agent must not break a limit against the running pods alone."""
        tb = self.tables(ix)
        if tb is None:
            return None
        out = np.ones((ix.num_classes, ix.num_nodes), dtype=bool)
        for i, lim in enumerate(tb.limits):
            for c in np.nonzero(tb.a_cls[i] | tb.b_cls[i])[0].tolist():
                out[c] &= ~_blocked(tb.run_a[i] > 0, tb.run_b[i], bool(tb.a_cls[i, c]),
                                    bool(tb.b_cls[i, c]), lim.max)
        return out

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        """Per limit and node with candidates: sum of B counts <= max - running B, enforced
        always where an A runs, else only if a present-flag (forced on by any placed A) is set."""
        tb = self.tables(ix)
        if tb is None:
            return
        flags: dict[tuple[int, int], cp_model.IntVar] = {}  # (limit, node) -> any A there
        of_cls: dict[int, list[int]] = {}
        for p, c in enumerate(mb.pair_cls.tolist()):
            of_cls.setdefault(c, []).append(p)
        nodes = mb.pair_node.tolist()

        def on(classes: np.ndarray) -> dict[int, list[int]]:
            out: dict[int, list[int]] = {}
            for c in classes.tolist():
                for p in of_cls.get(c, ()):
                    out.setdefault(nodes[p], []).append(p)
            return out

        for i, lim in enumerate(tb.limits):
            b_on = on(np.nonzero(tb.b_cls[i])[0])
            if not b_on:
                continue  # only agents of group A: the prefilter kept them off over-full nodes
            a_on = on(np.nonzero(tb.a_cls[i])[0])
            for n, ps in b_on.items():
                room = lim.max - int(tb.run_b[i, n])
                if int(mb.upper[ps].sum()) <= room:
                    continue
                total = cp_model.LinearExpr.sum([mb.x[p] for p in ps])
                if tb.run_a[i, n] > 0:
                    mb.model.add(total <= room)
                elif n in a_on:
                    flag = flags.get((i, n))
                    if flag is None:
                        flag = mb.model.new_bool_var(f"coloc_{i}_{n}")
                        flags[(i, n)] = flag
                        for p in a_on[n]:
                            mb.model.add(mb.x[p] <= int(mb.upper[p]) * flag)
                        a_cls = mb.pair_cls[a_on[n]]
                        mb.aux_hints.append(
                            (flag, lambda counts, a_cls=a_cls, n=n: int(counts[a_cls, n].sum() > 0)))
                    mb.model.add(total <= room).only_enforce_if(flag)
                else:
                    continue
                mb.count_constraint(self.name)

    def admits(self, ix: Index, state: Any, agent: int, nodes: np.ndarray) -> np.ndarray:
        """The greedy's check against the running pods plus the agents it bound so far."""
        tb = self.tables(ix)
        if tb is None:
            return nodes
        c = int(ix.class_of[agent])
        rel = np.nonzero(tb.a_cls[:, c] | tb.b_cls[:, c])[0]
        if rel.size == 0:
            return nodes
        counts = self._counts(ix, state)
        out = nodes.copy()
        for i in rel.tolist():
            a_cnt = tb.run_a[i] + counts[tb.a_cls[i]].sum(axis=0)
            b_cnt = tb.run_b[i] + counts[tb.b_cls[i]].sum(axis=0)
            out &= ~_blocked(a_cnt > 0, b_cnt, bool(tb.a_cls[i, c]), bool(tb.b_cls[i, c]),
                             tb.limits[i].max)
        return out

    def _counts(self, ix: Index, state: Any) -> np.ndarray:
        """int64[cls, node] of the agents the greedy has bound, updated from what changed since
        the last call of the same run (bindings and gang roll-backs alike)."""
        node_of = state.node_of
        if self._track is None or self._track[0] is not node_of:
            last = np.full_like(node_of, -1)
            self._track = (node_of, last, np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64))
        _, last, counts = self._track
        changed = np.nonzero(node_of != last)[0]
        for a in changed.tolist():
            c = int(ix.class_of[a])
            if last[a] >= 0:
                counts[c, last[a]] -= 1
            if node_of[a] >= 0:
                counts[c, node_of[a]] += 1
            last[a] = node_of[a]
        return counts

    def _view_limits(self, view: ClusterView | None) -> list[Limit]:
        """The limits the bound pods declare; one ClusterView is shared by every node's usage of
        a filtering pass, so it is computed once per view (explain runs per pod and node)."""
        if view is None:
            return []
        if self._view is None or self._view[0] is not view:
            self._view = (view, limits_in_force(p for p, _ in view.pods))
        return self._view[1]

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        view = usage.cluster
        limits = self._view_limits(view)
        own = limits_of(pod)
        if own:
            limits = list(dict.fromkeys([*limits, *own]))
        mine = [lim for lim in limits if lim.is_a(pod) or lim.is_b(pod)]
        if not mine:
            return []
        here = [p for p, n in view.pods if n == node.name] if view is not None else []
        out = []
        for lim in mine:
            is_a, is_b = lim.is_a(pod), lim.is_b(pod)
            a_here = any(lim.is_a(p) for p in here)
            b_count = sum(lim.is_b(p) for p in here)
            blocked = _blocked(np.array([a_here]), np.array([b_count]), is_a, is_b, lim.max)
            if bool(blocked[0]):
                out.append(Reason(self.name, lim.message()))
        return out

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        limits = limits_in_force((*snap.running, *snap.pending))
        if not limits:
            return []
        pending = {p.ref: p for p in snap.pending}
        placed_on: dict[str, list[Pod]] = {}
        for agent, node in assignment.items():
            if agent in pending:
                placed_on.setdefault(node, []).append(pending[agent])
        running_on: dict[str, list[Pod]] = {}
        for p in snap.running:
            running_on.setdefault(p.spec.node_name or "", []).append(p)
        # limits by one of their label pairs, to test only those a pod on the node can touch
        by_pair: dict[tuple[str, str, str], list[Limit]] = {}
        for lim in limits:
            for sel in (lim.if_present, lim.selector):
                by_pair.setdefault((lim.namespace, *sel[0]), []).append(lim)
        out = []
        for node, agents in placed_on.items():
            pods = [*running_on.get(node, []), *agents]
            touched = {lim: None for p in agents for k, v in p.labels.items()
                       for lim in by_pair.get((p.namespace, k, v), ())}
            for lim in touched:
                if not any(lim.is_a(p) for p in pods):
                    continue
                b = [p for p in pods if lim.is_b(p)]
                if len(b) > lim.max:
                    mine = [p.ref for p in agents if lim.is_a(p) or lim.is_b(p)]
                    out.append(Violation(self.name, ",".join(mine), node,
                                         f"{lim.message()}: {len(b)} there"))
        return out
