"""Prometheus metrics of the service, in their own CollectorRegistry per app (two apps in one
process, as in the tests, never collide on the global registry).

Names follow Prometheus conventions (base units, `_total` counters, `_seconds` durations,
`_ratio`) and mirror kube-scheduler's where one exists: `scheduler_schedule_attempts_total{result}`
with result scheduled / unschedulable / error, `scheduler_pending_pods{queue}`,
`scheduler_preemption_victims`.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from api.pool import SolvePool
from optimizer import Plan

SOLVE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.schedule_attempts = Counter(
            "agentplace_schedule_attempts_total",
            "Agents the optimizer tried to place, by result: scheduled, unschedulable (left "
            "unplaced with a reason) or error (the solve failed).", ["result"], registry=r)
        self.solve_duration = Histogram(
            "agentplace_solve_duration_seconds",
            "Wall time of one plan request's solve (snapshot to verified plan), by plan status.",
            ["status"], buckets=SOLVE_BUCKETS, registry=r)
        self.pending_agents = Gauge(
            "agentplace_pending_agents", "Pending agents in the windows being solved now.", registry=r)
        self.preemption_victims = Counter(
            "agentplace_preemption_victims_total", "Running pods the returned plans evict.", registry=r)
        self.plan_gap = Gauge(
            "agentplace_plan_gap_ratio",
            "The last plan's proven gap, (bound - objective) / max(1, |objective|); 0 is optimal.",
            registry=r)
        self.plans = Counter("agentplace_plans_total", "Plans returned, by status.", ["status"], registry=r)
        self.solves_running = Gauge("agentplace_solves_running", "Solves running now.", registry=r)
        self.solves_waiting = Gauge(
            "agentplace_solves_waiting", "Solve requests admitted and waiting for a slot.", registry=r)
        self.rejected = Counter(
            "agentplace_solve_rejections_total",
            "Solve requests refused with 429 because every slot and queue place was taken.", registry=r)
        self.bindings = Counter(
            "agentplace_bindings_total", "Bindings the binder finished for ?bind=true plans, by outcome.",
            ["result"], registry=r)
        self.requests = Counter(
            "agentplace_http_requests_total", "HTTP requests, by method, route and status code.",
            ["method", "route", "code"], registry=r)
        self.request_duration = Histogram(
            "agentplace_http_request_duration_seconds", "HTTP request latency, by route.", ["route"],
            registry=r)
        for result in ("scheduled", "unschedulable", "error"):
            self.schedule_attempts.labels(result)  # present at 0 from the start

    def watch_pool(self, pool: SolvePool) -> None:
        """Read the pool's counters at scrape time."""
        self.solves_running.set_function(lambda: pool.running)
        self.solves_waiting.set_function(lambda: max(0, pool.admitted - pool.running))

    def observe_plan(self, plan: Plan, seconds: float) -> None:
        self.schedule_attempts.labels("scheduled").inc(len(plan.placements))
        self.schedule_attempts.labels("unschedulable").inc(len(plan.unplaced))
        self.solve_duration.labels(plan.status).observe(seconds)
        self.preemption_victims.inc(len(plan.evictions))
        if plan.gap is not None:
            self.plan_gap.set(plan.gap)
        self.plans.labels(plan.status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
