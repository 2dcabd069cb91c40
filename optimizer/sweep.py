"""Sweeps: many what-if scenarios against one cluster, in parallel, into one table.

The baseline plan is solved once in the driver; each scenario is one task (apply, solve,
diff) that returns one flat row. Tasks run on Ray when it is installed (the `ray` extra):
a local Ray runtime by default (all cores of this machine), or any running Ray cluster by
address (agentplace must be installed on its nodes). Without Ray, or with `pool=True`, they
run in a local process pool. Each task's CP-SAT uses `cfg.workers` threads (1 by default for
sweeps: the parallelism is across scenarios) and reserves as many CPUs on Ray.

Every scenario is parsed, applied and its solve options resolved in the driver before any
task starts, so a typo in scenario 187 of 200 fails the sweep in a second, not after an hour.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from models import InputError, InputErrors, Inventory
from models.scenario import Scenario, apply_scenario, load_scenario
from optimizer.config import ConfigError, SolveConfig, resolve_weights
from optimizer.plan import Plan
from optimizer.rayrun import ray_runtime
from optimizer.solve import optimize
from optimizer.whatif import run_whatif, scenario_config

log = logging.getLogger("agentplace.sweep")
SUFFIXES = (".yaml", ".yml", ".json")
# the row's columns, in order; scenario labels follow as label.<key>
COLUMNS = (
    "scenario", "file", "error", "status", "verified", "placed", "unplaced", "placed_delta",
    "placed_priority", "moved", "newly_unplaced", "newly_placed", "evicted", "evicted_unplaced",
    "lost", "added_agents", "added_placed", "added_nodes", "removed_nodes", "preempted",
    "newly_preempted", "nodes",
    "spend_per_hour", "spend_delta", "tokens_per_hour", "tokens_delta", "max_zone_cpu",
    "max_zone_memory", "profile", "weights", "solve_seconds", "task_seconds",
)


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]
    backend: str  # "ray (local)", "ray (auto)", "process pool (N workers)"
    baseline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_scenarios(directory: str | Path) -> list[tuple[str, Scenario]]:
    """Every *.yaml|*.yml|*.json under `directory` (recursively), as (file, Scenario); all
    errors of all files together, names unique."""
    root = Path(directory)
    if not root.is_dir():
        raise InputErrors([InputError(f"directory {root}", "", "no such directory")])
    files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
    if not files:
        raise InputErrors([InputError(f"directory {root}", "", "holds no .yaml, .yml or .json file")])
    errors: list[InputError] = []
    out: list[tuple[str, Scenario]] = []
    seen: dict[str, str] = {}
    for f in files:
        try:
            sc = load_scenario(f)
        except InputErrors as exc:
            errors += exc.errors
            continue
        if sc.name in seen:
            errors.append(InputError(f"Scenario {sc.name}", "metadata.name",
                                     f"Duplicate value: also defined in {seen[sc.name]}"))
            continue
        seen[sc.name] = str(f)
        out.append((str(f), sc))
    if errors:
        raise InputErrors(errors)
    return out


def check_scenarios(inv: Inventory, scenarios: Sequence[tuple[str, Scenario]],
                    cfg: SolveConfig) -> None:
    """Apply each scenario and resolve its solve options, without solving: fail fast."""
    errors: list[InputError] = []
    for f, sc in scenarios:
        try:
            apply_scenario(inv, sc)
        except InputErrors as exc:
            errors += exc.errors
        try:
            resolve_weights(scenario_config(cfg, sc.solve))
        except ConfigError as exc:
            errors.append(InputError(f"Scenario {sc.name}", "solve", f"{exc} ({f})"))
    if errors:
        raise InputErrors(errors)


def row(result: dict[str, Any], file: str, seconds: float) -> dict[str, Any]:
    """One flat table row from a run_whatif result."""
    s = result["summary"]
    base, scen, counts = s["baseline"], s["scenario"], s["counts"]
    zones = [z["after"] for z in result["zones"] if z["after"]]
    solve = result["scenario"]["solve"]
    out: dict[str, Any] = {
        "scenario": result["scenario"]["name"], "file": file, "error": "",
        "status": scen["status"], "verified": scen["verified"] and base["verified"],
        "placed": scen["placed"], "unplaced": scen["unplaced"],
        "placed_delta": scen["placed"] - base["placed"], "placed_priority": scen["placed_priority"],
        **{k: counts[k] for k in ("moved", "newly_unplaced", "newly_placed", "evicted",
                                  "evicted_unplaced", "lost", "added_agents", "added_placed",
                                  "added_nodes", "removed_nodes", "newly_preempted")},
        "preempted": scen["preempted"],
        "nodes": scen["nodes"], "spend_per_hour": scen["spend_per_hour"],
        "spend_delta": round(scen["spend_per_hour"] - base["spend_per_hour"], 4),
        "tokens_per_hour": scen["tokens_per_hour"],
        "tokens_delta": scen["tokens_per_hour"] - base["tokens_per_hour"],
        "max_zone_cpu": max((z.get("cpu", 0.0) for z in zones), default=0.0),
        "max_zone_memory": max((z.get("memory", 0.0) for z in zones), default=0.0),
        "profile": scen["profile"], "weights": json.dumps(solve.get("weights", {}), sort_keys=True),
        "solve_seconds": scen["solve_seconds"], "task_seconds": round(seconds, 3),
    }
    out.update({f"label.{k}": v for k, v in sorted(result["scenario"]["labels"].items())})
    return out


def one(inv: Inventory, baseline: Plan, scenario: Scenario, cfg: SolveConfig, file: str
        ) -> dict[str, Any]:
    """One sweep task. A failure becomes the row's `error`, so one bad scenario (a bug, since
    inputs were checked) does not lose the others' results."""
    t = time.perf_counter()
    try:
        return row(run_whatif(inv, scenario, cfg, baseline=baseline), file, time.perf_counter() - t)
    except Exception as exc:
        log.exception("scenario %s failed", scenario.name)
        return _failed(scenario, file, exc, time.perf_counter() - t)


