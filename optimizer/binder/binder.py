"""The binder: drains the outbox into a sink, one committed step at a time.

For each binding: (1) a pending one is re-checked against the latest known usage (optimistic
concurrency: the plan was verified against a snapshot that may be stale by now); if the node no
longer fits, conflict and requeue in one transaction; (2) claim it (pending -> issuing, committed);
(3) call the sink; (4) mark it bound (committed). A kill between any two steps leaves a state a
restart finishes correctly: pending is re-decided, issuing is re-issued with the same key (the
sink makes that a no-op if it had landed), bound and conflict are done.

Evictions come first: each pass issues the outbox's evictions (claim, sink, mark evicted; the
same crash-safe steps) before any binding, and a binding whose agent still waits for an eviction
on its node is not even handed out; with a sink that can tell (Kubernetes), it then waits until
the evicted pods are gone, not just terminating, as kube-scheduler waits on its nominated node.
An eviction the sink refuses (a PodDisruptionBudget) or that
keeps failing ends failed and sends its agent back to the next window in the same transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from models import Pod
from optimizer.binder.outbox import (
    CONFLICT,
    EVICTED,
    FAILED,
    ISSUING,
    PENDING,
    Binding,
    Outbox,
    PodEviction,
    Requeued,
)
from optimizer.binder.sinks import EvictionRefused, Sink, SinkConflict
from optimizer.rules import RULES, NodeUsage
from optimizer.snapshot import Snapshot

log = logging.getLogger("agentplace.binder")

Fits = Callable[[str, str], bool]
"""(agent "ns/name", node) -> True while the node can still take the agent."""

# the Filter rules whose verdict on a node only gets worse as agents are added and which read
# nothing but the pod, the node and the node's usage: re-checking them on a partial plan is
# sound. Inter-pod rules (affinity, spread) may need agents of the same plan not bound yet.
NODE_LOCAL_RULES = ("NodeUnschedulable", "TaintToleration", "NodeAffinity", "NodeResourcesFit")


@dataclass
class PassResult:
    """What one pass over the outbox did."""

    bound: int = 0
    conflict: int = 0
    failed: int = 0
    retry: int = 0
    waiting: int = 0  # bindings whose evicted victims are still terminating
    evicted: int = 0
    eviction_failed: int = 0
    eviction_retry: int = 0

    @property
    def progressed(self) -> int:
        return self.bound + self.conflict + self.failed + self.evicted + self.eviction_failed


class Binder:
    """Issues the outbox's bindings through `sink`; `fits` is the optimistic conflict check
    (None: trust the plan). One binder process per outbox: claims are compare-and-set, but an
    `issuing` row is taken to be an interrupted one of ours."""

    def __init__(self, outbox: Outbox, sink: Sink, fits: Fits | None = None, *,
                 max_attempts: int = 5, victim_timeout: float = 120.0) -> None:
        self.outbox = outbox
        self.sink = sink
        self.fits = fits
        self.max_attempts = max_attempts
        # how long a binding waits for its evicted victims to be gone (a sink with `gone`,
        # Kubernetes: graceful deletion) before its agent goes back to the next window
        self.victim_timeout = victim_timeout

    def run_once(self, limit: int | None = None) -> PassResult:
        """One pass over the work the outbox holds now: evictions first, then the bindings they
        no longer block (interrupted issuing rows first in each)."""
        out = PassResult()
        for e in self.outbox.eviction_work(limit):
            state = self._evict(e)
            if state == EVICTED:
                out.evicted += 1
            elif state == FAILED:
                out.eviction_failed += 1
            elif state == ISSUING:
                out.eviction_retry += 1
        for b in self.outbox.work(limit):
            state = self._process(b)
            if state == "bound":
                out.bound += 1
            elif state == CONFLICT:
                out.conflict += 1
            elif state == FAILED:
                out.failed += 1
            elif state == ISSUING:
                out.retry += 1
            elif state == "waiting":
                out.waiting += 1
        return out

    def _evict(self, e: PodEviction) -> str | None:
        if e.state == PENDING and not self.outbox.claim_eviction(e.id):
            return None
        try:
            self.sink.evict(e.namespace, e.name, e.key)
        except EvictionRefused as exc:
            log.warning("eviction of %s refused: %s", e.pod, exc)
            return FAILED if self.outbox.fail_eviction(e.id, str(exc), (ISSUING,)) else None
        except Exception as exc:
            state = self.outbox.record_eviction_failure(e.id, f"{type(exc).__name__}: {exc}",
                                                        self.max_attempts)
            log.warning("eviction of %s failed (%s): %s", e.pod, state, exc)
            return state
        return EVICTED if self.outbox.mark_evicted(e.id) else None

    def _victims_pending(self, b: Binding) -> str | None:
        """None when every pod evicted for `b` is gone (or the sink cannot tell: it has no
        `gone`), else the first one still there."""
        gone = getattr(self.sink, "gone", None)
        if gone is None:
            return None
        for e in self.outbox.evictions_for(b):
            if not gone(e.namespace, e.name):
                return e.pod
        return None

    def _process(self, b: Binding) -> str | None:
        if b.state == PENDING:
            victim = self._victims_pending(b)
            if victim is not None:
                since = max((t for e in self.outbox.evictions_for(b)
                             if (t := self.outbox.evicted_at(e.id)) is not None), default=None)
                if since is None or (datetime.now(UTC) - since).total_seconds() < self.victim_timeout:
                    return "waiting"
                reason = f"evicted pod {victim} still on {b.node} after {self.victim_timeout:g} s"
                log.info("conflict: %s", reason)
                return CONFLICT if self.outbox.mark_conflict(b.id, reason) else None
            # an issuing row is never re-checked: it may already be bound at the sink
            if self.fits is not None and not self.fits(b.agent, b.node):
                why = getattr(self.fits, "last_reason", None)  # SnapshotFit says which rule
                reason = (f"{b.agent} no longer fits on {b.node} (optimistic re-check against the "
                          f"latest known usage){': ' + why if why else ''}")
                log.info("conflict: %s", reason)
                return CONFLICT if self.outbox.mark_conflict(b.id, reason) else None
            if not self.outbox.claim(b.id):
                return None
        try:
            self.sink.bind(b.namespace, b.name, b.node, b.key)
        except SinkConflict as e:
            log.warning("conflict from the sink for %s -> %s: %s", b.agent, b.node, e)
            return CONFLICT if self.outbox.mark_conflict(b.id, str(e), (ISSUING,)) else None
        except Exception as e:
            state = self.outbox.record_failure(b.id, f"{type(e).__name__}: {e}", self.max_attempts)
            log.warning("binding %s -> %s failed (%s): %s", b.agent, b.node, state, e)
            return state
        return "bound" if self.outbox.mark_bound(b.id) else None

    def run(self, *, interval: float = 1.0, until_idle: bool = True,
            stop: threading.Event | None = None) -> PassResult:
        """Pass after pass; with `until_idle`, return once nothing is pending or issuing (a
        binding retried `max_attempts` times ends failed, so this terminates). Otherwise loop
        until `stop` is set, waiting `interval` between passes that found nothing."""
        total = PassResult()
        stop = stop or threading.Event()
        while not stop.is_set():
            r = self.run_once()
            for f in ("bound", "conflict", "failed", "retry", "waiting", "evicted", "eviction_failed",
                      "eviction_retry"):
                setattr(total, f, getattr(total, f) + getattr(r, f))
            if until_idle and not self.outbox.eviction_work(limit=1) and not self.outbox.work(limit=1):
                break
            if r.progressed == 0:
                stop.wait(interval)
        return total

    def requeued(self, drain: bool = False) -> list[Requeued]:
        """Agents for the next window (see `Outbox.requeued`)."""
        return self.outbox.requeued(drain=drain)


class SnapshotFit:
    """The latest known usage: a Snapshot (running pods, node objects) plus every binding the
    outbox holds as issuing or bound, re-read on each check so it is right across restarts.

    `__call__(agent, node)` re-runs kube's node-local Filter rules for the agent on that node.
    Give it a fresher snapshot with `refresh` (a new `kubectl get`): pods the cluster now shows
    running are counted from the snapshot, not twice. An agent the snapshot does not show
    pending (deleted, or bound by someone else) never fits; a node it does not show is gone.
    A pod whose eviction the outbox records as done no longer counts on its node (nor does an
    agent bound there and evicted since: its binding is `evicted`), unless bound there again."""

    def __init__(self, snap: Snapshot, outbox: Outbox) -> None:
        self.outbox = outbox
        self.rules = tuple(r for r in RULES if r.name in NODE_LOCAL_RULES)
        self.refresh(snap)
        self.last_reason: str | None = None

    def refresh(self, snap: Snapshot) -> None:
        self.snap = snap
        self._pending: dict[str, Pod] = {p.ref: p for p in snap.pending}
        self._nodes = {n.name: n for n in snap.nodes}
        self._running = {p.ref for p in snap.running}

    def why_not(self, agent: str, node: str) -> str | None:
        """None if `agent` fits on `node` now, else the first reason it does not."""
        pod = self._pending.get(agent)
        if pod is None:
            return f"{agent} is not a pending agent of the latest snapshot"
        target = self._nodes.get(node)
        if target is None:
            return f"node {node} is not in the latest snapshot"
        usage = NodeUsage()
        holding = self.outbox.held(node)  # an agent evicted since is no longer held
        # evicted and not bound there again since (a preempted agent may come back)
        gone = self.outbox.evicted(node) - set(holding)
        for p in self.snap.running:
            if p.spec.node_name == node and p.ref not in gone:
                usage.add(p.requests())
        for other in holding:
            if other != agent and other not in self._running and other in self._pending:
                usage.add(self._pending[other].requests())
        for rule in self.rules:
            reasons = rule.explain(pod, target, usage)
            if reasons:
                return ", ".join(r.message for r in reasons)
        return None

    def __call__(self, agent: str, node: str) -> bool:
        self.last_reason = self.why_not(agent, node)
        if self.last_reason:
            log.info("%s on %s: %s", agent, node, self.last_reason)
        return self.last_reason is None
