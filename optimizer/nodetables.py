"""The node side of an Index, kept across rolling windows and brought up to date per window.

At 20,000 nodes the node side (allocatable, usage by running pods, one label column per key,
taints, cordons) is most of an Index (~0.3 s of it per window), yet between two windows only
the nodes the previous window bound agents to (or evicted pods from) change, and only in usage.
`NodeTables.build(snap)` encodes a snapshot's nodes once; `update(snap)` brings the tables to a
later snapshot of the same cluster, re-encoding only what differs:

- a running pod that appeared (bound) or disappeared (evicted, finished) moves its node's
  usage row by its requests and one pod;
- a node that is not the same object as before (cordoned, relabelled, re-tainted, resized: a
  `model_copy`) has its allocatable, cordon and taint rows re-encoded, and every label column
  whose value on it changed is patched in that row when its codes keep the first-appearance
  order a fresh build gives (a value still used elsewhere, or a new value after every other
  one), else rebuilt whole;
- a different node set (a node added, removed or renamed) rebuilds everything: node positions
  are name-ordered, so every row would move anyway (so does a pod object listed twice).

Changes are found by object identity, not equality: inputs are immutable (every change is a
`model_copy`, as optimizer/windows.py does), so an object seen before is unchanged; an object
not seen before is re-encoded even when it is equal. The tables keep a reference to every pod
they counted, so an `id` they hold is never reused by a new object.

The tables belong to whoever carries them between windows (windows.Planner); Index reads them
and never writes: the arrays it shares are read-only, and `alloc`/`used` are handed out as
fresh copies over the Index's own resource columns. The result is exactly a fresh build's
(tests/optimizer/test_incremental_windows.py compares every table).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from models import Node, Pod
from models.selectors import parse_int64
from optimizer.index import BASE_RESOURCES, MISSING, LabelColumn, _label_column
from optimizer.snapshot import Snapshot

Taint = tuple[str, str, str]  # (key, value, effect)


def label_column(values: list[str | None]) -> LabelColumn:
    """Index's label column (codes in order of first appearance over the nodes), read-only."""
    col = _label_column(values)
    _frozen(col.codes, col.ints, col.is_int)
    return col


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays, made read-only: an Index shares them and must not write."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _taints(node: Node) -> list[Taint]:
    return [(t.key, t.value, t.effect) for t in node.spec.taints]


@dataclass
class UpdateStats:
    """What the last build or update did (benchmarks report it)."""

    rebuilt: bool = True
    nodes_changed: int = 0
    pods_added: int = 0
    pods_removed: int = 0
    columns_rebuilt: int = 0
    columns_patched: int = 0


