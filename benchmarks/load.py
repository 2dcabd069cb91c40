"""A small, bounded load test of the HTTP service on 127.0.0.1.

    python -m benchmarks.load [--requests 200] [--concurrency 4] [--duration 60] [--retry]
                              [--nodes 20] [--agents 30] [--time-limit 2] [--url URL] [--out DIR]

Starts `agentplace serve` on a free loopback port (unless --url points at a running one),
sends --requests POST /v1/optimize of one seeded synthetic window from --concurrency client
threads (stopping early after --duration seconds), stops the server, and prints requests,
concurrency, throughput, latency p50/p90/p99, 429s (the service's back-pressure, by design not
errors; `--retry` retries them after Retry-After) and errors. Every returned plan is re-checked
here with the project verifier against the same window; a plan that fails counts as an error.
Figures go to DIR/load.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import check_plan, code_version, machine_info
from models import load_documents
from optimizer.snapshot import build_snapshot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@contextmanager
def serve_process(*args: str, env: dict[str, str] | None = None, db: str | None = None,
                  startup_timeout: float = 30.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`agentplace serve` in a child process on a free loopback port; yields (base URL, process)
    once /readyz answers 200, and stops it with SIGTERM (SIGKILL after 10 s) at the end. Its
    JSON logs go to a temporary file, printed if it fails to start."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="agentplace-serve-") as tmp:
        cmd = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--db", db or str(Path(tmp) / "service.db"), *args]
        log_path = Path(tmp) / "serve.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"agentplace serve exited with {proc.returncode}:\n"
                                       f"{log_path.read_text()[-4000:]}")
                try:
                    if get(url, "/readyz", timeout=1.0)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"agentplace serve not ready after {startup_timeout}s:\n"
                                       f"{log_path.read_text()[-4000:]}")
                time.sleep(0.1)
            yield url, proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def window(nodes: int, agents: int, seed: int) -> list[dict[str, Any]]:
    """A seeded window: nodes of two sizes, a few tainted, agents of three shapes."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for i in range(nodes):
        cpu, mem = ("8", "32Gi") if i % 3 else ("16", "64Gi")
        taint = {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}
        spec = {"taints": [taint]} if i % 7 == 0 else {}
        alloc = {"cpu": cpu, "memory": mem, "pods": "110"}
        docs.append({"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": f"node-{i:04d}", "labels": {"zone": f"z{i % 3}"}},
                     "spec": spec, "status": {"allocatable": alloc, "capacity": alloc}})
    shapes = (({"cpu": "500m", "memory": "1Gi"}, 100), ({"cpu": "2", "memory": "4Gi"}, 1000),
              ({"cpu": "6", "memory": "24Gi"}, 10))
    for j in range(agents):
        req, prio = shapes[rng.choices(range(3), (60, 30, 10))[0]]
        docs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"agent-{j:05d}", "namespace": "load"},
                     "spec": {"priority": prio,
                              "containers": [{"name": "a", "resources": {"requests": req}}]}})
    return docs


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))], 4)


def run_load(url: str, body: bytes, requests: int, concurrency: int, duration: float,
             token: str | None = None, retry: bool = False) -> dict[str, Any]:
    """Send up to `requests` POSTs from `concurrency` threads, each on its own keep-alive
    connection, for at most `duration` seconds; per request: status, seconds, body. With `retry`,
    a 429 is retried after its Retry-After (within the duration), as a polite client does; the
    request's latency then includes the wait."""
    u = urllib.parse.urlsplit(url)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    lock = threading.Lock()
    issued = 0
    results: list[tuple[int, float, bytes]] = []  # status (0: transport error), seconds, body
    retries = 0
    stop_at = time.monotonic() + duration

    def worker() -> None:
        nonlocal issued, retries
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=max(30.0, duration))
        while True:
            with lock:
                if issued >= requests or time.monotonic() > stop_at:
                    break
                issued += 1
            t0 = time.perf_counter()
            while True:
                try:
                    conn.request("POST", "/v1/optimize", body=body, headers=headers)
                    r = conn.getresponse()
                    status, data, wait = r.status, r.read(), float(r.getheader("retry-after") or 1)
                except (OSError, http.client.HTTPException) as exc:
                    status, data, wait = 0, str(exc).encode(), 0.0
                    conn.close()
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=max(30.0, duration))
                if not (retry and status == 429 and time.monotonic() + wait < stop_at):
                    break
                with lock:
                    retries += 1
                time.sleep(wait)
            with lock:
                results.append((status, time.perf_counter() - t0, data))
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"wall_seconds": time.perf_counter() - t0, "results": results, "retries": retries}


