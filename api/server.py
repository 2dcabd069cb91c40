"""The HTTP optimize service (`agentplace serve`): the CLI's plan over HTTP, with durable plans and
bindings, metrics, and limits on what one caller can make it do.

    POST /v1/optimize[?bind=true]   window + options -> verified plan (dry run unless bind=true)
    GET  /v1/plans/{id}             a stored plan and its bindings (survives restarts)
    GET  /v1/bindings/{id}          one binding's state
    GET  /healthz /readyz /metrics  liveness, readiness (DB + solver), Prometheus text

`create_app(settings)` builds one self-contained app (its own DB engine, worker pool and metrics
registry), so tests run several side by side. Solving happens in the worker pool, never on the
event loop; a full pool answers 429 at once.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.binding import bind_plan, make_sink
from api.metrics import Metrics
from api.planning import plan_window
from api.pool import Busy, SolvePool
from api.schemas import (
    EXAMPLE,
    ErrorResponse,
    OptimizeRequest,
    PlanResponse,
    StoredPlanResponse,
    WhatIfRequest,
)
from api.security import BodyLimit, require_token
from api.settings import Settings
from api.store import PlanStore
from models import InputErrors
from models.errors import format_loc
from models.load import load_named
from optimizer import Plan, PlanInvalidError
from optimizer.binder import Binding, Outbox, PodEviction
from optimizer.config import ConfigError
from optimizer.snapshot import build_snapshot

log = logging.getLogger("agentplace.api")

Authorized = Depends(require_token)


def _binding(b: Binding) -> dict[str, Any]:
    return {"id": b.id, "plan_id": b.plan_id, "agent": b.agent, "node": b.node, "state": b.state,
            "attempts": b.attempts, "error": b.error}


def _eviction(e: PodEviction) -> dict[str, Any]:
    return {"id": e.id, "plan_id": e.plan_id, "pod": e.pod, "node": e.node, "agent": e.agent,
            "state": e.state, "attempts": e.attempts, "error": e.error}


def _errors(detail: list[dict[str, str]], message: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "message": message}, status_code=422)


class Service:
    """What the routes share: settings, database, pool, metrics, the binder's sink and lock."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.outbox = Outbox(settings.db)
        self.store = PlanStore(self.outbox.engine)
        self.pool = SolvePool(settings.solve_slots, settings.queue_depth)
        self.metrics.watch_pool(self.pool)
        self.sink = make_sink(settings.sink)
        self.bind_lock = threading.Lock()

    def close(self) -> None:
        self.pool.shutdown()
        self.outbox.close()

    async def solve(self, work: Callable[[], Any], request_id: str) -> Any:
        """Run `work` (anything that solves: optimize, what-if) in the bounded pool and map its
        failures to answers: pool full -> 429 + Retry-After, InputErrors / ConfigError -> 422
        with object, field and reason, PlanInvalidError -> 500 (a bug, logged)."""
        try:
            return await self.pool.run(work)
        except Busy:
            self.metrics.rejected.inc()
            raise HTTPException(429, "every solve slot is busy; retry later",
                                headers={"Retry-After": str(self.settings.retry_after)}) from None
        except InputErrors as exc:
            return _errors([e.as_dict() for e in exc.errors], str(exc))
        except ConfigError as exc:
            return _errors([{"object": "options", "field": "", "reason": str(exc)}], str(exc))
        except PlanInvalidError as exc:
            log.error("plan failed verification", extra={"fields": {"request_id": request_id,
                                                                    "error": str(exc)}})
            raise HTTPException(500, f"internal error: plan failed verification: {exc}") from None

    def optimize(self, body: OptimizeRequest, bind: bool, request_id: str) -> dict[str, Any]:
        """Runs in a worker: load, solve, store, and bind when asked. Raises InputErrors,
        ConfigError, PlanInvalidError."""
        inv = load_named([(body.cluster, "cluster"), (body.pending, "pending")])
        options, notes = body.options.to_plan_options().capped(self.settings.max_time_limit,
                                                                self.settings.max_workers)
        n = len(inv.pending)
        self.metrics.pending_agents.inc(n)
        started = time.perf_counter()
        try:
            t0 = time.perf_counter()
            snap = build_snapshot(inv)
            snapshot_s = time.perf_counter() - t0
            plan: Plan = plan_window(snap, options)
        except ConfigError:  # the caller's options, not a failed attempt
            raise
        except Exception:
            self.metrics.schedule_attempts.labels("error").inc(n)
            raise
        finally:
            self.metrics.pending_agents.dec(n)
        seconds = time.perf_counter() - started
        plan.timings = {"snapshot": round(snapshot_s, 6), **plan.timings}
        plan.warnings.extend(notes)
        self.metrics.observe_plan(plan, seconds)
        plan_id = str(uuid.uuid4())
        self.store.put(plan_id, request_id, plan, dry_run=not bind)
        out: dict[str, Any] = {"plan_id": plan_id, "request_id": request_id, "dry_run": not bind,
                               **plan.to_dict()}
        if bind:
            # the binder issues the plan's evictions first; a binding waits for those that make
            # room for it, and a failed one sends its agent back (conflict)
            bindings = bind_plan(self.outbox, self.sink, plan, plan_id, snap, self.bind_lock)
            for b in bindings:
                self.metrics.bindings.labels(b.state).inc()
            out["bindings"] = [_binding(b) for b in bindings]
            out["evictions_issued"] = [_eviction(e) for e in self.outbox.evictions(plan_id)]
        log.info("plan", extra={"fields": {
            "request_id": request_id, "plan_id": plan_id, "status": plan.status, "dry_run": not bind,
            "pending": n, "placed": len(plan.placements), "unplaced": len(plan.unplaced),
            "evictions": len(plan.evictions), "gap": plan.gap, "solve_seconds": round(seconds, 4),
            "time_limit": options.time_limit,
            "bindings": dict(Counter(b["state"] for b in out["bindings"])) if bind else None}})
        return out


    def whatif(self, body: WhatIfRequest, request_id: str) -> dict[str, Any]:
        """Runs in a worker: the baseline and the scenario plan, both verified, and their diff."""
        from optimizer.whatif import run_whatif  # matplotlib-free; loaded on first use

        inv = load_named([(body.cluster, "cluster"), (body.pending, "pending")])
        options, notes = body.options.to_plan_options().capped(self.settings.max_time_limit,
                                                                self.settings.max_workers)
        started = time.perf_counter()
        out = run_whatif(inv, body.scenario, options.solve_config(),
                         include_plans=body.include_plans)
        log.info("whatif", extra={"fields": {
            "request_id": request_id, "seconds": round(time.perf_counter() - started, 4)}})
        return {"request_id": request_id, "warnings_options": notes, **out}


