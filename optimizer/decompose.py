"""POP-style decomposition: k independent sub-problems, merged, then one repair pass.

After Narayanan et al., "Solving Large-Scale Granular Resource Allocation Problems Efficiently
with POP" (SOSP 2021): split the nodes and the agents into k parts, solve each part on its own
with `optimize()` (each part's plan is verified against its part), merge, and offer the agents
left out to the whole cluster once. POP relies on granularity (each agent is small next to the
cluster); what couples agents across parts is handled as follows.

What couples, and how the split respects it:
  - Topology domains (spread, pod (anti-)affinity): the nodes are split proportionally inside
    every domain of every topology key a pod uses (and inside every node shape): nodes sorted by
    (domain values, allocatable, taints, name) are dealt round-robin, so each part holds about
    1/k of every zone and of every node shape. Keeping a zone's nodes together instead would
    leave a part without the other zones: a zone spread inside it could only fill its own zones
    and the merged skew is then unbounded. With proportional slices every part sees every
    domain, agents of one shape are dealt round-robin too, so each part balances its share of
    the same picture. Part skews add up, though (8 parts each placing 42/42/41 give 336/336/328,
    a skew of 8; measured on the mixed shape at 5,000 nodes, k = 8: all 1,000 spread agents
    failed the merge check), so a zone-spread group is dealt in blocks of one agent per domain
    (`spread_block`): with maxSkew 1 and domains equally filled, a part holding a multiple of D
    agents can only place them evenly, and the merged skew stays within 1. Unequal running
    counts, maxSkew > 1 or a part short of room can still tilt it. Required (anti-)affinity on a
    zone key can also meet a matching pod of another
    part in the same zone. Both are caught by the merge check: the verifier names the agents
    that break a rule on the whole snapshot, they are taken out of the merged plan (with their
    gang) and go to the repair pass, which sees the whole cluster, so it places them exactly.
    Host-local rules (resource fit, taints, hostname pod (anti-)affinity) need nothing: a node
    lives in exactly one part. A spread over hostnames is not host-local (its skew is measured
    against the least-loaded host of the whole cluster, which a part does not see): the merge
    check and the repair pass handle it like a zone spread (tested).
  - Namespace quotas and token budgets: what is left of each cap (hard - used; tokens and
    dollars - spent) is apportioned across the parts in proportion to each part's demand on it
    (largest remainders in the encoding's units: millicores for cpu, whole units otherwise;
    tokens; micro-dollars; so the shares sum exactly to what
    is left): the parts together can never exceed a cap, and a namespace can still spread over
    every part. Each part's quota carries the whole snapshot's usage in status.used (its own
    running pods are only a slice of the namespace's).
  - PodDisruptionBudgets: disruptionsAllowed is apportioned the same way, by members per part.
  - Gangs (PodGroups / group labels): all pending members of a gang go to one part.
  - Repair: the agents no part placed (and those the merge check took out) are offered to the
    whole cluster in one more `optimize()`: all nodes, the parts' placements as running pods,
    quotas' status.used and budgets' spend raised by what the parts committed, preemption off
    (evicting an agent just placed makes no sense; the parts already preempted on their nodes).
The merged plan passes `optimizer.verify.verify` on the full snapshot or is not returned: on a
violation, the unpartitioned path runs instead, with a warning. The plan claims no bound (a
part's bound is not the whole problem's): status FEASIBLE at best; its objective is left None
(the parts' objectives are over different node sets; benchmarks score plans themselves).

Parts run in parallel: a local process pool (spawn) by default, Ray with "ray" / "ray:ADDRESS"
(as optimizer/sweep.py uses it), or "serial"; a process pool that breaks (a worker killed, a
calling script without a `__main__` guard) runs the parts serially instead. Each part gets the
same SolveConfig whatever the pool (cfg.workers, a slice of the time limit per round of parts),
so a fixed seed gives the same plan.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from multiprocessing import get_context
from typing import Any

import numpy as np

from models import Pod
from models.quantity import MILLI_QUOTA_RESOURCES, Quantity
from optimizer.config import ConfigError, SolveConfig
from optimizer.plan import Placement, Plan
from optimizer.rules import quotas as rq
from optimizer.rules import token_budget as tb
from optimizer.rules.base import Violation
from optimizer.rules.gangs import group_label
from optimizer.rules.token_budget import budget_report
from optimizer.snapshot import Snapshot
from optimizer.verify import _pdb_covers, verify

log = logging.getLogger("agentplace.decompose")
HOSTNAME = "kubernetes.io/hostname"
# share of the time limit the parts get; the repair pass has the rest (at least REPAIR_MIN s)
PART_SHARE, REPAIR_MIN = 0.75, 1.0
MAX_BLOCK = 64  # spread groups are dealt in blocks of at most this many agents
MERGE_ROUNDS = 3  # merge checks: take out the agents the verifier names, check again


@dataclass(frozen=True)
class Partition:
    """Indices into snap.nodes / snap.pending per part (each ascending)."""

    nodes: tuple[np.ndarray, ...]
    agents: tuple[np.ndarray, ...]


# --- the split ----------------------------------------------------------------------------------

def topology_keys(snap: Snapshot) -> list[str]:
    """Every topology key a pending or running pod's spread or pod (anti-)affinity uses."""
    keys: set[str] = set()
    for pod in (*snap.pending, *snap.running):
        spec = pod.spec
        keys.update(c.topology_key for c in spec.topology_spread_constraints)
        aff = spec.affinity
        for pa in (aff.pod_affinity, aff.pod_anti_affinity) if aff else ():
            if pa is None:
                continue
            keys.update(t.topology_key for t in pa.required_during_scheduling_ignored_during_execution)
            keys.update(w.pod_affinity_term.topology_key
                        for w in pa.preferred_during_scheduling_ignored_during_execution)
    return sorted(keys)


