"""Shared by every benchmark suite: where the data is, what machine ran, verifying any plan."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from optimizer.snapshot import Snapshot
from optimizer.verify import verify

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "AGENTPLACE_DATA"


def default_data_dir() -> Path:
    """`../shared/data` relative to the repository root."""
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def resolve_data_dir(arg: str | Path | None) -> Path:
    """--data wins, then $AGENTPLACE_DATA, then the default."""
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def code_version() -> dict[str, Any]:
    """The commit the run measured, and which source files differed from it (uncommitted work in
    optimizer/ or models/ changes what is measured)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                                 text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.rstrip("\n") if out.returncode == 0 else None  # keep porcelain's columns

    status = git("status", "--porcelain", "--", "optimizer", "models", "benchmarks")
    commit = git("rev-parse", "HEAD")
    return {"commit": commit.strip() if commit else None,
            "modified": [line[3:] for line in status.splitlines()] if status else []}


def machine_info() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "versions": {p: _version(p) for p in ("ortools", "pulp", "numpy", "pydantic", "rich",
                                               "matplotlib", "agentplace")},
    }


@dataclass(frozen=True)
class PlanCheck:
    """One plan through the project verifier."""

    method: str
    violations: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.violations


def check_plan(method: str, placements: Sequence[tuple[str, str]], snap: Snapshot,
               require_complete: bool, evictions: Sequence[tuple[str, str, str]] = ()
               ) -> PlanCheck:
    """optimizer.verify.verify on the Snapshot, plus (when required) every agent placed.
    `evictions`: (pod, node, agent) the plan makes first (PDBs hard)."""
    placed = {a for a, _ in placements}
    unplaced = [p.ref for p in snap.pending if p.ref not in placed]
    found = [str(v) for v in verify(placements, snap, unplaced, evictions=evictions)]
    if require_complete and unplaced:
        found.append(f"{len(unplaced)} agent(s) left unplaced, e.g. {unplaced[0]}")
    return PlanCheck(method, tuple(found))


@dataclass
class CheckedRun:
    """One instance's figures and every plan's verifier check (a suite fails on any violation)."""

    record: dict[str, Any]
    checks: list[PlanCheck] = field(default_factory=list)

    @property
    def violations(self) -> list[str]:
        return [f"{self.record['key']}: {c.method}: {v}" for c in self.checks for v in c.violations]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(fn(), seconds it took)."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t