def _service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(_service)]

v1 = APIRouter(prefix="/v1", tags=["plans"], dependencies=[Authorized])
ops = APIRouter(tags=["operations"])


@v1.post("/optimize", response_model=None, responses={
    200: {"model": PlanResponse}, 401: {"description": "missing or wrong bearer token"},
    413: {"description": "body over the size limit"}, 422: {"model": ErrorResponse},
    429: {"description": "every solve slot and queue place taken; retry after Retry-After seconds"}})
async def optimize(
    request: Request,
    service: ServiceDep,
    body: Annotated[OptimizeRequest, Body(openapi_examples={
        "one node, one agent": {"summary": "a List of nodes and an array of pending pods",
                                "value": EXAMPLE}})],
    bind: Annotated[bool, Query(
        description="Hand the verified plan to the binder; default dry run.")] = False,
) -> Any:
    """Place the pending agents on the cluster as one CP-SAT batch and return the verified plan
    (`agentplace plan -o json`'s schema). With `bind=true` the plan also goes to the durable
    binder and the response lists its bindings."""
    request_id = request.state.request_id
    return await service.solve(lambda: service.optimize(body, bind, request_id), request_id)


@v1.post("/whatif", response_model=None, responses={
    401: {"description": "missing or wrong bearer token"}, 422: {"model": ErrorResponse},
    429: {"description": "every solve slot and queue place taken; retry after Retry-After seconds"}})
