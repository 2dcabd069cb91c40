"""What-if: solve the cluster as given and as a scenario changes it, and report the difference.

Both plans come from `optimize` (so both are verified); the scenario's cluster comes from
`models.scenario.apply_scenario`, a pure function. The diff is about agents (moves, newly
placed or unplaced, evictions and their fate), money and tokens per tenant (a tenant is a
namespace), and utilisation per zone and per node. Node-loss evictions come from the scenario;
preemptions (running pods a plan evicts for a higher-priority agent) from either plan, and
the diff lists the ones only the scenario's plan makes, or only the baseline's.

Utilisation and spend cover everything the cluster serves after a plan: the running pods that
keep their node plus the plan's placements. Spend uses the cost term's own formula
(optimizer/pricing.py, `Pricing.spend`) on an index where every served pod is a row, so running
pods are priced exactly like placed ones; the prices are the PricingTable's (assumptions).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from models import InputError, InputErrors, Inventory, Pod
from models.pod import PodStatus
from models.scenario import Applied, Scenario, SolveOptions, apply_scenario, parse_scenario
from optimizer.config import ConfigError, SolveConfig, resolve_weights
from optimizer.index import Index, class_key
from optimizer.plan import Plan, Unplaced
from optimizer.pricing import MICRO, build_pricing
from optimizer.rules.token_budget import covers, period_hours, period_tokens, placement_dollars
from optimizer.snapshot import build_snapshot, resolve_priorities
from optimizer.solve import optimize

ZONE = "topology.kubernetes.io/zone"
NO_ZONE = "(no zone)"
UTIL_RESOURCES = ("cpu", "memory", "nvidia.com/gpu")


def scenario_config(base: SolveConfig, opts: SolveOptions | None) -> SolveConfig:
    """The command's solve options with the scenario's overrides (weights merge)."""
    if opts is None:
        return base
    update: dict[str, Any] = {}
    for name in ("profile", "strategy", "time_limit", "seed", "term_gap", "preemption"):
        value = getattr(opts, name)
        if value is not None:
            update[name] = value
    if opts.weights:
        update["weights"] = {**base.weights, **opts.weights}
    return dataclasses.replace(base, **update)


@dataclass(frozen=True)
class Served:
    """What the cluster serves after a plan: per node requested/allocatable, per tenant money."""

    nodes: list[str]
    zones: list[str]
    resources: list[str]
    alloc: np.ndarray  # int64[node, res]
    used: np.ndarray  # int64[node, res]
    tenants: dict[str, dict[str, Any]]
    currency: str | None


def served(inv: Inventory, plan: Plan) -> Served:
    """Running pods on given nodes that the plan does not preempt, plus the plan's placements,
    as one index (see module doc)."""
    assignment = plan.assignment()
    node_names = {n.name for n in inv.nodes}
    preempted = {e.pod for e in plan.evictions}
    rows: list[tuple[Pod, str]] = [(p, p.spec.node_name or "") for p in inv.running
                                   if p.spec.node_name in node_names and p.ref not in preempted]
    rows += [(p, assignment[p.ref]) for p in inv.pending if p.ref in assignment]
    as_pending = [p.model_copy(update={"spec": p.spec.model_copy(update={"node_name": None}),
                                       "status": PodStatus(phase="Pending")}) for p, _ in rows]
    snap = build_snapshot(Inventory(nodes=list(inv.nodes), pods=as_pending,
                                    priority_classes=list(inv.priority_classes),
                                    namespaces=list(inv.namespaces), pricing=list(inv.pricing)))
    ix = Index(snap)
    agent = np.array([snap.agent_pos[p.ref] for p, _ in rows], dtype=np.int64)
    node = np.array([snap.node_pos[n] for _, n in rows], dtype=np.int64)
    cls = ix.class_of[agent] if agent.size else np.zeros(0, dtype=np.int64)
    used = np.zeros_like(ix.alloc)
    np.add.at(used, node, ix.req[cls])
    pricing = build_pricing(ix, snap.pricing)
    spend = pricing.spend(ix, cls, node)
    tokens = pricing.demand[cls] if cls.size else np.zeros(0, dtype=np.int64)
    tenants: dict[str, dict[str, Any]] = {}
    for k, (pod, _) in enumerate(rows):
        t = tenants.setdefault(pod.namespace, {"agents": 0, "tokens_per_hour": 0, "_spend": 0})
        t["agents"] += 1
        t["tokens_per_hour"] += int(tokens[k])
        t["_spend"] += int(spend[k])
    for t in tenants.values():
        t["spend_per_hour"] = round(t.pop("_spend") / MICRO, 4)
    return Served(nodes=list(ix.node_names),
                  zones=[n.labels.get(ZONE) or NO_ZONE for n in snap.nodes],
                  resources=list(ix.resources), alloc=ix.alloc, used=used, tenants=tenants,
                  currency=snap.pricing.spec.currency if snap.pricing else None)


def _util(s: Served, rows: np.ndarray) -> dict[str, float]:
    """requested / allocatable over some nodes, per resource the cluster has."""
    out = {}
    for r in UTIL_RESOURCES:
        if r in s.resources:
            j = s.resources.index(r)
            alloc = int(s.alloc[rows, j].sum())
            if alloc > 0:
                out[r] = round(int(s.used[rows, j].sum()) / alloc, 4)
    return out


def _by_zone(s: Served) -> dict[str, dict[str, Any]]:
    zones = np.array(s.zones, dtype=object)
    return {z: {"nodes": int((zones == z).sum()), **_util(s, np.nonzero(zones == z)[0])}
            for z in sorted(set(s.zones))}


def _by_node(s: Served) -> dict[str, dict[str, Any]]:
    return {n: {"zone": s.zones[i], **_util(s, np.array([i]))} for i, n in enumerate(s.nodes)}


def _plan_summary(plan: Plan, s: Served) -> dict[str, Any]:
    terms = plan.objective_terms
    return {
        "status": plan.status, "verified": plan.verified,
        "placed": len(plan.placements), "unplaced": len(plan.unplaced),
        "preempted": len(plan.evictions),
        "placed_priority": terms.get("placed_priority"), "objective": plan.objective,
        "profile": terms.get("profile"), "nodes": len(s.nodes),
        "spend_per_hour": round(sum(t["spend_per_hour"] for t in s.tenants.values()), 4),
        "tokens_per_hour": sum(t["tokens_per_hour"] for t in s.tenants.values()),
        "solve_seconds": plan.timings.get("solve"),
    }


def _pair(before: Mapping[str, Any], after: Mapping[str, Any], default: Any) -> list[dict[str, Any]]:
    return [{"name": k, "before": before.get(k, default), "after": after.get(k, default)}
            for k in sorted(set(before) | set(after))]


def _match(inv: Inventory, agents: list[Pod], before: Mapping[str, str], after: Mapping[str, str],
           why: Mapping[str, Unplaced]) -> dict[str, tuple[str | None, str | None, Unplaced | None]]:
    """Per agent: (baseline node, scenario node, why unplaced), identical agents matched.

    Agents of one class are interchangeable, and the plan hands a class's nodes to its members
    in name order, so comparing names literally would report swaps of twins as moves. Within a
    class, an agent keeps its baseline node while the scenario has a slot for the class there;
    then agents placed before take the remaining slots (moves), then agents unplaced before
    (newly placed); the rest are unplaced, with the reasons the plan gave the class."""
    prio = resolve_priorities(agents, inv.priority_classes)
    groups: dict[str, list[Pod]] = {}
    for p in agents:
        groups.setdefault(class_key(p, prio[p.ref]), []).append(p)
    out: dict[str, tuple[str | None, str | None, Unplaced | None]] = {}
    for members in groups.values():
        refs = sorted(p.ref for p in members)
        slots = Counter(after[r] for r in refs if r in after)
        reasons = [why[r] for r in refs if r not in after]
        node: dict[str, str] = {}
        for r in refs:
            b = before.get(r)
            if b is not None and slots[b] > 0:
                node[r], slots[b] = b, slots[b] - 1
        rest = sorted((r for r in refs if r not in node), key=lambda r: (r not in before, r))
        free = sorted(slots.elements())
        for r, n in zip(rest, free, strict=False):
            node[r] = n
        for r in refs:
            out[r] = (before.get(r), node.get(r), None if r in node else reasons.pop(0))
    return out


def diff(base_inv: Inventory, base: Plan, applied: Applied, plan: Plan) -> dict[str, Any]:
    """The JSON-able difference between the baseline plan and the scenario's plan."""
    inv = applied.inventory
    before, after = base.assignment(), plan.assignment()
    why = {u.agent: u for u in plan.unplaced}
    why_before = {u.agent: u for u in base.unplaced}
    pending_before = {p.ref for p in base_inv.pending}
    evicted = {e.pod for e in applied.evictions if e.fate != "blocked"}
    added = set(applied.added_agents)
    common = [p for p in inv.pending if p.ref in pending_before]  # not evicted, not added
    moves, newly_unplaced, newly_placed = [], [], []
    for ref, (node_before, node_after, u) in sorted(_match(inv, common, before, after, why).items()):
        if node_before and node_after and node_before != node_after:
            moves.append({"agent": ref, "from": node_before, "to": node_after})
        elif node_before and not node_after:
            assert u is not None
            newly_unplaced.append({"agent": ref, "was_on": node_before, "reason": u.reason,
                                   "counterfactual": u.counterfactual})
        elif not node_before and node_after:
            newly_placed.append({"agent": ref, "node": node_after,
                                 "was_unplaced_because": why_before[ref].reason})
    evictions = []
    for e in applied.evictions:
        row: dict[str, Any] = {"pod": e.pod, "node": e.node, "fate": e.fate, "reason": e.reason}
        if e.fate == "requeued":  # placed again (rescheduled) or not (unplaced)
            row["node_after"] = after.get(e.pod)
            row["fate"] = "rescheduled" if e.pod in after else "unplaced"
            if e.pod not in after:
                row["reason"] = why[e.pod].reason
        evictions.append(row)
    # preemption: running pods a plan evicts to make room for a higher-priority agent
    pre_before = {e.pod: e for e in base.evictions}
    pre_after = {e.pod: e for e in plan.evictions}
    still_there = {p.ref for p in inv.running}
    preemptions = {
        "newly_preempted": [{"pod": e.pod, "node": e.node, "agent": e.agent,
                             "priority": e.priority, "reason": e.reason}
                            for pod_ref, e in sorted(pre_after.items()) if pod_ref not in pre_before],
        "no_longer_preempted": [{"pod": e.pod, "node": e.node, "agent": e.agent}
                                for pod_ref, e in sorted(pre_before.items())
                                if pod_ref not in pre_after and pod_ref in still_there],
    }
    added_rows = [{"agent": a, "node": after.get(a),
                   "reason": None if a in after else why[a].reason} for a in applied.added_agents]
    s_before, s_after = served(base_inv, base), served(inv, plan)
    tenants = _pair(s_before.tenants, s_after.tenants,
                    {"agents": 0, "tokens_per_hour": 0, "spend_per_hour": 0.0})
    for t in tenants:
        t["delta"] = {k: round(t["after"][k] - t["before"][k], 4) for k in t["before"]}
    summary = {"baseline": _plan_summary(base, s_before), "scenario": _plan_summary(plan, s_after)}
    summary["counts"] = {
        "moved": len(moves), "newly_unplaced": len(newly_unplaced), "newly_placed": len(newly_placed),
        "evicted": len(evicted),
        "evicted_rescheduled": sum(1 for e in evictions if e["fate"] == "rescheduled"),
        "evicted_unplaced": sum(1 for e in evictions if e["fate"] == "unplaced"),
        "lost": sum(1 for e in evictions if e["fate"] in ("lost", "daemonset")),
        "drain_blocked": sum(1 for e in evictions if e["fate"] == "blocked"),
        "added_agents": len(added), "added_placed": sum(1 for a in added if a in after),
        "added_nodes": len(applied.added_nodes), "removed_nodes": len(applied.removed_nodes),
        "newly_preempted": len(preemptions["newly_preempted"]),
        "no_longer_preempted": len(preemptions["no_longer_preempted"]),
    }
    return {
        "summary": summary,
        "currency": s_after.currency or s_before.currency,
        "moves": moves,
        "newly_unplaced": newly_unplaced,
        "newly_placed": newly_placed,
        "evictions": evictions,
        "preemptions": preemptions,
        "added_agents": added_rows,
        "tenants": tenants,
        "zones": _pair(_by_zone(s_before), _by_zone(s_after), None),
        "nodes": _pair(_by_node(s_before), _by_node(s_after), None),
    }