def partition(snap: Snapshot, k: int) -> Partition:
    """Nodes dealt round-robin in (domains, shape, name) order: every part gets about 1/k of
    every topology domain and node shape. Agents: gangs whole, zone-spread groups in blocks of
    one agent per domain (spread_block), everything else one by one; units dealt in queue
    order to the part with the fewest agents so far (so each agent shape splits evenly)."""
    keys = [key for key in topology_keys(snap) if key != HOSTNAME]

    def node_key(i: int) -> tuple[Any, ...]:
        n = snap.nodes[i]
        alloc = tuple(sorted((r, q.value) for r, q in n.status.allocatable.items()))
        taints = tuple(sorted((t.key, t.value or "", t.effect) for t in n.spec.taints))
        return (tuple(n.labels.get(key, "") for key in keys), alloc, taints, n.name)

    order = sorted(range(len(snap.nodes)), key=node_key)
    node_part = np.empty(len(order), dtype=np.int64)
    node_part[np.array(order, dtype=np.int64)] = np.arange(len(order)) % k
    domains = {key: len({n.labels[key] for n in snap.nodes if key in n.labels}) for key in keys}
    units: dict[Any, list[int]] = {}
    seen: dict[tuple[str, ...], int] = {}
    for i, pod in enumerate(snap.pending):
        g = group_label(pod)
        sig = spread_signature(pod)
        if g:
            unit: Any = (pod.namespace, g)
        elif sig:  # blocks of one agent per domain (see spread_block)
            n = seen[sig] = seen.get(sig, -1) + 1
            unit = (sig, n // spread_block(pod, domains))
        else:
            unit = i
        units.setdefault(unit, []).append(i)
    load = [0] * k
    agent_part = np.empty(len(snap.pending), dtype=np.int64)
    for members in units.values():  # dict order: the first member's queue position
        p = min(range(k), key=lambda q: (load[q], q))
        agent_part[members] = p
        load[p] += len(members)
    return Partition(tuple(np.nonzero(node_part == p)[0] for p in range(k)),
                     tuple(np.nonzero(agent_part == p)[0] for p in range(k)))


def spread_signature(pod: Pod) -> tuple[str, ...]:
    """The pod's hard spread constraints over zone-like keys (not hostname), with its namespace:
    agents sharing one are one spread group."""
    hard = [c.model_dump_json() for c in pod.spec.topology_spread_constraints
            if c.when_unsatisfiable == "DoNotSchedule" and c.topology_key != HOSTNAME]
    return (pod.namespace, *sorted(hard)) if hard else ()


def spread_block(pod: Pod, domains: Mapping[str, int]) -> int:
    """How many agents of a spread group are dealt together: the number of domains (the lcm
    over its keys, at most MAX_BLOCK). A part given a multiple of D agents of a maxSkew-1 group
    over D equally filled domains can only place them evenly (D agents: one per domain; any
    other split has a skew of 2), so every part's placements add up to an even split and the
    merged skew stays within 1; only the last, partial block can tilt it, by at most 1."""
    size = 1
    for c in pod.spec.topology_spread_constraints:
        if c.when_unsatisfiable == "DoNotSchedule" and c.topology_key != HOSTNAME:
            size = math.lcm(size, max(1, domains.get(c.topology_key, 1)))
    return size if size <= MAX_BLOCK else 1


def apportion(total: int, weights: Sequence[float | Fraction]) -> list[int]:
    """`total` split in proportion to `weights` (equal when all are 0), largest remainders:
    the shares are >= 0 and sum exactly to `total`."""
    k = len(weights)
    if total <= 0 or k == 0:
        return [0] * k
    w = [Fraction(x) for x in weights]
    s = sum(w)
    if s <= 0:
        w, s = [Fraction(1)] * k, Fraction(k)
    exact = [total * x / s for x in w]
    out = [math.floor(e) for e in exact]
    for i in sorted(range(k), key=lambda i: (-(exact[i] - out[i]), i))[: total - sum(out)]:
        out[i] += 1
    return out


def _quantity(value: Fraction) -> Quantity:
    nanos = value * 10**9
    text = f"{int(nanos)}n" if nanos.denominator == 1 else str(float(value))
    return Quantity(value, text)


def _split_quotas(snap: Snapshot, parts: Sequence[Sequence[Pod]]) -> list[tuple[Any, ...]]:
    """Per part, the quotas with status.used = hard - that part's share of what is left."""
    out: list[list[Any]] = [[] for _ in parts]
    for q in snap.quotas:
        used = rq.quota_used(q, snap)
        demand = [[rq.charges(p) for p in pods if not rq.is_admitted(p) and rq.quota_matches(q, p, snap)]
                  for pods in parts]
        per_part: list[dict[str, Quantity]] = [dict(q.status.used) for _ in parts]
        for r in rq.tracked(q):
            hard = q.spec.hard[r].value
            left = hard - used[r]
            unit = Fraction(1, 1000) if r in MILLI_QUOTA_RESOURCES else Fraction(1)
            if left <= 0:
                shares = [0] * len(parts)
            else:  # in the encoding's units (millicores for cpu, else whole units): a share
                # of 1.5 pods would be read as 1 and the shares would add up to less than is left
                weights = [sum((c.get(r, Fraction(0)) for c in d), Fraction(0)) for d in demand]
                shares = apportion(math.floor(left / unit), weights)
            for p, share in enumerate(shares):
                per_part[p][r] = _quantity(hard - share * unit if left > 0 else used[r])
        for p in range(len(parts)):
            out[p].append(q.model_copy(update={"status": q.status.model_copy(update={"used": per_part[p]})}))
    return [tuple(x) for x in out]


def _split_budgets(snap: Snapshot, parts: Sequence[Sequence[Pod]]) -> list[tuple[Any, ...]]:
    """Per part, the token budgets with spend raised so that only its share is left."""
    out: list[list[Any]] = [[] for _ in parts]
    for b in snap.token_budgets:
        demand = [sum(tb.period_tokens(p, b, snap.pricing) for p in pods if tb.covers(b, p))
                  for pods in parts]
        tokens = [b.status.spent_tokens] * len(parts)
        if b.spec.tokens is not None:
            cap = int(b.spec.tokens.value)
            if cap > b.status.spent_tokens:
                tokens = [cap - s for s in apportion(cap - b.status.spent_tokens, demand)]
        dollars = [b.status.spent_dollars] * len(parts)
        if b.spec.dollars is not None and b.spec.dollars > b.status.spent_dollars:
            micro = int(((b.spec.dollars - b.status.spent_dollars) * 10**6).to_integral_value(ROUND_DOWN))
            dollars = [b.spec.dollars - Decimal(s) / 10**6 for s in apportion(micro, demand)]
        for p in range(len(parts)):
            status = b.status.model_copy(update={"spent_tokens": tokens[p], "spent_dollars": dollars[p]})
            out[p].append(b.model_copy(update={"status": status}))
    return [tuple(x) for x in out]


def _split_pdbs(snap: Snapshot, node_sets: Sequence[set[str]]) -> list[tuple[Any, ...]]:
    out: list[list[Any]] = [[] for _ in node_sets]
    for d in snap.pdbs:
        members = [sum(1 for pod in snap.running if pod.spec.node_name in nodes and _pdb_covers(d, pod))
                   for nodes in node_sets]
        shares = apportion(max(0, d.status.disruptions_allowed), members)
        for p, share in enumerate(shares):
            out[p].append(d.model_copy(update={"status": d.status.model_copy(
                update={"disruptions_allowed": share})}))
    return [tuple(x) for x in out]


def _with(snap: Snapshot, node_idx: Sequence[int], running: Sequence[Pod], pending_idx: Sequence[int],
          **fields: Any) -> Snapshot:
    """A snapshot over some of the nodes and agents, its lookups rebuilt."""
    nodes = tuple(snap.nodes[i] for i in node_idx)
    node_pos = {n.name: i for i, n in enumerate(nodes)}
    on: list[list[int]] = [[] for _ in nodes]
    for i, pod in enumerate(running):
        on[node_pos[pod.spec.node_name or ""]].append(i)
    pending = tuple(snap.pending[i] for i in pending_idx)
    return replace(snap, nodes=nodes, running=tuple(running), pending=pending,
                   priority=tuple(snap.priority[i] for i in pending_idx), node_pos=node_pos,
                   agent_pos={p.ref: i for i, p in enumerate(pending)},
                   running_on=tuple(tuple(x) for x in on), **fields)


def part_snapshots(snap: Snapshot, part: Partition) -> list[Snapshot]:
    """One snapshot per part: its nodes with their running pods, its agents, the gangs among
    them, and its share of every quota, budget and disruption allowance."""
    pods = [[snap.pending[i] for i in a] for a in part.agents]
    node_sets = [{snap.nodes[i].name for i in n} for n in part.nodes]
    quotas, budgets = _split_quotas(snap, pods), _split_budgets(snap, pods)
    pdbs = _split_pdbs(snap, node_sets)
    out = []
    for p, (nodes, agents) in enumerate(zip(part.nodes, part.agents, strict=True)):
        run = [i for n in nodes for i in snap.running_on[n]]
        groups = {(pod.namespace, group_label(pod)) for pod in pods[p]}
        out.append(_with(snap, nodes, [snap.running[i] for i in sorted(run)], agents,
                         quotas=quotas[p], token_budgets=budgets[p], pdbs=pdbs[p], warnings=(),
                         pod_groups=tuple(g for g in snap.pod_groups if (g.namespace, g.name) in groups)))
    return out


def repair_snapshot(snap: Snapshot, placements: Sequence[tuple[str, str]], evicted: set[str],
                    left: Sequence[int]) -> Snapshot:
    """The whole cluster after the merged plan: evicted pods gone, placed agents running on
    their nodes (quota usage and budget spend raised by what they commit), `left` pending."""
    placed = dict(placements)
    bound = [snap.pending[snap.agent_pos[a]] for a, _ in placements]
    running = [p for p in snap.running if p.ref not in evicted] + [
        p.model_copy(update={"spec": p.spec.model_copy(update={"node_name": placed[p.ref]}),
                             "status": p.status.model_copy(update={"phase": "Running"})}) for p in bound]
    after = rq.usage_after(snap, list(placed))
    quotas = tuple(q.model_copy(update={"status": q.status.model_copy(update={"used": {
        **q.status.used, **{r: _quantity(v) for r, v in after[q.ref].items()}}})}) for q in snap.quotas)
    budgets = []
    node_of = {n.name: n for n in snap.nodes}
    for b in snap.token_budgets:
        covered = [p for p in bound if tb.covers(b, p)]
        tokens = sum(tb.period_tokens(p, b, snap.pricing) for p in covered)
        dollars = sum((tb.placement_dollars(p, node_of[placed[p.ref]], snap.pricing) for p in covered),
                      Decimal(0)) if snap.pricing is not None else Decimal(0)
        budgets.append(b.model_copy(update={"status": b.status.model_copy(update={
            "spent_tokens": b.status.spent_tokens + tokens,
            "spent_dollars": b.status.spent_dollars + dollars})}))
    return _with(snap, range(len(snap.nodes)), running, left, quotas=quotas,
                 token_budgets=tuple(budgets), warnings=())


# --- running the parts --------------------------------------------------------------------------

def solve_part(snap: Snapshot, cfg: SolveConfig, warm: Mapping[str, str] | None) -> tuple[Plan, float]:
    """One part, on its own: optimize() verifies its plan against the part's snapshot."""
    from optimizer.solve import optimize  # late: solve imports this module

    t = time.perf_counter()
    plan = optimize(snap, cfg, warm)
    return plan, time.perf_counter() - t


def _run_parts(snaps: Sequence[Snapshot], cfg: SolveConfig, warms: Sequence[dict[str, str] | None],
               pool: str, processes: int) -> tuple[list[tuple[Plan, float]], str]:
    kind, _, address = pool.partition(":")
    if kind == "serial" or len(snaps) == 1:
        return [solve_part(s, cfg, w) for s, w in zip(snaps, warms, strict=True)], "serial"
    if kind == "process":
        # spawn, not fork: the driver may already run CP-SAT's threads
        try:
            with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as ex:
                futures = [ex.submit(solve_part, s, cfg, w) for s, w in zip(snaps, warms, strict=True)]
                return [f.result() for f in futures], f"process pool ({processes} processes)"
        except BrokenProcessPool as exc:  # a worker died (memory, or a script without a main guard)
            log.warning("process pool failed (%s): parts run serially", exc)
            return ([solve_part(s, cfg, w) for s, w in zip(snaps, warms, strict=True)],
                    f"serial (the process pool failed: {exc})")
    if kind == "ray":
        return _run_ray(snaps, cfg, warms, address or None)
    raise ConfigError(f"partition_pool {pool!r}: must be process, serial, ray or ray:ADDRESS")


def _run_ray(snaps: Sequence[Snapshot], cfg: SolveConfig, warms: Sequence[dict[str, str] | None],
             address: str | None) -> tuple[list[tuple[Plan, float]], str]:
    try:
        import ray
    except ImportError:
        raise ConfigError("partition_pool ray: Ray is not installed "
                          "(pip install 'agentplace[ray]')") from None
    started = not ray.is_initialized()
    if started:  # as optimizer/sweep.py: "local" starts a fresh runtime, else join the address
        try:
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"partition_pool ray:{address or 'local'}: cannot start or join a Ray "
                              f"runtime: {exc}") from None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        task = ray.remote(num_cpus=min(cfg.workers, max(1, cpus)))(solve_part)
        refs = [task.remote(s, cfg, w) for s, w in zip(snaps, warms, strict=True)]
        return list(ray.get(refs)), f"ray ({address or 'local'}, {cpus} CPUs)"
    finally:
        if started:
            ray.shutdown()


