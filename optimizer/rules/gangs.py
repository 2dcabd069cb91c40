"""GangScheduling: a gang (all-or-nothing group of agents) is placed whole or not at all.

After scheduler-plugins' Coscheduling plugin (kubernetes-sigs/scheduler-plugins,
pkg/coscheduling, KEP-42 "Coscheduling based on PodGroup CRD"): pods join a group with the
label `scheduling.x-k8s.io/pod-group: <name>` (older releases: `pod-group.scheduling.sigs.k8s.io`,
and the lightweight variant's `pod-group.scheduling.sigs.k8s.io/name` with a
`.../min-available` label). A `PodGroup` object (`scheduling.x-k8s.io/v1alpha1`) of that name in
the pod's namespace says how many must run together: `spec.minMember`. Coscheduling lets the
waiting pods bind once running + waiting >= minMember (Permit), else it rejects them all
(Unreserve), so no partial gang ever holds capacity.

Design decisions:
  - A gang is the pending agents of one namespace that share the group label's value. Its
    minMember is the PodGroup's `spec.minMember`; without a PodGroup, the lightweight label
    `.../min-available` if it is an integer; otherwise every member: the running ones plus
    every pending one of this window.
  - Running members (bound pods with the label, any node given) count toward minMember, as
    Coscheduling counts assigned pods: the window must place need = max(0, minMember -
    running) of the gang's pending agents, or none. need 0: the gang is already satisfied and
    its agents are placed one by one like any other.
  - A gang whose pods (running + pending) are fewer than minMember can never bind: PreFilter
    rejects each member ("pre-filter pod <name> cannot find enough sibling pods, current pods
    number: N, minMember of group: M"), so its classes get all-False prefilter rows.
  - `spec.minResources` is read but not enforced: Coscheduling only uses it as an early
    whole-cluster free-capacity check, which the all-or-nothing placement subsumes.
  - The decision is one window: a gang not placed now waits for a later window whole (as
    Coscheduling's scheduleTimeoutSeconds rejects the waiting members together).

Readings: `prefilter` rules out gangs that can never reach minMember; `encode` adds one Boolean
z per gang with sum placed[c] >= need * z and <= size * z over the gang's classes (the class
key includes labels and namespace, so a class never spans two gangs); `all_or_nothing` lets
the greedy place a gang's members consecutively and roll them all back when fewer than need
fit; `verify` re-reads the raw pods (0 < placed < need is a violation); `admission_reason`
tells an unplaced member why its gang was left out.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from models import Node, Pod
from optimizer.index import Index
from optimizer.rules.base import Assignment, NodeUsage, Reason, Violation
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.model import ModelBuilder

NAME = "GangScheduling"
# the group label, newest first: scheduler-plugins v1alpha1 (scheduling.x-k8s.io), the older
# sigs.k8s.io API group, and lightweight coscheduling (KEP-2)
GROUP_LABELS = ("scheduling.x-k8s.io/pod-group", "pod-group.scheduling.sigs.k8s.io",
                "pod-group.scheduling.sigs.k8s.io/name")
MIN_AVAILABLE_LABEL = "pod-group.scheduling.sigs.k8s.io/min-available"


def group_label(pod: Pod) -> str | None:
    """The pod's group name, or None when it belongs to no gang."""
    for key in GROUP_LABELS:
        value = pod.labels.get(key)
        if value:
            return value
    return None


# --- the raw reading (verify, admission_reason): plain Python over the snapshot's objects -------

@dataclass(frozen=True)
class Gang:
    namespace: str
    name: str
    min_member: int
    running: int
    pending: tuple[str, ...]  # agent refs, queue order

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def need(self) -> int:
        """Pending members the window must place for the gang to bind (0: none required)."""
        return max(0, self.min_member - self.running)


def gangs_of(snap: Snapshot) -> dict[tuple[str, str], Gang]:
    """Every gang with a pending member, keyed by (namespace, group name)."""
    pending: dict[tuple[str, str], list[Pod]] = {}
    for pod in snap.pending:
        name = group_label(pod)
        if name:
            pending.setdefault((pod.namespace, name), []).append(pod)
    running: dict[tuple[str, str], int] = {}
    for pod in snap.running:
        name = group_label(pod)
        if name and (pod.namespace, name) in pending:
            running[(pod.namespace, name)] = running.get((pod.namespace, name), 0) + 1
    groups = {(g.namespace, g.name): g for g in snap.pod_groups}
    out = {}
    for key, members in pending.items():
        ran = running.get(key, 0)
        group = groups.get(key)
        if group is not None:
            minimum = group.spec.min_member
        else:
            labelled = [m.labels.get(MIN_AVAILABLE_LABEL, "") for m in members]
            ints = [int(v) for v in labelled if v.isascii() and v.isdigit()]
            minimum = ints[0] if ints else ran + len(members)
        out[key] = Gang(key[0], key[1], minimum, ran, tuple(m.ref for m in members))
    return out


