"""Solve options: every solver parameter is named here, none hidden in code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Strategy = Literal["LeastAllocated", "MostAllocated"]


@dataclass(frozen=True)
class SolveConfig:
    time_limit: float = 10.0
    workers: int = 2
    seed: int = 0
    # secondary objective, after placed priority: kube's NodeResourcesFit scoring strategies
    strategy: Strategy = "LeastAllocated"
    hint: bool = True
    # order interchangeable empty nodes by load (optimizer/model.py break_node_symmetry). Off by
    # default: on 53 VBP instances (n <= 60, 1 s, 2 workers) it raised proven optima 10 -> 14
    # but left 83 bins above the references instead of 58, as it hinders CP-SAT's primal search
    symmetry_breaking: bool = False
    preemption: bool = True  # accepted now, takes effect once preemption exists
    pdb_mode: Literal["hard", "best-effort"] = "hard"
    log_search: bool = False
    extra_parameters: dict[str, object] = field(default_factory=dict)