def release_commitments(cluster: Inventory, applied: Applied) -> tuple[Inventory, list[dict[str, Any]],
                                                                       list[str]]:
    """The scenario's cluster with the token-budget commitments of pods lost with their node
    released: a running pod's demand is in its budget's `status.spent*` (windows commit it when
    they place it), and its replacement commits again when placed, so without this a recreated
    pod would be charged twice. Floored at 0, with a warning, when the status holds less."""
    gone = [e for e in applied.evictions if e.fate in ("requeued", "lost")]
    inv = applied.inventory
    if not gone or not inv.token_budgets:
        return inv, [], []
    pods = {p.ref: p for p in cluster.pods}
    nodes = {n.name: n for n in cluster.nodes}
    table = min(cluster.pricing, key=lambda t: t.name) if cluster.pricing else None
    budgets, released, warnings = [], [], []
    for b in inv.token_budgets:
        lost = [pods[e.pod] for e in gone if covers(b, pods[e.pod])]
        if not lost:
            budgets.append(b)
            continue
        tokens = sum(period_tokens(p, b, table) for p in lost)
        dollars = sum((placement_dollars(p, nodes[p.spec.node_name or ""], table) * period_hours(b)
                       for p in lost), Decimal(0)) if table is not None else Decimal(0)
        spent_tokens = b.status.spent_tokens - tokens
        spent_dollars = b.status.spent_dollars - dollars
        if spent_tokens < 0 or (b.spec.dollars is not None and spent_dollars < 0):
            warnings.append(f"TokenBudget {b.ref}: status holds less than the pods lost with their "
                            f"node had committed ({tokens} tokens, {round(dollars, 4)} per period): "
                            "released down to 0")
        status = b.status.model_copy(update={"spent_tokens": max(0, spent_tokens),
                                             "spent_dollars": max(Decimal(0), spent_dollars)})
        budgets.append(b.model_copy(update={"status": status}))
        released.append({"budget": b.ref, "pods": [p.ref for p in lost], "tokens": tokens,
                         "dollars": float(round(dollars, 6))})
    out = dataclasses.replace(inv, token_budgets=budgets)
    return out, released, warnings


