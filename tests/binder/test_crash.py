"""The crash test: kill -9 the binder at seeded random points, restart it, and check that every
planned agent ends bound exactly once (one line in the sink's file, state bound) or back in the
queue (a requeue row, state conflict/failed, no line) — nothing lost, nothing doubled — and that
every planned eviction ends issued exactly once (one line, state evicted, before the line of the
agent it made room for) or failed (no line, its agent back in the queue).

The worker (tests/binder/crash_worker.py) evicts 10 pods (one refused, as by a PDB) and binds 200
placements into a JSONL file with a short
sleep on both sides of each write, so kills land in every window: before the claim, claimed but
not written, written but not marked bound. A kill comes 1-15 bindings into a run plus a random
fraction of one binding's cycle (so every planned kill lands, however fast the machine; while
evictions remain, the first such kill is aimed among them); about
one in five comes instead at a random time after start, before the worker says `ready`: during
start-up or inside the one-transaction submit.
"""

from __future__ import annotations

import json
import logging
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from optimizer.binder import BOUND, CONFLICT, EVICTED, FAILED, ISSUING, Outbox
from tests.binder.conftest import PgServer
from tests.binder.crash_worker import REFUSED, VICTIM_NODES

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
N_AGENTS = 200
PAUSE = 0.003  # seconds slept before and after each sink write
EVICTION_LINES = len(VICTIM_NODES) - 1  # one eviction is refused: no line


@dataclass
class CrashReport:
    kills: int
    kills_before_ready: int
    kills_with_issuing: int  # kills that left a binding claimed but not finished
    kills_with_unacked_write: int  # ... whose line was already in the file
    kills_in_eviction_phase: int  # kills that left evictions still to do
    kills_with_issuing_eviction: int  # ... one of them claimed but not finished
    runs: int
    bound: int
    requeued: int
    doubles: int
    lost: int
    evicted: int
    eviction_failed: int
    double_evictions: int