_GANGS: list[tuple[weakref.ref[Snapshot], dict[tuple[str, str], Gang]]] = []


def snapshot_gangs(snap: Snapshot) -> dict[tuple[str, str], Gang]:
    """gangs_of, memoised for the last snapshot (solve asks once per unplaced agent)."""
    if not (_GANGS and _GANGS[0][0]() is snap):
        _GANGS[:] = [(weakref.ref(snap), gangs_of(snap))]
    return _GANGS[0][1]


def not_enough_siblings(pod: Pod, gang: Gang) -> str:
    """Coscheduling PreFilter's error (pkg/coscheduling/core/core.go)."""
    return (f"pre-filter pod {pod.name} cannot find enough sibling pods, current pods number: "
            f"{gang.running + len(gang.pending)}, minMember of group: {gang.min_member}")


_PLACEABLE: list[tuple[weakref.ref[Snapshot], object, dict[tuple[str, str], int]]] = []


def placeable(gang: Gang, snap: Snapshot, placed: Mapping[str, str]) -> int:
    """Running members plus how many pending members fit together, first fit in queue order,
    each passing every Filter against the cluster after the plan's placements and the members
    counted before it (their resources and pod count; the cluster-wide view of topology and
    affinity rules sees the plan only). Memoised per (snap, placed) object pair."""
    from optimizer.explain import cluster_usage, node_reasons, run_pre_filters

    if not (_PLACEABLE and _PLACEABLE[0][0]() is snap and _PLACEABLE[0][1] is placed):
        _PLACEABLE[:] = [(weakref.ref(snap), placed, {})]
    memo = _PLACEABLE[0][2]
    key = (gang.namespace, gang.name)
    if key not in memo:
        usage = cluster_usage(snap, placed)
        pods = {p.ref: p for p in snap.pending}
        fits = 0
        for ref in gang.pending:
            pod = pods[ref]
            pre = run_pre_filters(pod)
            if pre.failure is not None:
                continue
            where = next((n for n in snap.nodes if not node_reasons(pod, n, usage[n.name], pre)),
                         None)
            if where is not None:
                usage[where.name].add(pod.requests())
                fits += 1
        memo[key] = gang.running + fits
    return memo[key]


# --- the vectorised reading: one table per Index ------------------------------------------------

@dataclass(frozen=True)
class GangTable:
    """Gangs with a pending member over the Index's classes."""

    gang_of_cls: np.ndarray  # int64[cls]: gang index, -1 for an agent in no gang
    need: np.ndarray  # int64[gang]: pending members to place, or none
    size: np.ndarray  # int64[gang]: pending members in the window

    @property
    def impossible(self) -> np.ndarray:
        """bool[gang]: fewer pods than minMember: never placeable."""
        return self.need > self.size


_TABLES: weakref.WeakKeyDictionary[Index, GangTable] = weakref.WeakKeyDictionary()


def gang_table(ix: Index) -> GangTable:
    """Built once per Index from the class representatives: a class shares its namespace and
    labels, hence its gang."""
    table = _TABLES.get(ix)
    if table is not None:
        return table
    snap = ix.snap
    keys: dict[tuple[str, str], int] = {}
    gang_of_cls = np.full(ix.num_classes, -1, dtype=np.int64)
    for c, cls in enumerate(ix.classes):
        name = group_label(cls.pod)
        if name:
            gang_of_cls[c] = keys.setdefault((cls.pod.namespace, name), len(keys))
    size = np.zeros(len(keys), dtype=np.int64)
    np.add.at(size, gang_of_cls[gang_of_cls >= 0], ix.class_size[gang_of_cls >= 0])
    running = np.zeros(len(keys), dtype=np.int64)
    for pod in snap.running:
        g = keys.get((pod.namespace, group_label(pod) or ""))
        if g is not None:
            running[g] += 1
    minimum = running + size  # no PodGroup, no min-available label: every member
    for g_obj in snap.pod_groups:
        g = keys.get((g_obj.namespace, g_obj.name))
        if g is not None:
            minimum[g] = g_obj.spec.min_member
    # the lightweight min-available label: the first member's in queue order that has an
    # integer one (classes are in order of their first member)
    by_object = {(p.namespace, p.name) for p in snap.pod_groups}
    labelled: set[int] = set()
    for c, cls in enumerate(ix.classes):
        g, value = int(gang_of_cls[c]), cls.pod.labels.get(MIN_AVAILABLE_LABEL, "")
        key = (cls.pod.namespace, group_label(cls.pod) or "")
        if (g >= 0 and g not in labelled and key not in by_object and value.isascii()
                and value.isdigit()):
            minimum[g] = int(value)
            labelled.add(g)
    table = GangTable(gang_of_cls, np.maximum(minimum - running, 0), size)
    _TABLES[ix] = table
    return table