@dataclass
class NodeTables:
    """Per-node arrays for one snapshot's nodes and running pods (see the module docstring).

    `alloc`/`used` run over the tables' own resource columns `res` (every name some node's
    allocatable or running pod's requests ever named; a name nobody names any more keeps an
    all-zero column and is left out by `resource_names`). The counters count names: a
    mapping's keys, never its values."""

    nodes: tuple[Node, ...]  # the snapshot's, by identity
    running: tuple[Pod, ...]
    node_names: list[str]
    res: list[str]
    alloc: np.ndarray  # int64[node, res]
    used: np.ndarray  # int64[node, res]; the "pods" column counts running pods
    res_count: Counter[str]  # how many allocatables and running pods name each resource
    labels: dict[str, LabelColumn]  # by key, sorted
    label_count: Counter[str]  # how many nodes carry each key
    names: LabelColumn  # node names, for matchFields metadata.name
    unschedulable: np.ndarray  # bool[node], read-only
    taints: list[Taint]  # sorted
    taint_count: Counter[Taint]
    node_taints: np.ndarray  # bool[node, taint], read-only
    pods: dict[int, tuple[Pod, int, dict[str, int]]] = field(repr=False)  # id -> pod, node, req
    stats: UpdateStats = field(default_factory=UpdateStats)
    repeated: bool = False  # some pod object is listed twice in snap.running

    @classmethod
    def build(cls, snap: Snapshot) -> NodeTables:
        """Encode every node and running pod of the snapshot."""
        nodes = snap.nodes
        allocs = [n.allocatable() for n in nodes]
        res_count: Counter[str] = Counter(r for a in allocs for r in a)
        pods: dict[int, tuple[Pod, int, dict[str, int]]] = {}
        for node_i, on in enumerate(snap.running_on):
            for p in on:
                pod = snap.running[p]
                req = pod.requests()
                res_count.update(list(req))
                pods[id(pod)] = (pod, node_i, req)
        res = [*BASE_RESOURCES, *sorted(set(res_count) - set(BASE_RESOURCES))]
        pos = {r: i for i, r in enumerate(res)}
        alloc = np.zeros((len(nodes), len(res)), dtype=np.int64)
        for i, a in enumerate(allocs):
            for r, v in a.items():
                alloc[i, pos[r]] = v
        used = np.zeros_like(alloc)
        for _, node_i, req in pods.values():
            for r, v in req.items():
                used[node_i, pos[r]] += v
        used[:, pos["pods"]] = [len(on) for on in snap.running_on]
        label_count: Counter[str] = Counter(k for n in nodes for k in n.labels)
        labels = {k: label_column([n.labels.get(k) for n in nodes]) for k in sorted(label_count)}
        names = [n.name for n in nodes]
        taint_count: Counter[Taint] = Counter(t for n in nodes if n.spec.taints
                                              for t in set(_taints(n)))
        taints = sorted(taint_count)
        return cls(
            nodes=nodes, running=snap.running, node_names=names, res=res, alloc=alloc, used=used,
            res_count=res_count, labels=labels, label_count=label_count,
            names=label_column(list(names)),
            unschedulable=_frozen(np.array([n.spec.unschedulable for n in nodes], dtype=bool))[0],
            taints=taints, taint_count=taint_count,
            node_taints=_frozen(_taint_table(nodes, range(len(nodes)), taints))[0],
            pods=pods, repeated=len(pods) != len(snap.running),
        )

    def update(self, snap: Snapshot) -> NodeTables:
        """Bring the tables to `snap` (a later snapshot of the same cluster), in place; a
        different node set rebuilds them (a new object)."""
        now = {id(p): p for p in snap.running}
        # a pod object listed twice is counted twice but tracked once: rebuild around it
        if len(snap.nodes) != len(self.nodes) or self.repeated or len(now) != len(snap.running):
            return NodeTables.build(snap)
        changed = [i for i, (new, old) in enumerate(zip(snap.nodes, self.nodes, strict=True))
                   if new is not old]
        if any(snap.nodes[i].name != self.node_names[i] for i in changed):
            return NodeTables.build(snap)
        stats = UpdateStats(rebuilt=False, nodes_changed=len(changed))
        old_nodes = self.nodes
        self.nodes = snap.nodes
        if changed:
            self._nodes_changed(old_nodes, changed, stats)
        self._pods_changed(snap, now, stats)
        self.running = snap.running
        self.stats = stats
        return self

    def _nodes_changed(self, old_nodes: tuple[Node, ...], changed: list[int],
                       stats: UpdateStats) -> None:
        nodes = self.nodes
        # allocatable rows (a resource named for the first time gets a column)
        for i in changed:
            before, after = old_nodes[i].allocatable(), nodes[i].allocatable()
            self.res_count.subtract(list(before))
            self.res_count.update(list(after))
            self._ensure_columns(after)
            self.alloc[i] = 0
            for r, v in after.items():
                self.alloc[i, self.res.index(r)] = v
        # label columns where some changed node's value differs: patched, else rebuilt whole
        keys: set[str] = set()
        for i in changed:
            before, after = old_nodes[i].labels, nodes[i].labels
            self.label_count.subtract(list(before))
            self.label_count.update(list(after))
            keys |= {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        for k in keys:
            if self.label_count[k] <= 0:
                self.labels.pop(k, None)
                del self.label_count[k]
                continue
            col = _patched(self.labels.get(k), len(nodes), changed,
                           [nodes[i].labels.get(k) for i in changed])
            if col is None:
                col = label_column([n.labels.get(k) for n in nodes])
                stats.columns_rebuilt += 1
            else:
                stats.columns_patched += 1
            self.labels[k] = col
        self.labels = {k: self.labels[k] for k in sorted(self.labels)}
        # cordons and taints: new read-only arrays (an earlier Index may still hold the old)
        unschedulable = self.unschedulable.copy()
        unschedulable[changed] = [nodes[i].spec.unschedulable for i in changed]
        self.unschedulable = _frozen(unschedulable)[0]
        for i in changed:
            self.taint_count.subtract(set(_taints(old_nodes[i])))
            self.taint_count.update(set(_taints(nodes[i])))
        taints = sorted(t for t, c in self.taint_count.items() if c > 0)
        if taints != self.taints:
            self.taints = taints
            self.taint_count = Counter({t: self.taint_count[t] for t in taints})
            table = _taint_table(nodes, range(len(nodes)), taints)
        else:
            table = self.node_taints.copy()
            table[changed] = _taint_table(nodes, changed, taints)
        self.node_taints = _frozen(table)[0]

    def _pods_changed(self, snap: Snapshot, now: dict[int, Pod], stats: UpdateStats) -> None:
        pods_col = self.res.index("pods")
        for key in [k for k in self.pods if k not in now]:
            _, node_i, req = self.pods.pop(key)
            self.res_count.subtract(list(req))
            for r, v in req.items():
                if r != "pods":  # the pods column counts pods (as Index did)
                    self.used[node_i, self.res.index(r)] -= v
            self.used[node_i, pods_col] -= 1
            stats.pods_removed += 1
        for key, pod in now.items():
            if key in self.pods:
                continue
            node_i = snap.node_pos[pod.spec.node_name or ""]
            req = pod.requests()
            self.res_count.update(list(req))
            self._ensure_columns(req)
            for r, v in req.items():
                if r != "pods":
                    self.used[node_i, self.res.index(r)] += v
            self.used[node_i, pods_col] += 1
            self.pods[key] = (pod, node_i, req)
            stats.pods_added += 1

    def _ensure_columns(self, names: Iterable[str]) -> None:
        new = [r for r in names if r not in self.res]
        if not new:
            return
        self.res = [*self.res, *new]
        pad = np.zeros((len(self.nodes), len(new)), dtype=np.int64)
        self.alloc = np.hstack([self.alloc, pad])
        self.used = np.hstack([self.used, pad])

    def check(self, snap: Snapshot) -> None:
        """Refuse tables built or updated for another snapshot (stale tables would place
        against the wrong usage)."""
        if self.nodes is not snap.nodes or self.running is not snap.running:
            raise ValueError("NodeTables were built for another snapshot: call update(snap) first")

    def resource_names(self) -> set[str]:
        """Every resource some node's allocatable or running pod's requests names now."""
        return {r for r, c in self.res_count.items() if c > 0} | set(BASE_RESOURCES)

    def columns(self, resources: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(alloc, used) over `resources`, fresh arrays (zero where the tables never saw it)."""
        pad = len(self.res)  # index of an all-zero column appended below
        take = [self.res.index(r) if r in self.res else pad for r in resources]
        zero = np.zeros((len(self.nodes), 1), dtype=np.int64)
        return (np.hstack([self.alloc, zero])[:, take], np.hstack([self.used, zero])[:, take])


def _patched(col: LabelColumn | None, size: int, rows: list[int],
             values: list[str | None]) -> LabelColumn | None:
    """The column with new values in `rows`, when its codes keep a fresh build's order (every
    code still present, first appearances in code order; a new value takes the next code);
    None when they would not, and the column must be rebuilt."""
    if col is None:  # a key no node carried: all MISSING so far
        col = LabelColumn(np.full(size, MISSING, dtype=np.int32), {},
                          np.zeros(size, dtype=np.int64), np.zeros(size, dtype=bool))
    vocab = dict(col.vocab)
    codes, ints, is_int = col.codes.copy(), col.ints.copy(), col.is_int.copy()
    for i, v in zip(rows, values, strict=True):
        parsed = parse_int64(v) if v is not None else None
        codes[i] = MISSING if v is None else vocab.setdefault(v, len(vocab))
        ints[i], is_int[i] = (parsed, True) if parsed is not None else (0, False)
    _, first = np.unique(codes[codes != MISSING], return_index=True)
    if len(first) != len(vocab) or (np.diff(first) <= 0).any():
        return None
    _frozen(codes, ints, is_int)
    return LabelColumn(codes, vocab, ints, is_int)


def _taint_table(nodes: tuple[Node, ...], rows: Iterable[int], taints: list[Taint]) -> np.ndarray:
    """bool[row, taint] for the given node rows."""
    rows = list(rows)
    pos = {t: i for i, t in enumerate(taints)}
    table = np.zeros((len(rows), len(taints)), dtype=bool)
    for r, i in enumerate(rows):
        for t in nodes[i].spec.taints:
            table[r, pos[(t.key, t.value, t.effect)]] = True
    return table
