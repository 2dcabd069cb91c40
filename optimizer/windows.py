"""Rolling windows: cut a stream of arriving agents into windows, solve each, carry the rest.

Agents arrive in creationTimestamp order. A window closes when it holds `max_agents` agents or
when the next arrival is more than `max_age` seconds after the window's first one (replayed
on the stream's own clock). Each window is solved against the cluster as the previous windows
left it: their placements are bound (running pods on their nodes), their quota charges are in
the quotas' status.used and their token spend in the budgets' status, so every hard cap holds
across windows. Unplaced agents join the next window with their age.

With a binder, each window's verified plan is submitted to the outbox (plan id = run id +
window index, so a re-run resumes) and bound before the next window is cut; an agent the
binder sends back (the node no longer fits) waits for the next window like an unplaced one.
The plan's evictions go through the binder too, before the bindings they make room for: only a
pod whose eviction the binder reports done leaves its node and queues again; an eviction that
fails (a PodDisruptionBudget refused it) leaves the pod running and sends its agent back.

Ageing (so a waiting agent is not starved): each window an agent waits raises its effective
priority by one, capped below the next distinct priority level of the window's agents and at
`max_age_boost`; it reorders agents *inside* their priority level and never lifts one above a
higher level. It affects agentplace's own weighting only (no kube object is changed).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from models import Inventory, Pod
from models.quantity import Quantity
from optimizer.binder import EVICTED, FAILED, Binder, SnapshotFit
from optimizer.config import SolveConfig
from optimizer.index import class_key
from optimizer.nodetables import NodeTables
from optimizer.plan import Plan
from optimizer.preemption import BASE_PRIORITY_ANNOTATION, pdb_matches
from optimizer.rules.quotas import charges, quota_matches
from optimizer.snapshot import Snapshot, build_snapshot, resolve_priorities
from optimizer.solve import optimize


@dataclass(frozen=True)
class WindowConfig:
    max_agents: int = 200
    max_age: float = 2.0  # seconds of arrivals per window
    max_age_boost: int = 10
    solve: SolveConfig = field(default_factory=SolveConfig)
    # keep the node side of the Index across windows, re-encoding only what changed
    # (optimizer/nodetables.py); the same tables, so the same plans, as a fresh build
    incremental: bool = True


@dataclass
class WindowResult:
    index: int
    start: datetime | None
    new_agents: int
    carried: int
    plan: Plan
    boosted: int
    binding: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        p = self.plan
        return {
            "window": self.index, "start": self.start.isoformat() if self.start else None,
            "agents": self.new_agents + self.carried, "new": self.new_agents,
            "carried": self.carried, "aged": self.boosted, "placed": len(p.placements),
            "unplaced": len(p.unplaced), "greedy_placed": p.baseline.get("placed_agents"),
            "status": p.status, "gap": p.gap, "verified": p.verified,
            "solve_seconds": p.timings.get("solve"),
            "hint": (p.model.get("hint") or {}).get("source"),
            "total_seconds": round(sum(p.timings.values()), 6),
            "budgets": p.budgets,
            "binding": self.binding,
        }


def _arrival(pod: Pod) -> float:
    ts = pod.metadata.creation_timestamp
    return ts.timestamp() if ts else 0.0


def cut_windows(pending: list[Pod], max_agents: int, max_age: float) -> list[list[Pod]]:
    """Arrival-ordered windows of at most max_agents, spanning at most max_age seconds."""
    ordered = sorted(pending, key=lambda p: (_arrival(p), p.ref))
    windows: list[list[Pod]] = []
    for pod in ordered:
        if windows and len(windows[-1]) < max_agents and \
                _arrival(pod) - _arrival(windows[-1][0]) <= max_age:
            windows[-1].append(pod)
        else:
            windows.append([pod])
    return windows


def _bind(pod: Pod, node: str) -> Pod:
    """The agent as a running pod on its node, with a uid: it now exists in the cluster."""
    meta = pod.metadata.model_copy(update={"uid": pod.metadata.uid or str(uuid.uuid4())})
    return pod.model_copy(update={
        "metadata": meta,
        "spec": pod.spec.model_copy(update={"node_name": node}),
        "status": pod.status.model_copy(update={"phase": "Running"}),
    })


def _disrupted(pdb: Any, evicted: list[Pod]) -> Any:
    """The budget left after this window's evictions (the disruption controller's reading)."""
    hit = sum(pdb_matches(pdb, p) for p in evicted)
    if not hit:
        return pdb
    left = max(0, pdb.status.disruptions_allowed - hit)
    return pdb.model_copy(update={"status": pdb.status.model_copy(
        update={"disruptions_allowed": left})})


def _unbind(pod: Pod) -> Pod:
    """A preempted pod as a pending agent again."""
    return pod.model_copy(update={
        "spec": pod.spec.model_copy(update={"node_name": None}),
        "status": pod.status.model_copy(update={"phase": "Pending", "start_time": None}),
    })


def _boosted(pod: Pod, waited: int, base: int, ceiling: int, cap: int) -> Pod:
    boost = min(waited, cap, max(0, ceiling - base - 1))
    if boost <= 0:
        return pod
    # preemption still compares the kube priority (optimizer/preemption.py kube_priority)
    meta = pod.metadata.model_copy(update={"annotations": {
        **pod.metadata.annotations, BASE_PRIORITY_ANNOTATION: str(base)}})
    return pod.model_copy(update={"metadata": meta,
                                  "spec": pod.spec.model_copy(update={"priority": base + boost})})


class Planner:
    """Holds the cluster state between windows; one `step` per window."""

    def __init__(self, inv: Inventory, cfg: WindowConfig, binder: Binder | None = None,
                 run_id: str | None = None) -> None:
        self.cfg = cfg
        self.binder = binder
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.inv = Inventory(nodes=list(inv.nodes), pods=list(inv.running),
                             quotas=list(inv.quotas), priority_classes=list(inv.priority_classes),
                             pdbs=list(inv.pdbs), namespaces=list(inv.namespaces),
                             pricing=list(inv.pricing), token_budgets=list(inv.token_budgets),
                             pod_groups=list(inv.pod_groups), warnings=list(inv.warnings))
        self.waiting: dict[str, tuple[Pod, int]] = {}  # carried agents and windows waited
        self.previous: dict[str, str] = {}  # the previous window's plan: agent -> node
        self.previous_pods: dict[str, Pod] = {}
        self.index = 0
        self.tables: NodeTables | None = None  # the node side, kept across windows

    def _tables(self, snap: Snapshot) -> NodeTables | None:
        """The node tables brought up to this window's snapshot (None: not kept)."""
        if not self.cfg.incremental or self.cfg.solve.partitions > 1:
            return None
        self.tables = NodeTables.build(snap) if self.tables is None else self.tables.update(snap)
        return self.tables

    def step(self, arrivals: list[Pod]) -> WindowResult:
        carried = [p for p, _ in self.waiting.values()]
        agents = carried + [p for p in arrivals if p.ref not in self.waiting]
        base = resolve_priorities(agents, self.inv.priority_classes)
        levels = sorted(set(base.values()))
        boosted = 0
        window: list[Pod] = []
        for pod in agents:
            waited = self.waiting.get(pod.ref, (pod, 0))[1]
            higher = [lv for lv in levels if lv > base[pod.ref]]
            aged = _boosted(pod, waited, base[pod.ref], higher[0] if higher else 2**31 - 1,
                            self.cfg.max_age_boost)
            boosted += aged is not pod
            window.append(aged)
        inv = Inventory(nodes=self.inv.nodes, pods=self.inv.pods + window, quotas=self.inv.quotas,
                        priority_classes=self.inv.priority_classes, pdbs=self.inv.pdbs,
                        namespaces=self.inv.namespaces, pricing=self.inv.pricing,
                        token_budgets=self.inv.token_budgets, pod_groups=self.inv.pod_groups,
                        warnings=list(self.inv.warnings))
        t = time.perf_counter()
        snap = build_snapshot(inv)
        built = time.perf_counter()
        tables = self._tables(snap)
        prepared = {"snapshot": round(built - t, 6),
                    **({"node_tables": round(time.perf_counter() - built, 6)} if tables else {})}
        plan = optimize(snap, self.cfg.solve, warm=self._warm(agents), nodes=tables)
        plan.timings = {**prepared, **plan.timings}
        binding, sent_back, evicted = self._bind(snap, plan)
        self._commit(snap, plan, {p.ref: p for p in agents}, sent_back, evicted)
        start = min((p.metadata.creation_timestamp for p in arrivals
                     if p.metadata.creation_timestamp), default=None)
        result = WindowResult(self.index, start, len(agents) - len(carried), len(carried), plan,
                              boosted, binding)
        self.index += 1
        return result

    def _warm(self, agents: list[Pod]) -> dict[str, str]:
        """The previous window's plan as a warm start: an agent it placed (and the binder sent
        back) is hinted to its node again, and each other agent to a node the previous plan gave
        an agent of its kind (same spec but the name), one agent per previous placement, so a
        workload scaling out over windows starts where the solver put its last replicas. The
        greedy completes the rest (and anything no longer admitted), so the hint stays complete
        and feasible; optimize keeps it only when it scores better than the plain greedy."""
        out = {a.ref: self.previous[a.ref] for a in agents if a.ref in self.previous}
        pattern: dict[str, list[str]] = {}
        for ref, node in sorted(self.previous.items()):
            pattern.setdefault(class_key(self.previous_pods[ref], 0), []).append(node)
        for a in agents:
            if a.ref not in out and (nodes := pattern.get(class_key(a, 0))):
                out[a.ref] = nodes.pop(0)
        return out

    def _bind(self, snap: Snapshot, plan: Plan) -> tuple[dict[str, Any], set[str], set[str] | None]:
        """Submit and bind the window's plan: the agents the binder sent back, and the pods it
        evicted (None without a binder: the plan's evictions are taken as done)."""
        if self.binder is None or not (plan.placements or plan.evictions):
            return {}, set(), None
        outbox = self.binder.outbox
        plan_id = outbox.submit(plan, f"{self.run_id}-w{self.index}")
        self.binder.fits = SnapshotFit(snap, outbox)
        done = self.binder.run(interval=0.05)
        back = {r.agent for r in self.binder.requeued(drain=True)}
        # read from the outbox, not from this pass: a resumed run finds them done already
        evicted = {e.pod for e in outbox.evictions(plan_id, state=EVICTED)}
        return ({"plan_id": plan_id, "bound": done.bound, "conflict": done.conflict,
                 "failed": done.failed, "sent_back": len(back), "evicted": len(evicted),
                 "eviction_failed": len(outbox.evictions(plan_id, state=FAILED))}, back, evicted)

    def _commit(self, snap: Snapshot, plan: Plan, originals: dict[str, Pod],
                sent_back: Collection[str] = (), evicted_pods: Collection[str] | None = None) -> None:
        placed = {a: n for a, n in plan.assignment().items() if a not in sent_back}
        bound = [_bind(originals[a], n) for a, n in placed.items()]
        new = [p for p in bound if not originals[p.ref].metadata.uid]
        # preempted pods leave their nodes and queue again as agents (their controller would
        # recreate them); they keep their uid, so quota does not charge them a second time
        # (with a binder, only those whose eviction it reports done)
        gone = {e.pod for e in plan.evictions} if evicted_pods is None else set(evicted_pods)
        evicted = [_unbind(p) for p in self.inv.pods if p.ref in gone]
        self.inv.pods = [p for p in self.inv.pods if p.ref not in gone] + bound
        self.inv.pdbs = [_disrupted(d, evicted) for d in self.inv.pdbs]
        self.inv.quotas = [self._charge(q, new, snap) for q in self.inv.quotas]
        spent = {row["budget"]: row for row in plan.budgets}
        self.inv.token_budgets = [
            b.model_copy(update={"status": b.status.model_copy(update={
                "spent_tokens": int(spent[b.ref]["spent_tokens"]),  # type: ignore[call-overload]
                **({"spent_dollars": Decimal(str(spent[b.ref]["spent_dollars"]))}
                   if "spent_dollars" in spent[b.ref] else {})})})
            if b.ref in spent else b for b in self.inv.token_budgets]
        self.previous = plan.assignment()
        self.previous_pods = {a: originals[a] for a in self.previous}
        left = [u.agent for u in plan.unplaced] + sorted(sent_back)
        self.waiting = {a: (originals[a], self.waiting.get(a, (None, 0))[1] + 1) for a in left}
        self.waiting |= {p.ref: (p, 0) for p in evicted}

    @staticmethod
    def _charge(quota: Any, new: list[Pod], snap: Snapshot) -> Any:
        """Newly created agents now count in status.used, as the quota controller would."""
        mine = [p for p in new if quota_matches(quota, p, snap)]
        if not mine or not quota.status.used:
            return quota
        used = dict(quota.status.used)
        for r, q in quota.status.used.items():
            extra = sum((charges(p).get(r, Fraction(0)) for p in mine), Fraction(0))
            if extra:
                total = q.value + extra
                used[r] = Quantity(total, str(float(total)) if total.denominator != 1 else str(total))
        return quota.model_copy(update={"status": quota.status.model_copy(update={"used": used})})


def replay(inv: Inventory, cfg: WindowConfig, binder: Binder | None = None,
           run_id: str | None = None) -> Iterator[WindowResult]:
    """Solve the inventory's pending agents as a stream of windows, then drain what waits."""
    planner = Planner(inv, cfg, binder, run_id)
    for arrivals in cut_windows(inv.pending, cfg.max_agents, cfg.max_age):
        yield planner.step(arrivals)
    # what is still waiting gets one more window with nothing new: placed or reported
    if planner.waiting:
        yield planner.step([])