class GangScheduling:
    name: ClassVar[str] = NAME

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """All-False rows for the classes of a gang with fewer pods than minMember."""
        t = gang_table(ix)
        if not t.impossible.any():
            return None
        in_gang = t.gang_of_cls >= 0
        bad = np.zeros(ix.num_classes, dtype=bool)
        bad[in_gang] = t.impossible[t.gang_of_cls[in_gang]]
        if not bad.any():
            return None
        return np.broadcast_to(~bad[:, None], (ix.num_classes, ix.num_nodes)).copy()

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        """Per gang that needs placements: z = placed or not; need * z <= sum <= size * z."""
        t = gang_table(ix)
        has_pairs = np.zeros(ix.num_classes, dtype=bool)
        has_pairs[np.unique(mb.pair_cls)] = True
        for g in np.nonzero((t.need > 0) & ~t.impossible)[0].tolist():
            classes = np.nonzero((t.gang_of_cls == g) & has_pairs)[0].tolist()
            if not classes:
                continue
            z = mb.model.new_bool_var(f"gang_{g}")
            placed = sum(mb.placed[c] for c in classes)
            mb.model.add(placed >= int(t.need[g]) * z)
            mb.model.add(placed <= int(t.size[g]) * z)
            mb.count_constraint(self.name, 2)
            # a plan's z: whether it places the gang (so a greedy hint is complete)
            mb.aux_hints.append((z, lambda counts, cs=classes: int(counts[cs].sum() > 0)))

    def all_or_nothing(self, ix: Index) -> tuple[np.ndarray, np.ndarray]:
        """Greedy hook: (int64[agent] group, -1 for none; int64[group] members needed). The
        greedy places a group's members consecutively and undoes them all when fewer than
        needed fit."""
        t = gang_table(ix)
        return t.gang_of_cls[ix.class_of], t.need

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        """A gang is decided as a whole, not per node: no node reports it (see
        admission_reason)."""
        return []

    def admission_reason(self, pod: Pod, snap: Snapshot,
                         placed: Collection[str] = ()) -> str | None:
        """Why an unplaced member's gang was left out, or None when its gang does not hold it
        back (no gang, minMember already reached by running pods, the plan placed enough of it,
        or enough members would fit together: then the node reasons tell the rest).
        `placed`: the plan's placements (agent -> node when a mapping)."""
        from optimizer.explain import fit_message

        name = group_label(pod)
        gang = snapshot_gangs(snap).get((pod.namespace, name)) if name else None
        if gang is None or gang.need == 0:
            return None
        if sum(1 for ref in gang.pending if ref in placed) >= gang.need:
            return None
        if gang.running + len(gang.pending) < gang.min_member:
            return fit_message(len(snap.nodes), {}, not_enough_siblings(pod, gang))
        mapping = placed if isinstance(placed, Mapping) else {}
        n = placeable(gang, snap, mapping)
        if n >= gang.min_member:
            return None  # the gang fits: the objective or the time limit left it out
        return f"pod group {gang.ref} has {n} members placeable, needs {gang.min_member} (minMember)"

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        """From the raw pods: each gang's placed members are 0 or at least minMember - running."""
        out = []
        for gang in gangs_of(snap).values():
            placed = sorted(ref for ref in gang.pending if ref in assignment)
            if 0 < len(placed) < gang.need:
                out.append(Violation(
                    self.name, ",".join(placed), None,
                    f"pod group {gang.ref}: {len(placed)} of its members placed, needs "
                    f"{gang.need} (minMember {gang.min_member}, {gang.running} running): "
                    "all or none"))
        return out