def run_whatif(cluster: Inventory, scenario: Scenario | Mapping[str, Any],
               cfg: SolveConfig | None = None, baseline: Plan | None = None,
               include_plans: bool = False) -> dict[str, Any]:
    """The one entry point (CLI, sweeps, and the HTTP service): a JSON-able what-if answer.

    `scenario` is a Scenario or its parsed YAML/JSON document; a bad one raises InputErrors
    naming the change, the field and why. `baseline` is the plan of `cluster` under `cfg`
    when the caller already has it (a sweep solves it once). Both plans are verified by
    `optimize`; a plan failing verification raises PlanInvalidError, never a result."""
    sc = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
    cfg = cfg or SolveConfig()
    applied = apply_scenario(cluster, sc)
    released_inv, released, release_warnings = release_commitments(cluster, applied)
    applied = dataclasses.replace(applied, inventory=released_inv)
    scfg = scenario_config(cfg, sc.solve)
    try:
        resolve_weights(scfg)
    except ConfigError as exc:  # the scenario's own profile or weights: name the scenario
        raise InputErrors([InputError(f"Scenario {sc.name}", "solve", str(exc))]) from None
    base = baseline if baseline is not None else optimize(cluster, cfg)
    plan = optimize(applied.inventory, scfg)
    result: dict[str, Any] = {
        "scenario": {"name": sc.name, "labels": dict(sc.metadata.labels),
                     "description": sc.description, "changes": applied.changes,
                     "solve": sc.solve.model_dump(exclude_defaults=True) if sc.solve else {}},
        **diff(cluster, base, applied, plan),
        "budgets_released": released,
        "warnings": release_warnings + sorted(set(plan.warnings) - set(base.warnings)),
    }
    if include_plans:
        result["plans"] = {"baseline": base.to_dict(), "scenario": plan.to_dict()}
    return result
