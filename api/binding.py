"""Bindings for the CLI and the service: a sink from its spelling, and handing one verified plan to
the durable binder (optimizer/binder) with the optimistic re-check against the plan's snapshot."""

from __future__ import annotations

import threading

from optimizer import Plan
from optimizer.binder import Binder, Binding, DryRunSink, JsonlSink, KubernetesSink, Outbox, Sink, SnapshotFit
from optimizer.snapshot import Snapshot

SINKS = "dry-run, jsonl:PATH or kubernetes"


def make_sink(spec: str) -> Sink:
    """`dry-run`, `jsonl:PATH` or `kubernetes` (kubeconfig or in-cluster); ValueError otherwise."""
    if spec == "dry-run":
        return DryRunSink()
    if spec.startswith("jsonl:") and len(spec) > len("jsonl:"):
        return JsonlSink(spec[len("jsonl:"):])
    if spec == "kubernetes":
        return KubernetesSink()
    raise ValueError(f"sink {spec!r}: expected {SINKS}")


class PlanFit:
    """The binder's fit check for one plan: its own placements are re-checked against its
    snapshot plus what the outbox holds (SnapshotFit); bindings of other plans still in the
    outbox (left by a process that stopped mid-way) were verified against their own snapshot,
    which this one may not even contain, so they are trusted, as a binder without a check does."""

    def __init__(self, plan: Plan, snap: Snapshot, outbox: Outbox) -> None:
        self.mine = {(p.agent, p.node) for p in plan.placements}
        self.check = SnapshotFit(snap, outbox)
        self.last_reason: str | None = None

    def __call__(self, agent: str, node: str) -> bool:
        if (agent, node) not in self.mine:
            self.last_reason = None
            return True
        ok = self.check(agent, node)
        self.last_reason = self.check.last_reason
        return ok


def bind_plan(outbox: Outbox, sink: Sink, plan: Plan, plan_id: str, snap: Snapshot,
              lock: threading.Lock) -> list[Binding]:
    """Submit `plan` under `plan_id` and drain the outbox until idle; the plan's bindings as they
    stand. `lock` keeps one binder at a time on this outbox (the binder's own rule)."""
    with lock:
        outbox.submit(plan, plan_id)
        Binder(outbox, sink, PlanFit(plan, snap, outbox)).run(interval=0.2)
    return outbox.bindings(plan_id)
