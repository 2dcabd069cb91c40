"""The benchmark's own checker and the competition's cost, on the raw data (never the kube mapping).

Checker: every machine, at each of the 98 time points, holds its instances' cpu and mem series;
disk, P, M, PM as scalars; every interference rule (a, b, k): a machine hosting any app a hosts
at most k app-b instances, k + 1 when a == b (as the official evaluator reads self-rules).
Cost (the official evaluator's objective, PROVENANCE.md): over used machines,
    (1/98) * sum_t  1 + 10 * (exp(max(0, u_t - 0.5)) - 1),   u_t = cpu_t / cpu capacity.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from benchmarks.tianchi.data import Tianchi

EPS = 1e-6  # the series have 6 decimals; sums compared with this slack


@dataclass
class Evaluation:
    placed: int
    unplaced: int
    machines_used: int
    cost: float  # official cost of the placed instances
    capacity_violations: int  # (machine, resource) pairs over capacity at some point
    rule_violations: int  # (machine, rule) pairs broken
    max_cpu_util: float  # peak over machines and time
    examples: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return self.capacity_violations + self.rule_violations


def machine_loads(ds: Tianchi, inst: np.ndarray, machine_of: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(used machines, cpu[used, t], mem[used, t], scalars[used, 4]) of the placed instances."""
    placed = machine_of >= 0
    m = machine_of[placed]
    apps = ds.inst_app[inst[placed]]
    used, pos = np.unique(m, return_inverse=True)
    cpu = np.zeros((used.size, ds.app_cpu.shape[1]))
    mem = np.zeros_like(cpu)
    sc = np.zeros((used.size, 4))
    np.add.at(cpu, pos, ds.app_cpu[apps])
    np.add.at(mem, pos, ds.app_mem[apps])
    np.add.at(sc, pos, ds.app_scalar[apps])
    return used, cpu, mem, sc


def official_cost(cpu: np.ndarray, cap_cpu: np.ndarray) -> float:
    """cpu[used, t] against cap_cpu[used]."""
    if cpu.size == 0:
        return 0.0
    u = cpu / cap_cpu[:, None]
    return float((1 + 10 * (np.exp(np.maximum(0.0, u - 0.5)) - 1)).mean(axis=1).sum())


def rule_violations(ds: Tianchi, inst: np.ndarray, machine_of: np.ndarray, rules: np.ndarray,
                    limit: int = 5) -> tuple[int, list[str]]:
    placed = machine_of >= 0
    count: dict[tuple[int, int], int] = defaultdict(int)  # (machine, app) -> instances
    hosts: dict[int, set[int]] = defaultdict(set)  # app -> machines
    for m, a in zip(machine_of[placed].tolist(), ds.inst_app[inst[placed]].tolist(), strict=True):
        count[(m, a)] += 1
        hosts[a].add(m)
    bad, examples = 0, []
    for a, b, k in rules.tolist():
        k_eff = k + 1 if a == b else k
        for m in hosts.get(a, ()):
            n_b = count.get((m, b), 0)
            if n_b > k_eff:
                bad += 1
                if len(examples) < limit:
                    examples.append(f"machine {ds.machine_ids[m]}: {n_b} x {ds.app_ids[b]} next to "
                                    f"{ds.app_ids[a]} (at most {k_eff})")
    return bad, examples


def evaluate(ds: Tianchi, inst: np.ndarray, machine_of: np.ndarray, rules: np.ndarray) -> Evaluation:
    """inst: int64[i] dataset instance indices; machine_of: int64[i] dataset machine or -1."""
    used, cpu, mem, sc = machine_loads(ds, inst, machine_of)
    cap = ds.machine_cap[used]
    over = [(cpu > cap[:, [0]] + EPS).any(axis=1), (mem > cap[:, [1]] + EPS).any(axis=1),
            *((sc[:, k] > cap[:, 2 + k] + EPS) for k in range(4))]
    cap_bad = int(sum(int(o.sum()) for o in over))
    examples = [f"machine {ds.machine_ids[used[j]]}: over capacity in {name}"
                for name, o in zip(("cpu", "mem", "disk", "P", "M", "PM"), over, strict=True)
                for j in np.nonzero(o)[0][:2].tolist()][:5]
    rules_bad, rule_examples = rule_violations(ds, inst, machine_of, rules)
    placed = int((machine_of >= 0).sum())
    return Evaluation(
        placed=placed, unplaced=int(machine_of.size - placed), machines_used=int(used.size),
        cost=round(official_cost(cpu, cap[:, 0]), 4), capacity_violations=cap_bad,
        rule_violations=rules_bad,
        max_cpu_util=round(float((cpu / cap[:, [0]]).max()) if used.size else 0.0, 4),
        examples=examples + rule_examples)
