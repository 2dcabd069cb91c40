"""Batch re-planning: re-optimise running and pending agents together, under a move budget.

Running agents that may move (controller-owned, not a DaemonSet or static pod, not pinned by
`agentplace.io/do-not-disrupt` / `karpenter.sh/do-not-disrupt` = "true", not terminating, not
a gang member, not covered by a TokenBudget whose spend already counts them) become agents of
one window: pending copies with `agentplace.io/current-node` (part of the class key, so pods on
different nodes are different classes). The window is solved by `optimize` itself, with the
`Moves` extension:

- every movable agent stays placed (placed[c] == size);
- moves of a class = size - x[c, current node]; the global, per-source-node and per-namespace
  budgets and each PDB's `status.disruptionsAllowed` cap them (hard);
- each move costs 1 + minutes of lost work since `agentplace.io/last-checkpoint` (else
  `status.startTime`, capped at a day) in the `preemption` (disruption) term; within a class
  the cheapest members move (an element constraint over the sorted prefix sums: exact).

The plan is then ordered into migration steps, each checked against the cluster of that step by
the independent verifier: make-before-break (the replacement is bound while the old pod still
runs, so the target must have room and quota for both) where possible; otherwise one
break-before-make move at a time (the old pod is evicted first, its replacement is bound when
its target has room), which a PDB allows since PDB-covered moves stay within their budget. When
no order exists the blocked agents are pinned and the window is solved again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from models import Inventory, Pod
from optimizer.config import SolveConfig
from optimizer.index import Index
from optimizer.model import ModelBuilder
from optimizer.plan import Plan, PlanInvalidError
from optimizer.preemption import lost_minutes, pdb_matches
from optimizer.pricing import MICRO, pricing_for
from optimizer.rules import pod_affinity as pa
from optimizer.rules.gangs import group_label
from optimizer.rules.token_budget import covers
from optimizer.snapshot import build_snapshot
from optimizer.solve import optimize
from optimizer.verify import verify

log = logging.getLogger("agentplace.replan")

CURRENT_NODE = "agentplace.io/current-node"
PIN_ANNOTATIONS = ("agentplace.io/do-not-disrupt", "karpenter.sh/do-not-disrupt")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SURGE_SUFFIX = "-replan-surge"
# rules whose violation in the current state moves may repair (they count other pods)
AUTO_PAIRS = 8_000  # movable classes x nodes beyond which target nodes are narrowed
REPAIRABLE = frozenset({"PodTopologySpread", "InterPodAffinity", "BindingOrder"})


class ReplanError(ValueError):
    """Options that cannot be used, named with the reason."""


@dataclass(frozen=True)
class ReplanConfig:
    max_moves: int = 10
    max_moves_per_node: int | None = None  # moves out of one node
    max_moves_per_namespace: int | None = None
    solve: SolveConfig = field(default_factory=SolveConfig)
    rounds: int = 3  # solves at most, when moves cannot be ordered and are pinned
    # candidate target nodes per movable agent besides its own: None = every node while the
    # model stays small (AUTO_PAIRS), else that many (half the most loaded, half the least)
    max_targets: int | None = None
    # weight of the disruption (`preemption`) term unless the solve's weights set it: low, so
    # that a node freed or a cheaper placement is worth a few moves; the budgets are the hard
    # limit and any positive weight still rules out moves that gain nothing
    move_weight: float = 0.1

    def check(self) -> None:
        for name in ("max_moves", "max_moves_per_node", "max_moves_per_namespace", "max_targets"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ReplanError(f"--{name.replace('_', '-')} {v!r}: must be an integer >= 0")
        if self.move_weight < 0:
            raise ReplanError(f"move weight {self.move_weight!r}: must be >= 0")
        if self.rounds < 1:
            raise ReplanError(f"rounds {self.rounds!r}: must be >= 1")


@dataclass
class Move:
    agent: str
    source: str
    target: str
    mode: str  # make-before-break | break-before-make
    lost_minutes: int
    why: list[str] = field(default_factory=list)
    spend_per_hour_saved: float | None = None


@dataclass
class Step:
    step: int
    action: str  # move (make-before-break) | evict | bind (finishes a break-before-make) | place
    agent: str
    source: str | None
    target: str | None
    note: str = ""


@dataclass
class ReplanResult:
    plan: Plan  # the verified window: pending agents' placements and the moved agents' targets
    moves: list[Move]
    steps: list[Step]
    pinned: dict[str, str]  # running pod -> why it may not move
    freed_nodes: list[str]
    budgets: dict[str, Any]
    spend_per_hour: dict[str, float] | None
    warnings: list[str]
    rounds: int
    steps_verified: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["plan"] = self.plan.to_dict()
        return out


# --- who may move ----------------------------------------------------------------------------


def pin_reason(pod: Pod, inv: Inventory) -> str | None:
    """Why a running pod may not move (None: it may)."""
    ann = pod.metadata.annotations
    for key in PIN_ANNOTATIONS:
        if ann.get(key, "").lower() == "true":
            return f"annotation {key}=true"
    if pod.metadata.deletion_timestamp is not None:
        return "terminating"
    if MIRROR_ANNOTATION in ann:
        return "static (mirror) pod"
    owner = next((o for o in pod.metadata.owner_references if o.controller), None)
    if owner is None:
        return "no controller ownerReference: nothing would recreate it"
    if owner.kind == "DaemonSet":
        return "DaemonSet pod: bound to its node"
    gang = group_label(pod)
    if gang:
        return f"member of gang {gang}: moving one restarts the gang"
    for budget in inv.token_budgets:
        if covers(budget, pod):
            return (f"covered by TokenBudget {budget.namespace}/{budget.name}: its demand is "
                    "already committed for the period")
    return None


def _as_agent(pod: Pod) -> Pod:
    """A running pod as an agent of the window: unbound, its node remembered."""
    node = pod.spec.node_name or ""
    meta = pod.metadata.model_copy(update={"annotations": {**pod.metadata.annotations,
                                                           CURRENT_NODE: node}})
    return pod.model_copy(update={"metadata": meta,
                                  "spec": pod.spec.model_copy(update={"node_name": None})})


def _bound(pod: Pod, node: str, name: str | None = None, uid: bool = True) -> Pod:
    meta = pod.metadata.model_copy(update={
        "name": name or pod.metadata.name, "uid": pod.metadata.uid if uid else None})
    return pod.model_copy(update={"metadata": meta,
                                  "spec": pod.spec.model_copy(update={"node_name": node})})


def _unbound(pod: Pod, name: str | None = None, uid: bool = True) -> Pod:
    out = _bound(pod, "", name, uid)
    return out.model_copy(update={"spec": out.spec.model_copy(update={"node_name": None})})


def _with_pods(inv: Inventory, pods: list[Pod]) -> Inventory:
    return replace(inv, pods=pods, warnings=list(inv.warnings))


# --- the extension: budgets and the cost of moves --------------------------------------------


class Moves:
    """SolveConfig extension (see optimize): movable agents stay placed, moves are budgeted
    and cost their disruption."""

    def __init__(self, cfg: ReplanConfig, damage: Mapping[str, int]) -> None:
        self.cfg = cfg
        self.damage = damage  # agent ref -> 1 + lost minutes
        self.ix: Index | None = None
        self.hints: list[tuple[cp_model.IntVar, Any]] = []  # read by optimize after encode

    def classes(self, ix: Index) -> list[tuple[int, int, np.ndarray]]:
        """(class, current node, ascending prefix sums of its members' move costs)."""
        out = []
        for c, cls in enumerate(ix.classes):
            cur = cls.pod.metadata.annotations.get(CURRENT_NODE)
            if cur is None or cur not in ix.snap.node_pos:
                continue
            costs = sorted(self.damage.get(ix.snap.pending[m].ref, 1) for m in cls.members)
            out.append((c, ix.snap.node_pos[cur], np.concatenate([[0], np.cumsum(costs)])))
        return out

    def groups(self, ix: Index) -> list[tuple[str, int, list[int]]]:
        """(budget name, limit, classes) per hard budget."""
        mv = self.classes(ix)
        out: list[tuple[str, int, list[int]]] = [("max-moves", self.cfg.max_moves,
                                                  [c for c, _, _ in mv])]
        if self.cfg.max_moves_per_node is not None:
            by: dict[int, list[int]] = {}
            for c, n, _ in mv:
                by.setdefault(n, []).append(c)
            out += [(f"max-moves-per-node {ix.node_names[n]}", self.cfg.max_moves_per_node, cs)
                    for n, cs in by.items()]
        if self.cfg.max_moves_per_namespace is not None:
            by_ns: dict[str, list[int]] = {}
            for c, _, _ in mv:
                by_ns.setdefault(ix.classes[c].pod.namespace, []).append(c)
            out += [(f"max-moves-per-namespace {ns}", self.cfg.max_moves_per_namespace, cs)
                    for ns, cs in by_ns.items()]
        for pdb in ix.snap.pdbs:
            cs = [c for c, _, _ in mv if pdb_matches(pdb, ix.classes[c].pod)]
            if cs:
                out.append((f"PodDisruptionBudget {pdb.ref}",
                            max(0, pdb.status.disruptions_allowed), cs))
        return out

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """Narrow each movable class's target nodes on a large window (see max_targets):
        its own node, plus the most and the least loaded nodes counting every running pod."""
        mv = self.classes(ix)
        k = self.cfg.max_targets
        if k is None:
            if len(mv) * ix.num_nodes <= AUTO_PAIRS:
                return None
            k = max(4, AUTO_PAIRS // max(1, len(mv)))
        if k >= ix.num_nodes:
            return None
        load = ix.used.astype(np.float64)
        for c, n, _ in mv:
            load[n] += ix.req[c] * ix.class_size[c]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(ix.alloc > 0, load / np.maximum(ix.alloc, 1), 0.0).max(axis=1)
        order = np.argsort(-share, kind="stable")
        keep = np.zeros(ix.num_nodes, dtype=bool)
        keep[order[: (k + 1) // 2]] = True
        keep[order[ix.num_nodes - k // 2:]] = True
        mask = np.ones((ix.num_classes, ix.num_nodes), dtype=bool)
        for c, n, _ in mv:
            mask[c] = keep
            mask[c, n] = True
        return mask

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        self.ix = ix
        model = mb.model
        pair_of = {(c, n): p for p, (c, n) in enumerate(zip(mb.pair_cls.tolist(),
                                                             mb.pair_node.tolist(), strict=True))}
        moves: dict[int, cp_model.IntVar] = {}
        costs = []
        for c, n, prefix in self.classes(ix):
            size = int(ix.class_size[c])
            model.add(mb.placed[c] == size)
            p = pair_of.get((c, n))
            m = model.new_int_var(0, size, f"moves_{c}")
            model.add(m == size - (mb.x[p] if p is not None else 0))
            moves[c] = m
            cost = model.new_int_var(0, int(prefix[-1]), f"move_cost_{c}")
            model.add_element(m, [int(v) for v in prefix], cost)
            costs.append(cost)
            size_n = (size, n)
            self.hints += [(m, lambda counts, c=c, sn=size_n: int(sn[0] - counts[c, sn[1]])),
                           (cost, lambda counts, c=c, sn=size_n, pr=prefix:
                            int(pr[int(sn[0] - counts[c, sn[1]])]))]
            mb.count_constraint("replan moves", 3)
        for _, limit, cs in self.groups(ix):
            if sum(int(ix.class_size[c]) for c in cs) > limit:
                model.add(cp_model.LinearExpr.sum([moves[c] for c in cs]) <= limit)
                mb.count_constraint("replan budgets")
        if costs:
            mb.damage.append((cp_model.LinearExpr.sum(costs), self.cost,
                              int(sum(int(pr[-1]) for _, _, pr in self.classes(ix)))))

    def moves_of(self, counts: np.ndarray, ix: Index) -> dict[int, int]:
        return {c: int(ix.class_size[c] - counts[c, n]) for c, n, _ in self.classes(ix)}

    def cost(self, counts: np.ndarray) -> int:
        assert self.ix is not None
        return sum(int(pr[int(self.ix.class_size[c] - counts[c, n])])
                   for c, n, pr in self.classes(self.ix))

    def accepts(self, counts: np.ndarray) -> bool:
        assert self.ix is not None
        ix = self.ix
        if any(int(counts[c].sum()) != int(ix.class_size[c]) for c, _, _ in self.classes(ix)):
            return False
        moves = self.moves_of(counts, ix)
        return all(sum(moves[c] for c in cs) <= limit for _, limit, cs in self.groups(ix))

    def heuristics(self, ix: Index) -> list[np.ndarray]:
        """Everyone stays: valid by construction (replan checks it first), zero moves."""
        counts = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
        for c, n, _ in self.classes(ix):
            counts[c, n] = ix.class_size[c]
        return [counts]


# --- the replan --------------------------------------------------------------------------------


def replan(inv: Inventory, cfg: ReplanConfig | None = None) -> ReplanResult:
    """Re-optimise the running and pending agents of `inv` within the move budgets; every
    migration step and the final state pass the verifier."""
    cfg = cfg or ReplanConfig()
    cfg.check()
    # moves, not evictions, are the disruption
    # nodes holding movable agents are never interchangeable (a move's cost depends on the node
    # the agent runs on): no node symmetry breaking
    solve_cfg = replace(cfg.solve, preemption=False, symmetry_breaking="off",
                        weights={"preemption": cfg.move_weight, **cfg.solve.weights})
    now = solve_cfg.now or datetime.now(UTC)
    warnings: list[str] = []
    running = inv.running
    pinned: dict[str, str] = {}
    for pod in running:
        reason = pin_reason(pod, inv)
        if reason:
            pinned[pod.ref] = reason
    node_names = {n.name for n in inv.nodes}
    # Karpenter reads its do-not-disrupt annotation on nodes too: nothing leaves such a node
    held = {n.name: key for n in inv.nodes for key in PIN_ANNOTATIONS
            if n.metadata.annotations.get(key, "").lower() == "true"}
    for pod in running:
        if pod.spec.node_name not in node_names:
            pinned.setdefault(pod.ref, "bound to a node not in the input")
        elif pod.spec.node_name in held:
            pinned.setdefault(pod.ref, f"its node is annotated {held[pod.spec.node_name]}=true")
    rounds = 0
    repair = True  # first try to repair spread / affinity the current state breaks
    while True:
        rounds += 1
        _pin_invalid_stays(inv, pinned, static_only=repair)
        movable = [p for p in running if p.ref not in pinned]
        damage = {p.ref: 1 + lost_minutes(p, now) for p in movable}
        ext = Moves(cfg, damage)
        window = _with_pods(inv, [p for p in running if p.ref in pinned]
                            + [_as_agent(p) for p in movable] + inv.pending)
        try:
            plan = optimize(window, replace(solve_cfg, extensions=(*solve_cfg.extensions, ext)))
        except PlanInvalidError as exc:
            if not repair:
                raise
            # the budgets cannot repair what the current state breaks: keep those pods
            warnings.append(f"round {rounds}: the current state breaks a rule the move budgets "
                            f"cannot repair ({str(exc)[:200]}): its pods pinned, solved again")
            repair = False
            continue
        assert ext.ix is not None
        target = _assign(plan, ext.ix, damage)
        origin = {p.ref: p.spec.node_name or "" for p in movable}
        moves = {a: (origin[a], n) for a, n in target.items() if a in origin and n != origin[a]}
        new = {a: n for a, n in target.items() if a not in origin}
        order = order_moves(inv, pinned, movable, moves, new)
        if order.blocked and rounds < cfg.rounds:
            for a in order.blocked:
                pinned[a] = "its move could not be ordered validly; kept in place"
            warnings.append(f"round {rounds}: no valid order for the moves of "
                            f"{', '.join(sorted(order.blocked))}: pinned, solved again")
            continue
        if order.blocked:
            raise ReplanError("no valid migration order for " + ", ".join(sorted(order.blocked))
                              + f" after {rounds} rounds")
        break
    # the plan's placements: the pending agents only (moves are listed apart)
    plan.placements = [p for p in plan.placements if p.agent not in origin]
    before = {p.ref: p.spec.node_name or "" for p in running}
    after = {**before, **{a: n for a, (_, n) in moves.items()}}
    freed = sorted(n for n in {*before.values()} if n not in {*after.values(), *new.values()})
    move_list = _explain(inv, ext.ix, movable, moves, order, freed, new, damage)
    spend = _spend(ext.ix, target, origin)
    budgets = {name: {"limit": limit, "used": sum(1 for a in moves if _in_group(a, ext.ix, cs))}
               for name, limit, cs in ext.groups(ext.ix)}
    return ReplanResult(plan, move_list, order.steps, pinned, freed, budgets, spend,
                        warnings + plan.warnings, rounds)


def _pin_invalid_stays(inv: Inventory, pinned: dict[str, str], static_only: bool = False
                       ) -> None:
    """Pin movable pods whose staying put fails a Filter today (e.g. a taint added after they
    started; kube does not evict for that): the all-stay plan must be valid, it is the
    zero-move fallback. With `static_only`, violations of the rules that count other pods
    (spread, inter-pod affinity) pin no one: the solve may repair them by moving pods."""
    running = inv.running
    for _ in range(len(running) + 1):
        movable = [p for p in running if p.ref not in pinned]
        if not movable:
            return
        window = _with_pods(inv, [p for p in running if p.ref in pinned]
                            + [_as_agent(p) for p in movable])
        snap = build_snapshot(window)
        bad = verify([(p.ref, p.spec.node_name or "") for p in movable], snap)
        if static_only:
            bad = [v for v in bad if v.rule not in REPAIRABLE]
        if not bad:
            return
        refs = {p.ref for p in movable}
        hit = {a for v in bad for a in v.agent.split(",") if a in refs}
        for v in bad:
            for a in v.agent.split(","):
                if a in refs:
                    pinned.setdefault(a, f"staying fails {v.rule} today ({v.message}); "
                                         "kube does not move it for that")
        if not hit:  # a violation naming no one: keep everyone in place
            for a in refs:
                pinned[a] = f"the current placement fails {bad[0]}"
            return


def _assign(plan: Plan, ix: Index, damage: Mapping[str, int]) -> dict[str, str]:
    """Agent -> node, with the costliest members of each class staying on their node (members
    of a class are interchangeable for every rule, not for the cost of moving)."""
    placed = plan.assignment()
    out = dict(placed)
    for cls in ix.classes:
        cur = cls.pod.metadata.annotations.get(CURRENT_NODE)
        if cur is None:
            continue
        refs = [ix.snap.pending[m].ref for m in cls.members]
        nodes = sorted(placed[r] for r in refs if r in placed)
        stays = sum(1 for n in nodes if n == cur)
        others = [n for n in nodes if n != cur]
        ranked = sorted(refs, key=lambda r: (-damage.get(r, 1), r))
        for i, r in enumerate(ranked):
            out[r] = cur if i < stays else others[i - stays]
    return out


def _in_group(agent: str, ix: Index, classes: Sequence[int]) -> bool:
    pos = ix.snap.agent_pos.get(agent)
    return pos is not None and int(ix.class_of[pos]) in set(classes)


# --- ordering -----------------------------------------------------------------------------------


@dataclass
class Order:
    steps: list[Step]
    modes: dict[str, str]
    blocked: list[str]


def _state(inv: Inventory, pinned: Mapping[str, str], movable: Sequence[Pod],
           pos: Mapping[str, str | None]) -> list[Pod]:
    """The bound pods of one step: pinned as they are, movable ones where they are now (an
    agent in flight, evicted but not yet rebound, holds nothing)."""
    fixed = [p for p in inv.running if p.ref in pinned]
    return fixed + [_bound(p, n) for p in movable if (n := pos[p.ref])]


def _step_ok(inv: Inventory, bound: list[Pod], pod: Pod, node: str, surge: bool) -> bool:
    """The verifier's verdict on binding `pod` (a surge copy with its own name and no uid, so
    quota charges it, when the old pod still runs) on `node` against the pods bound now."""
    agent = _unbound(pod, pod.metadata.name + SURGE_SUFFIX, uid=False) if surge else _unbound(pod)
    snap = build_snapshot(_with_pods(inv, [*bound, agent]))
    return not verify([(agent.ref, node)], snap)


def order_moves(inv: Inventory, pinned: Mapping[str, str], movable: Sequence[Pod],
                moves: Mapping[str, tuple[str, str]], new: Mapping[str, str]) -> Order:
    """Migration steps valid one at a time (each bind passes every Filter against the pods
    bound at that step), make-before-break first; at most one agent in flight."""
    pods = {p.ref: p for p in movable}
    pos: dict[str, str | None] = {p.ref: p.spec.node_name for p in movable}
    left = sorted(moves, key=lambda a: (moves[a][0], a))
    steps: list[Step] = []
    modes: dict[str, str] = {}
    flight: str | None = None
    while left or flight:
        progressed = False
        if flight is not None:
            src, dst = moves[flight]
            if _step_ok(inv, _state(inv, pinned, movable, pos), pods[flight], dst, False):
                pos[flight] = dst
                steps.append(Step(len(steps) + 1, "bind", flight, src, dst,
                                  "replacement bound: break-before-make finished"))
                flight, progressed = None, True
        for a in list(left):
            src, dst = moves[a]
            if _step_ok(inv, _state(inv, pinned, movable, pos), pods[a], dst, True):
                pos[a] = dst
                left.remove(a)
                modes[a] = "make-before-break"
                steps.append(Step(len(steps) + 1, "move", a, src, dst,
                                  "replacement bound on the target first, then the old pod "
                                  "deleted"))
                progressed = True
        if progressed:
            continue
        if flight is None and left:
            # break a cycle: evict the cheapest mover whose source a blocked move targets
            targets = {moves[b][1] for b in left}
            cands = [a for a in left if moves[a][0] in targets] or left
            a = cands[0]
            pos[a] = None
            left.remove(a)
            flight = a
            modes[a] = "break-before-make"
            steps.append(Step(len(steps) + 1, "evict", a, moves[a][0], None,
                              "old pod deleted first: its target has no room yet "
                              "(within its PDB's budget)"))
            continue
        blocked = ([flight] if flight else []) + left
        return Order(steps, modes, blocked)
    # the pending agents bind last, against the final state
    final = _state(inv, pinned, movable, pos)
    if new:
        snap = build_snapshot(_with_pods(inv, final + [p for p in inv.pending]))
        bad = verify(list(new.items()), snap)
        if bad:
            return Order(steps, modes, sorted(moves))
        for a, n in sorted(new.items()):
            steps.append(Step(len(steps) + 1, "place", a, None, n, "pending agent bound"))
    return Order(steps, modes, [])


# --- why -----------------------------------------------------------------------------------------


def _spend(ix: Index, target: Mapping[str, str], origin: Mapping[str, str]
           ) -> dict[str, float] | None:
    """Spend per hour of the movable agents before and after, from the pricing table."""
    pricing = pricing_for(ix)
    if pricing.table is None or not origin:
        return None
    refs = [a for a in origin if a in ix.snap.agent_pos]
    cls = np.array([ix.class_of[ix.snap.agent_pos[a]] for a in refs], dtype=np.int64)
    src = np.array([ix.snap.node_pos[origin[a]] for a in refs], dtype=np.int64)
    dst = np.array([ix.snap.node_pos[target[a]] for a in refs], dtype=np.int64)
    before = float(pricing.spend(ix, cls, src).sum()) / MICRO
    after = float(pricing.spend(ix, cls, dst).sum()) / MICRO
    return {"before": round(before, 6), "after": round(after, 6),
            "saved": round(before - after, 6), "currency": pricing.table.spec.currency}


def _skew(pod: Pod, key: str, sel: Any, where: Mapping[str, str], pods: Mapping[str, Pod],
          node_labels: Mapping[str, Mapping[str, str]]) -> int:
    counts = {labels[key]: 0 for labels in node_labels.values() if key in labels}
    for ref, node in where.items():
        other = pods[ref]
        labels = node_labels.get(node, {})
        if (key in labels and other.namespace == pod.namespace
                and pa.selector_matches(sel, other.labels)):
            counts[labels[key]] += 1
    return max(counts.values()) - min(counts.values()) if counts else 0


def _explain(inv: Inventory, ix: Index, movable: Sequence[Pod],
             moves: Mapping[str, tuple[str, str]], order: Order, freed: Sequence[str],
             new: Mapping[str, str], damage: Mapping[str, int]) -> list[Move]:
    pricing = pricing_for(ix)
    currency = pricing.table.spec.currency if pricing.table else ""
    pods = {p.ref: p for p in inv.running} | {p.ref: p for p in inv.pending}
    before = {p.ref: p.spec.node_name or "" for p in inv.running}
    after = {**before, **{a: n for a, (_, n) in moves.items()}, **new}
    node_labels = {n.name: n.labels for n in inv.nodes}
    landing: dict[str, list[str]] = {}
    for a, (_, dst) in moves.items():
        landing.setdefault(dst, []).append(a)
    for a, dst in new.items():
        landing.setdefault(dst, []).append(a)
    out = []
    for a in [s.agent for s in order.steps if s.action in ("move", "evict")]:
        src, dst = moves[a]
        why = []
        if src in freed:
            why.append(f"frees node {src}")
        saved = None
        pos = ix.snap.agent_pos.get(a)
        if pricing.table is not None and pos is not None:
            c = int(ix.class_of[pos])
            spend = pricing.spend(ix, np.array([c, c]), np.array([ix.snap.node_pos[src],
                                                                  ix.snap.node_pos[dst]]))
            saved = round(float(spend[0] - spend[1]) / MICRO, 6)
            if saved >= 0.001:
                why.append(f"saves {saved:.3f} {currency}/h")
            elif saved <= -0.001:  # said plainly: the move pays for something else
                why.append(f"costs {-saved:.3f} {currency}/h more")
        pod = pods[a]
        for tsc in pod.spec.topology_spread_constraints:
            if tsc.label_selector is None:
                continue
            b = _skew(pod, tsc.topology_key, tsc.label_selector, before, pods, node_labels)
            f = _skew(pod, tsc.topology_key, tsc.label_selector, after, pods, node_labels)
            if f < b:
                why.append(f"spread skew over {tsc.topology_key} {b} -> {f}")
        room = sorted(x for x in landing.get(src, []) if x != a)
        if room:
            why.append("makes room for " + ", ".join(room[:3]) + (" …" if len(room) > 3 else ""))
        if not why:
            why.append("part of the re-plan's better objective (see objective_terms)")
        out.append(Move(a, src, dst, order.modes[a], damage[a] - 1, why, saved))
    return out


def summary(result: ReplanResult) -> dict[str, Any]:
    """Figures for the CLI's summary."""
    modes = Counter(m.mode for m in result.moves)
    return {"moves": len(result.moves), "make_before_break": modes["make-before-break"],
            "break_before_make": modes["break-before-make"], "freed_nodes": result.freed_nodes,
            "pinned": len(result.pinned), "placed_pending": len(result.plan.placements),
            "unplaced_pending": len(result.plan.unplaced)}