def _spawn(url: str, out: Path, plan_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.binder.crash_worker", url, str(out), plan_id, str(N_AGENTS),
         str(PAUSE)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_ready(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready) and proc.stdout.readline().strip() == b"ready"


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for_lines(path: Path, target: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while _count_lines(path) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)


def _lines(path: Path, strict: bool = False) -> list[dict[str, str]]:
    """The sink's records; between kills a cut-off last line is skipped (the next run cuts it),
    at the end every line must be whole."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if strict:
        assert not data or data.endswith(b"\n"), "a partial line was left in the sink's file"
    return [json.loads(x) for x in data.split(b"\n") if x.strip() and (strict or x.endswith(b"}"))]


def run_crash_test(url: str, out: Path, seed: int) -> CrashReport:
    rng = random.Random(seed)
    planned_kills = rng.randint(5, 10)
    plan_id = f"crash-{seed}"
    kills = before_ready = with_issuing = unacked = with_issuing_eviction = in_eviction_phase = runs = 0
    aimed = False
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the crash test did not finish in 120 s"
        runs += 1
        proc = _spawn(url, out, plan_id)
        if kills < planned_kills:
            early = rng.random() < 0.2
            if early:
                time.sleep(rng.uniform(0.0, 1.0))  # start-up or the submit transaction
            else:
                assert _wait_ready(proc, 60), proc.stderr.read().decode() if proc.stderr else ""
                # a point in the work, not in time, so every planned kill lands whatever the
                # machine's speed; then a random phase inside one binding's cycle
                # the first such kill, while evictions remain (they come first), aims at them
                have = _count_lines(out)
                aim = not aimed and have < EVICTION_LINES
                aimed = aimed or aim
                step = rng.randint(1, EVICTION_LINES - have) if aim else rng.randint(1, 15)
                _wait_for_lines(out, have + step, proc)
                time.sleep(rng.uniform(0.0, 0.012))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                before_ready += early
                with Outbox(url) as ob:
                    issuing = ob.bindings(state=ISSUING)
                    with_issuing_eviction += bool(ob.evictions(state=ISSUING))
                    in_eviction_phase += bool(ob.eviction_work(limit=1))
                written = {x["key"] for x in _lines(out)}
                with_issuing += bool(issuing)
                unacked += any(b.key in written for b in issuing)
                continue
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        break

    with Outbox(url) as ob:
        rows = ob.bindings(plan_id)
        requeued = Counter(r.agent for r in ob.requeued())
        counts = ob.counts(plan_id)
        evictions = ob.evictions(plan_id)
    lines = _lines(out, strict=True)
    written = Counter(x["agent"] for x in lines if "agent" in x)
    evicted_lines = Counter(x["evict"] for x in lines if "evict" in x)
    at = {x.get("agent") or x["evict"]: i for i, x in enumerate(lines)}  # line of each record
    planned = {b.agent for b in rows}
    assert len(planned) == N_AGENTS
    assert set(written) <= planned, "the sink holds an agent no plan placed"
    doubles = [a for a in planned if written[a] + requeued[a] > 1]
    lost = [a for a in planned if written[a] + requeued[a] == 0]
    for b in rows:  # the outbox agrees with the file and the queue
        if b.state == BOUND:
            assert written[b.agent] == 1 and requeued[b.agent] == 0, b
        else:
            assert b.state in (CONFLICT, FAILED) and written[b.agent] == 0 and requeued[b.agent] == 1, b
    assert len(evictions) == len(VICTIM_NODES)
    assert set(evicted_lines) <= {e.pod for e in evictions}, "the sink evicted a pod no plan evicts"
    for e in evictions:  # issued exactly once, before the binding it makes room for, or failed
        if e.state == EVICTED:
            assert evicted_lines[e.pod] == 1, e
            assert e.agent is not None and (written[e.agent] == 0 or at[e.pod] < at[e.agent]), e
        else:
            assert e.state == FAILED and e.pod == REFUSED and evicted_lines[e.pod] == 0, e
            assert written[e.agent or ""] == 0 and requeued[e.agent or ""] == 1, e
    return CrashReport(kills, before_ready, with_issuing, unacked, in_eviction_phase,
                       with_issuing_eviction, runs,
                       counts[BOUND], sum(requeued.values()), len(doubles), len(lost),
                       sum(e.state == EVICTED for e in evictions),
                       sum(e.state == FAILED for e in evictions),
                       sum(n > 1 for n in evicted_lines.values()))


def _check(report: CrashReport, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        sys.stderr.write(f"\n{report}\n")
    assert report.doubles == 0 and report.lost == 0
    assert 5 <= report.kills <= 10
    assert report.bound + report.requeued == N_AGENTS
    # the five intruded nodes: one agent each no longer fits; one agent whose eviction was refused
    assert report.requeued == 6
    assert (report.evicted, report.eviction_failed, report.double_evictions) == (9, 1, 0)


def _until_covered(url_for: Callable[[int], str], tmp_path: Path, seed: int,
                   capsys: pytest.CaptureFixture[str]) -> None:
    """Every run must lose and double nothing. The kills land at random, so a run none of whose
    kills hit a binding in flight (or the eviction phase) proves less: run again on a fresh
    database with the next seed, at most three times (under load one run in a few misses)."""
    for attempt in range(3):
        report = run_crash_test(url_for(attempt), tmp_path / f"bindings-{attempt}.jsonl", seed + attempt)
        _check(report, capsys)
        if report.kills_with_issuing >= 1 and report.kills_in_eviction_phase >= 1:
            return
    pytest.fail("in 3 runs no kill landed inside a binding and in the eviction phase: widen PAUSE")


def test_kill_9_at_random_points_loses_and_doubles_nothing_on_sqlite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _until_covered(lambda i: f"sqlite:///{tmp_path / f'outbox-{i}.db'}", tmp_path, 7, capsys)


def test_kill_9_at_random_points_loses_and_doubles_nothing_on_postgresql(
        pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _until_covered(lambda i: pg_server.create_database(), tmp_path, 11, capsys)