# --- merge, check, repair -----------------------------------------------------------------------

def _blamed(violations: Sequence[Violation], placed: Mapping[str, str]) -> set[str] | None:
    """The placed agents the verifier names; None when a violation names none (an eviction,
    a PDB): taking agents out cannot fix that."""
    out: set[str] = set()
    for v in violations:
        names = {a for a in v.agent.split(",") if a in placed}
        if not names:
            return None
        out |= names
    return out


def _gang_mates(snap: Snapshot, refs: set[str]) -> set[str]:
    keys = {(p.namespace, group_label(p)) for p in snap.pending if p.ref in refs and group_label(p)}
    return refs | {p.ref for p in snap.pending if (p.namespace, group_label(p)) in keys}


def optimize_partitioned(snap: Snapshot, cfg: SolveConfig, warm: Mapping[str, str] | None = None
                         ) -> Plan:
    """The partitioned solve (see the module docstring); the unpartitioned one on a violation."""
    from optimizer.solve import _optimize  # late: solve imports this module

    t0 = time.perf_counter()
    k = max(1, min(cfg.partitions, len(snap.nodes), max(1, len(snap.pending))))
    whole = replace(cfg, partitions=0)
    if k < 2 or cfg.extensions:
        plan = _optimize(snap, whole, warm)
        if cfg.extensions:
            plan.warnings.append("partitions ignored: solve extensions see the whole window")
        return plan
    timings: dict[str, float] = {}
    t = time.perf_counter()
    part = partition(snap, k)
    snaps = part_snapshots(snap, part)
    timings["partition"] = round(time.perf_counter() - t, 6)
    # the same part config whatever the pool, so a seed gives one plan. Each part keeps
    # cfg.workers: CP-SAT with one worker often finds no first solution in a short slice (mixed
    # 500-node part: UNKNOWN at 1.9 s with 1 worker, FEASIBLE with 2), so the processes share
    # the cores instead; each round of `concurrency` parts gets its slice of the time limit
    concurrency = max(1, min(k, os.cpu_count() or 1))
    rounds = math.ceil(k / concurrency)
    part_cfg = replace(whole, time_limit=max(0.2, cfg.time_limit * PART_SHARE / rounds))
    warms = [{p.ref: warm[p.ref] for p in s.pending if p.ref in warm} if warm else None for s in snaps]
    t = time.perf_counter()
    results, backend = _run_parts(snaps, part_cfg, warms, cfg.partition_pool, concurrency)
    timings["parts"] = round(time.perf_counter() - t, 6)

    # in node order: the verifier's inter-pod affinity check runs 2.7x faster on it than on the
    # parts' placements one after the other (mixed 20k: 15 s vs 41 s)
    placements = sorted(((pl.agent, pl.node) for plan, _ in results for pl in plan.placements),
                        key=lambda x: (snap.node_pos[x[1]], snap.agent_pos[x[0]]))
    evictions = [e for plan, _ in results for e in plan.evictions]
    warnings = list(snap.warnings) + sorted({w for plan, _ in results for w in plan.warnings})
    # merge check: agents the whole snapshot rejects go to the repair pass with their gang
    t = time.perf_counter()
    taken_out: set[str] = set()
    violations: list[Violation] = []
    for rnd in range(MERGE_ROUNDS + 1):  # the last check follows the last removal
        violations = verify(placements, snap, evictions=[(e.pod, e.node, e.agent or "") for e in evictions],
                            pdb_mode=cfg.pdb_mode)
        if not violations or rnd == MERGE_ROUNDS:
            break
        blamed = _blamed(violations, dict(placements))
        if blamed is None:
            break
        blamed = _gang_mates(snap, blamed)
        taken_out |= blamed
        placements = [(a, n) for a, n in placements if a not in blamed]
        evictions = [e for e in evictions if e.agent not in blamed]
    timings["merge_check"] = round(time.perf_counter() - t, 6)
    repair_info: dict[str, Any] = {"offered": 0, "placed": 0}
    unplaced = []
    status = "FEASIBLE"
    if not violations:
        placed = {a for a, _ in placements}
        left = [i for i, p in enumerate(snap.pending) if p.ref not in placed]
        if left:
            t = time.perf_counter()
            rsnap = repair_snapshot(snap, placements, {e.pod for e in evictions}, left)
            remaining = max(REPAIR_MIN, cfg.time_limit - (time.perf_counter() - t0))
            rplan = _optimize(rsnap, replace(whole, preemption=False, time_limit=remaining), None)
            timings["repair"] = round(time.perf_counter() - t, 6)
            repair_info = {"offered": len(left), "placed": len(rplan.placements),
                           "status": rplan.status, "seconds": timings["repair"]}
            placements = sorted(placements + [(pl.agent, pl.node) for pl in rplan.placements],
                                key=lambda x: (snap.node_pos[x[1]], snap.agent_pos[x[0]]))
            unplaced = rplan.unplaced
            warnings += [w for w in rplan.warnings if w not in warnings]
            t = time.perf_counter()
            violations = verify(placements, snap, unplaced=[u.agent for u in unplaced],
                                evictions=[(e.pod, e.node, e.agent or "") for e in evictions],
                                pdb_mode=cfg.pdb_mode)
            timings["verify"] = round(time.perf_counter() - t, 6)
    if violations:
        log.warning("partitioned plan failed verification: %s", violations[:5])
        plan = _optimize(snap, whole, warm)
        plan.warnings.append(f"partitioned plan failed verification ({violations[0]}): the "
                             f"unpartitioned plan is returned")
        plan.model["partitions"] = {"k": k, "fallback": True, "violations": [str(v) for v in violations[:5]]}
        return plan
    if any(plan.status == "FALLBACK" for plan, _ in results):
        status = "FALLBACK"
    parts_info = [{"agents": len(s.pending), "nodes": len(s.nodes), "status": plan.status,
                   "placed": len(plan.placements), "objective": plan.objective,
                   "seconds": round(sec, 3)} for s, (plan, sec) in zip(snaps, results, strict=True)]
    agent_prio = dict(zip((p.ref for p in snap.pending), snap.priority, strict=True))
    return Plan(
        status=status,
        placements=[Placement(a, n) for a, n in placements],
        unplaced=list(unplaced),
        evictions=evictions,
        objective=None, bound=None, gap=None, verified=True,
        objective_terms={"placed_agents": len(placements),
                         "placed_priority": sum(agent_prio[a] for a, _ in placements),
                         "evictions": len(evictions)},
        # the parts' own greedy plans, summed: a reference count, not a verified whole plan
        baseline={"name": f"greedy-{cfg.strategy} per part", **{key: sum(
            int(plan.baseline.get(key) or 0) for plan, _ in results)
            for key in ("placed_agents", "placed_priority", "evictions")}},
        timings=timings,
        model={"partitions": {"k": k, "pool": backend, "parts": parts_info,
                              "taken_out_by_merge_check": len(taken_out), "repair": repair_info},
               "time_limit": cfg.time_limit, "workers": cfg.workers},
        warnings=warnings,
        budgets=budget_report(dict(placements), snap),
    )