async def whatif(request: Request, service: ServiceDep, body: WhatIfRequest) -> Any:
    """Plan the window as given and as the scenario changes it; both plans verified; the answer
    is their diff (`agentplace whatif -o json`'s schema): moves, newly (un)placed, evictions,
    spend and tokens per tenant, utilisation per zone."""
    request_id = request.state.request_id
    return await service.solve(lambda: service.whatif(body, request_id), request_id)


@v1.get("/plans/{plan_id}", response_model=StoredPlanResponse,
        responses={404: {"description": "no such plan"}})
def get_plan(plan_id: str, service: ServiceDep) -> dict[str, Any]:
    """A plan this service returned, with its bindings' current states (empty for a dry run)."""
    stored = service.store.get(plan_id)
    if stored is None:
        raise HTTPException(404, f"plan {plan_id!r} not found")
    return {"plan_id": stored.id, "request_id": stored.request_id,
            "created_at": stored.created_at.isoformat(), "dry_run": stored.dry_run, "plan": stored.plan,
            "bindings": [_binding(b) for b in service.outbox.bindings(stored.id)],
            "evictions_issued": [_eviction(e) for e in service.outbox.evictions(stored.id)]}


@v1.get("/bindings/{binding_id}", responses={404: {"description": "no such binding"}})
def get_binding(binding_id: int, service: ServiceDep) -> dict[str, Any]:
    """One binding: agent, node, state (pending, issuing, bound, conflict, failed), attempts, error."""
    try:
        return _binding(service.outbox.get(binding_id))
    except KeyError:
        raise HTTPException(404, f"binding {binding_id} not found") from None


@ops.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@ops.get("/readyz", responses={503: {"description": "not ready, with the failing checks"}})
def readyz(service: ServiceDep) -> JSONResponse:
    """Readiness: the database answers and the solver imports."""
    checks: dict[str, str] = {}
    try:
        service.store.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"{type(exc).__name__}: {exc}"
    try:
        importlib.import_module("ortools.sat.python.cp_model")
        checks["solver"] = "ok"
    except Exception as exc:
        checks["solver"] = f"{type(exc).__name__}: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                        status_code=200 if ok else 503)


@ops.get("/metrics", response_class=Response)
def metrics(service: ServiceDep) -> Response:
    """Prometheus text exposition."""
    return Response(service.metrics.render(), media_type=service.metrics.content_type)


class RequestLog:
    """Pure ASGI (no task group between the app and `receive`, so the body limit's 413 reaches
    FastAPI intact): a request id (the caller's X-Request-ID or a new one) in `request.state`
    and the response headers, one JSON log line and the HTTP metrics per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id")
        request_id = (given or uuid.uuid4().hex)[:64]
        scope.setdefault("state", {})["request_id"] = request_id
        t0 = time.perf_counter()
        code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - t0
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.requests.labels(scope["method"], route, str(code)).inc()
            self.metrics.request_duration.labels(route).observe(seconds)
            client = scope.get("client")
            log.info("request", extra={"fields": {
                "request_id": request_id, "method": scope["method"], "path": scope["path"], "status": code,
                "duration_ms": round(seconds * 1000, 2), "client": client[0] if client else None}})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.service.close()

    app = FastAPI(title="agentplace", version="0.1.0", lifespan=lifespan,
                  description="Batch placement of AI agents onto Kubernetes clusters with CP-SAT. "
                              "The plan schema is `agentplace plan -o json`'s.")
    app.state.settings = settings
    app.state.service = Service(settings)
    app.include_router(v1)
    app.include_router(ops)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = []
        for e in exc.errors():
            loc = [p for p in e.get("loc", ()) if p != "body"]
            detail.append({"object": "request", "field": format_loc(loc), "reason": str(e.get("msg"))})
        n = len(detail)
        message = f"{n} input error{'s' if n != 1 else ''}:\n" + "\n".join(
            f"  {d['object']}: {d['field']}: {d['reason']}" for d in detail)
        return _errors(detail, message)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # before anything reads the body
    app.add_middleware(RequestLog, metrics=app.state.service.metrics)  # outermost: sees every answer
    return app