def summarize(raw: dict[str, Any], docs: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    snap = build_snapshot(load_documents(docs, source="load"))
    ok_lat, all_lat = [], []
    codes: dict[str, int] = {}
    errors: list[str] = []
    statuses: dict[str, int] = {}
    placed: set[int] = set()
    for status, seconds, data in raw["results"]:
        codes[str(status)] = codes.get(str(status), 0) + 1
        all_lat.append(seconds)
        if status == 429:
            continue
        if status != 200:
            errors.append(f"HTTP {status}: {data[:200].decode(errors='replace')}")
            continue
        plan = json.loads(data)
        check = check_plan("service", [(p["agent"], p["node"]) for p in plan["placements"]], snap, False)
        if not plan["verified"] or not check.ok:
            errors.append(f"plan {plan['plan_id']} failed verification: {check.violations[:3]}")
            continue
        ok_lat.append(seconds)
        statuses[plan["status"]] = statuses.get(plan["status"], 0) + 1
        placed.add(len(plan["placements"]))
    n = len(raw["results"])
    wall = raw["wall_seconds"]
    return {
        "requests": n, "concurrency": concurrency, "wall_seconds": round(wall, 3),
        "throughput_rps": round(n / wall, 2) if wall else None,
        "ok": len(ok_lat), "rejected_429": codes.get("429", 0), "retries_after_429": raw["retries"],
        "errors": len(errors),
        "error_examples": errors[:5], "status_codes": codes, "plan_statuses": statuses,
        "placed_per_plan": sorted(placed), "pending_per_window": len(snap.pending),
        "latency_ok_seconds": {"p50": _percentile(ok_lat, 0.5), "p90": _percentile(ok_lat, 0.9),
                               "p99": _percentile(ok_lat, 0.99), "max": _percentile(ok_lat, 1.0)},
        "latency_all_seconds": {"p50": _percentile(all_lat, 0.5), "p99": _percentile(all_lat, 0.99)},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--retry", action="store_true", help="retry a 429 after its Retry-After")
    ap.add_argument("--duration", type=float, default=60.0, help="stop sending after this many seconds")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=1, help="CP-SAT workers per solve")
    ap.add_argument("--url", help="a running service (default: start one on a free loopback port)")
    ap.add_argument("--token", default=os.environ.get("AGENTPLACE_API_TOKEN"))
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args(argv)
    docs = window(args.nodes, args.agents, args.seed)
    body = json.dumps({"pending": docs, "options": {"time_limit": args.time_limit,
                                                    "workers": args.workers}}).encode()

    def measure(url: str) -> dict[str, Any]:
        raw = run_load(url, body, args.requests, args.concurrency, args.duration, args.token, args.retry)
        status, metrics = get(url, "/metrics")
        out = summarize(raw, docs, args.concurrency)
        wanted = ("agentplace_solve_duration_seconds_sum", "agentplace_solve_duration_seconds_count",
                  "agentplace_solve_rejections_total", "agentplace_schedule_attempts_total")
        lines = metrics.decode().splitlines() if status == 200 else []
        out["server_metrics"] = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                                 for line in lines if line.startswith(wanted)}
        return out

    if args.url:
        figures = measure(args.url)
    else:
        with serve_process() as (url, _proc):
            figures = measure(url)
    result = {"machine": machine_info(), "code": code_version(),
              "parameters": vars(args) | {"out": str(args.out), "token": bool(args.token)}, **figures}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "load.json"
    path.write_text(json.dumps(result, indent=2))
    lat = figures["latency_ok_seconds"]
    print(f"requests {figures['requests']}, concurrency {figures['concurrency']}, "
          f"{figures['throughput_rps']} req/s over {figures['wall_seconds']} s; ok {figures['ok']}, "
          f"429 {figures['rejected_429']} (retried {figures['retries_after_429']}), errors "
          f"{figures['errors']}; latency of ok requests "
          f"p50 {lat['p50']} s, p90 {lat['p90']} s, p99 {lat['p99']} s, max {lat['max']} s")
    for e in figures["error_examples"]:
        print(f"  error: {e}")
    print(f"written to {path}")
    return result


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
