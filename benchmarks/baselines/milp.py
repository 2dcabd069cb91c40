"""The same window as a textbook MILP in PuLP, solved by the CBC that ships with PuLP.

Assignment model over the offered bins b = 0..K-1:
    x[i, b] in {0, 1}   item i goes to bin b          y[b] in {0, 1}   bin b is used
    min  sum_b y[b]
    s.t. sum_b x[i, b] = 1                               every item placed once
         sum_i w[i, k] x[i, b] <= C[k] y[b]              capacity of every bin in every dimension
         y[b] >= y[b + 1]                                 identical bins: use them in order
CBC runs with the same time limit and thread count as CP-SAT, `msg=False`, optionally warm-started
from a heuristic packing (recorded in the results). The lower bound is read from CBC's log.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pulp


@dataclass
class MilpResult:
    status: str  # OPTIMAL (proven) | FEASIBLE | NO_SOLUTION | INFEASIBLE | ...
    bin_of: np.ndarray  # int64[item]; -1 when unplaced (no solution)
    bins: int | None
    lower_bound: int | None
    build_seconds: float
    solve_seconds: float
    info: dict[str, object] = field(default_factory=dict)

    @property
    def proven(self) -> bool:
        return self.status == "OPTIMAL"


def _cbc_lower_bound(log: str, proven: bool, bins: int | None) -> int | None:
    if proven:
        return bins
    m = re.search(r"^Lower bound:\s*(-?[\d.eE+]+)", log, re.M)
    if m is None:
        return None
    return math.ceil(float(m.group(1)) - 1e-6)


def solve_milp(capacity: np.ndarray, sizes: np.ndarray, bins: int, time_limit: float,
               threads: int = 1, warm_start: np.ndarray | None = None) -> MilpResult:
    """Solve with `bins` offered; `warm_start` is an item -> bin array using bins < `bins`."""
    t0 = time.perf_counter()
    n, d = sizes.shape
    prob = pulp.LpProblem("vbp", pulp.LpMinimize)

    def binary(name: str) -> pulp.LpVariable:
        # PuLP >= 3.3 attaches variables to the problem; older versions construct them directly
        if hasattr(prob, "add_variable"):
            return prob.add_variable(name, 0, 1, pulp.LpBinary)
        return pulp.LpVariable(name, 0, 1, pulp.LpBinary)

    x = {(i, b): binary(f"x_{i}_{b}") for i in range(n) for b in range(bins)}
    y = [binary(f"y_{b}") for b in range(bins)]
    prob += pulp.lpSum(y)
    for i in range(n):
        prob += pulp.lpSum(x[i, b] for b in range(bins)) == 1, f"assign_{i}"
    for b in range(bins):
        for k in range(d):
            terms = [(x[i, b], int(sizes[i, k])) for i in range(n) if sizes[i, k]]
            if terms:
                prob += pulp.LpAffineExpression(terms) <= int(capacity[k]) * y[b], f"cap_{b}_{k}"
        if b + 1 < bins:
            prob += y[b] >= y[b + 1], f"order_{b}"
    if warm_start is not None:
        used = sorted(set(warm_start.tolist()))
        relabel = {old: new for new, old in enumerate(used)}  # first bins in use, as ordered
        for (i, b), v in x.items():
            v.setInitialValue(1 if relabel[int(warm_start[i])] == b else 0)
        for b, v in enumerate(y):
            v.setInitialValue(1 if b < len(used) else 0)
    build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="agentplace-cbc-") as tmp:
        log_path = Path(tmp) / "cbc.log"
        with warnings.catch_warnings():
            # PuLP 3.3 announces that PULP_CBC_CMD (the CBC bundled in the wheel) goes in 4.0;
            # pyproject pins pulp < 4
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, threads=threads,
                                       warmStart=warm_start is not None, logPath=str(log_path))
        t1 = time.perf_counter()
        prob.solve(solver)
        solve = time.perf_counter() - t1
        log = log_path.read_text() if log_path.is_file() else ""
    sol = prob.sol_status
    bin_of = np.full(n, -1, dtype=np.int64)
    if sol in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        for (i, b), v in x.items():
            if (v.value() or 0) > 0.5:
                bin_of[i] = b
    status = {pulp.LpSolutionOptimal: "OPTIMAL", pulp.LpSolutionIntegerFeasible: "FEASIBLE",
              pulp.LpSolutionInfeasible: "INFEASIBLE",
              pulp.LpSolutionNoSolutionFound: "NO_SOLUTION"}.get(sol, f"PULP_{sol}")
    complete = bool((bin_of >= 0).all())
    if status in ("OPTIMAL", "FEASIBLE") and not complete:
        status = "INCOMPLETE"
    used = int(np.unique(bin_of[bin_of >= 0]).size) if complete else None
    lower = _cbc_lower_bound(log, status == "OPTIMAL", used)
    return MilpResult(status, bin_of, used, lower, round(build, 6), round(solve, 6),
                      {"variables": len(prob.variables()), "constraints": prob.numConstraints(),
                       "pulp_status": pulp.LpStatus[prob.status],
                       "warm_start": warm_start is not None})
