"""One path from loaded input and plan options to a verified plan, shared by `agentplace plan` and
the HTTP service, so both read the same options the same way and return the same plan schema.

The CLI spells options as flags (`--weight cost=2`), the service as JSON (`"weights": {"cost": 2}`);
both end in a `PlanOptions`, and `plan_window` turns it into a `SolveConfig` and calls `optimize`.
Errors in options raise `OptionError` (a ConfigError: the CLI exits 2, the service answers 422)
with the same message either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from models import Inventory
from optimizer import Plan, SolveConfig, optimize
from optimizer.config import ConfigError
from optimizer.snapshot import Snapshot

DEFAULT_BALANCE = {"cpu": 1, "memory": 1}


class OptionError(ConfigError):
    """An option that cannot be used, named with the reason (`--weight 'x': expected TERM=NUMBER`)."""


@dataclass(frozen=True)
class PlanOptions:
    """Everything a caller may choose about one plan; defaults are the CLI's."""

    time_limit: float = 10.0
    workers: int = 2
    seed: int = 0
    strategy: Literal["LeastAllocated", "MostAllocated"] = "LeastAllocated"
    profile: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    profiles_file: Path | None = None
    balance: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BALANCE))
    term_gap: float = 0.02
    term_bounds: bool = False
    preemption: bool = True
    pdb: Literal["hard", "best-effort"] = "hard"
    log_search: bool = False

    def capped(self, max_time_limit: float, max_workers: int) -> tuple[PlanOptions, list[str]]:
        """These options within a server's caps, and a warning per option that was lowered."""
        notes = []
        out = self
        if self.time_limit > max_time_limit:
            notes.append(f"time_limit {self.time_limit:g}s lowered to the server's cap {max_time_limit:g}s")
            out = replace(out, time_limit=max_time_limit)
        if self.workers > max_workers:
            notes.append(f"workers {self.workers} lowered to the server's cap {max_workers}")
            out = replace(out, workers=max_workers)
        return out, notes

    def solve_config(self) -> SolveConfig:
        return SolveConfig(time_limit=self.time_limit, workers=self.workers, seed=self.seed,
                           strategy=self.strategy, preemption=self.preemption, pdb_mode=self.pdb,
                           log_search=self.log_search, profile=self.profile, weights=dict(self.weights),
                           profiles_file=self.profiles_file, term_gap=self.term_gap,
                           term_bounds=self.term_bounds, balance_resources=dict(self.balance))


def parse_weights(items: Iterable[str]) -> dict[str, float]:
    """`["cost=2", "pack=0.5"]` -> `{"cost": 2.0, "pack": 0.5}` (the CLI's `--weight`)."""
    weights: dict[str, float] = {}
    for item in items:
        term, sep, value = item.partition("=")
        try:
            number = float(value) if sep else float("nan")
        except ValueError:
            number = float("nan")
        if number != number:
            raise OptionError(f"--weight {item!r}: expected TERM=NUMBER")
        weights[term] = number
    return weights


def parse_balance(items: Iterable[str] | None) -> dict[str, int]:
    """`["cpu=1", "nvidia.com/gpu=3"]` -> integer weights (the CLI's `--balance`); none: cpu and memory."""
    items = list(items or [])
    if not items:
        return dict(DEFAULT_BALANCE)
    out = {}
    for item in items:
        res, sep, value = item.partition("=")
        if not sep or not res or not value.isdigit():
            raise OptionError(f"--balance {item!r}: expected RESOURCE=INTEGER")
        out[res] = int(value)
    return out


def plan_window(source: Inventory | Snapshot, options: PlanOptions) -> Plan:
    """The verified plan for this window. Raises ConfigError (bad profile or weights) and
    PlanInvalidError (a plan failed the verifier: a bug, never returned)."""
    return optimize(source, options.solve_config())