_WORKER: dict[str, Any] = {}


def _init_worker(inv: Inventory, baseline: Plan, cfg: SolveConfig) -> None:
    # sent once per pool process, not once per task
    _WORKER.update(inv=inv, baseline=baseline, cfg=cfg)


def _pool_task(scenario: Scenario, file: str) -> dict[str, Any]:
    return one(_WORKER["inv"], _WORKER["baseline"], scenario, _WORKER["cfg"], file)


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def _run_pool(inv: Inventory, baseline: Plan, scenarios: Sequence[tuple[str, Scenario]],
              cfg: SolveConfig, processes: int, progress: Callable[[], None]) -> list[dict[str, Any]]:
    # spawn, not fork: the driver already ran CP-SAT's threads (the baseline)
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(inv, baseline, cfg)) as pool:
        futures = [pool.submit(_pool_task, sc, f) for f, sc in scenarios]
        rows = []
        for fut, (f, sc) in zip(futures, scenarios, strict=True):
            try:
                rows.append(fut.result())
            except Exception as exc:  # the worker process died (killed, out of memory)
                rows.append(_failed(sc, f, exc))
            progress()
    return rows


def _failed(scenario: Scenario, file: str, exc: BaseException, seconds: float = 0.0) -> dict[str, Any]:
    return {"scenario": scenario.name, "file": file, "error": f"{type(exc).__name__}: {exc}",
            "task_seconds": round(seconds, 3),
            **{f"label.{k}": v for k, v in sorted(scenario.metadata.labels.items())}}


def _run_ray(inv: Inventory, baseline: Plan, scenarios: Sequence[tuple[str, Scenario]],
             cfg: SolveConfig, address: str | None, progress: Callable[[], None]
             ) -> tuple[list[dict[str, Any]], str]:
    with ray_runtime(address, "--ray-address ") as rt:
        ray, cpus = rt.ray, rt.cpus
        task = ray.remote(num_cpus=min(cfg.workers, max(1, cpus)))(one)
        inv_ref, base_ref = ray.put(inv), ray.put(baseline)
        pending = {task.remote(inv_ref, base_ref, sc, cfg, f): i
                   for i, (f, sc) in enumerate(scenarios)}
        rows: list[dict[str, Any] | None] = [None] * len(scenarios)
        waiting = list(pending)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                i = pending[ref]
                try:
                    rows[i] = ray.get(ref)
                except Exception as exc:  # the task's worker died; `one` catches the rest
                    rows[i] = _failed(scenarios[i][1], scenarios[i][0], exc)
                progress()
        where = f"ray ({address or 'local'}, {cpus} CPUs)" if rt.started else \
            f"ray (existing runtime, {cpus} CPUs)"
        return [r for r in rows if r is not None], where


def run_sweep(inv: Inventory, scenarios: Sequence[tuple[str, Scenario]], cfg: SolveConfig,
              ray_address: str | None = None, pool: bool = False, processes: int | None = None,
              progress: Callable[[], None] = lambda: None) -> SweepResult:
    """Solve the baseline once, then every scenario as a task; rows in the scenarios' order.
    A Ray runtime the caller already started is used as it is (and left running)."""
    check_scenarios(inv, scenarios, cfg)
    baseline = optimize(inv, cfg)
    notes: list[str] = []
    if not pool and ray_installed():
        rows, backend = _run_ray(inv, baseline, scenarios, cfg, ray_address, progress)
    else:
        n = processes or max(1, (os.cpu_count() or 1) // max(1, cfg.workers))
        n = max(1, min(n, len(scenarios)))
        procs = f"{n} process{'es' if n != 1 else ''}"
        backend = f"process pool ({procs})"
        if not pool:
            notes.append("Ray is not installed (pip install 'agentplace[ray]'): scenarios run in "
                         f"a local process pool of {procs} instead")
        if ray_address not in (None, "local") and not pool:
            notes.append(f"--ray-address {ray_address} ignored without Ray")
        rows = _run_pool(inv, baseline, scenarios, cfg, n, progress)
    base = {"status": baseline.status, "placed": len(baseline.placements),
            "unplaced": len(baseline.unplaced), "verified": baseline.verified}
    return SweepResult(rows=rows, backend=backend, baseline=base, notes=notes)


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    labels = sorted({k for r in rows for k in r if k.startswith("label.")})
    return [*COLUMNS, *labels]


def write_table(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """CSV, or Parquet when the path ends in .parquet (needs pyarrow, which Ray's data extra
    and pandas users usually have)."""
    out = Path(path)
    cols = columns(rows)
    if out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputErrors([InputError(f"file {out}", "", "writing Parquet needs pyarrow "
                                          "(pip install pyarrow); or write .csv")]) from None
        table = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows])
        pq.write_table(table, out)
        return out
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return out
