"""The independent verifier: every plan from every path passes through here before it is returned.

It reads the raw objects of the Snapshot with straightforward code (each rule's own `verify`,
written without the index tables or the CP-SAT encoding) and never imports ortools.

The batch reading: a plan is valid iff its placed agents could be bound one at a time in SOME
order, each passing every kube Filter against the running pods plus the agents bound before
it. Each order-dependent rule (PodTopologySpread, InterPodAffinity) searches an order of its
own; when both are in play, a joint search (`joint_order_violations`) looks for ONE order
serving every rule at once: a plan needing one order for spread and another for affinity is
rejected as a `BindingOrder` violation. Admission rules (ResourceQuota, TokenBudget) are not
Filters and keep to their own verify.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence

from models import Node, Pod, PodDisruptionBudget
from optimizer.explain import cluster_usage, node_reasons, run_pre_filters
from optimizer.rules import RULES, Violation
from optimizer.rules import pod_affinity as pa
from optimizer.rules import topology_spread as ts
from optimizer.snapshot import Snapshot, resolve_priorities, without_running

STRUCTURE = "Plan"


def verify(placements: Sequence[tuple[str, str]], snap: Snapshot,
           unplaced: Sequence[str] = (), evictions: Sequence[tuple[str, str, str]] = (),
           pdb_mode: str = "hard") -> list[Violation]:
    """All violations of `placements` (agent ref, node name); empty means the plan is valid.

    When `unplaced` is given, also checks that every pending agent is accounted for exactly once.
    `evictions` (pod ref, node name, the agent it makes room for) are checked for legality
    (preemption_violations) and done first: the placements are then checked against the cluster
    without the evicted pods.
    """
    if evictions:
        out = preemption_violations(placements, snap, evictions, pdb_mode)
        after = without_running(snap, [pod for pod, _, _ in evictions])
        out += verify(placements, after, unplaced)
        if not out:
            out += _unnecessary(placements, snap, evictions)
        return out
    pending = {p.ref for p in snap.pending}
    nodes = {n.name for n in snap.nodes}
    out: list[Violation] = []
    counts = Counter(agent for agent, _ in placements)
    for agent, node in placements:
        if agent not in pending:
            out.append(Violation(STRUCTURE, agent, node, "not a pending agent of this window"))
        if node not in nodes:
            out.append(Violation(STRUCTURE, agent, node, "no such node in the snapshot"))
    for agent, n in counts.items():
        if n > 1:
            out.append(Violation(STRUCTURE, agent, None, f"placed {n} times"))
    if unplaced:
        out.extend(accounting_violations(placements, snap, unplaced))
    assignment = {agent: node for agent, node in placements}
    for rule in RULES:
        out.extend(rule.verify(assignment, snap))
    # each order-dependent rule found an order of its own; one order must serve them all (a
    # plan already rejected needs no further proof, and its search could only run to the budget)
    if not out and needs_joint_order(assignment, snap):
        out.extend(joint_order_violations(assignment, snap))
    return out


def accounting_violations(placements: Sequence[tuple[str, str]], snap: Snapshot,
                          unplaced: Sequence[str]) -> list[Violation]:
    """Every pending agent placed or reported unplaced, exactly once: nothing accepted is lost.
    Cheap on its own, for a plan whose placements were already verified."""
    pending = {p.ref for p in snap.pending}
    placed, left = {a for a, _ in placements}, set(unplaced)
    out = [Violation(STRUCTURE, a, None, "neither placed nor unplaced: lost")
           for a in sorted(pending - placed - left)]
    out += [Violation(STRUCTURE, a, None, "both placed and unplaced") for a in sorted(placed & left)]
    return out


# --- preemption --------------------------------------------------------------------------------

PREEMPTION = "Preemption"
PDB = "PodDisruptionBudget"


def _policy(pod: Pod, snap: Snapshot) -> str:
    if pod.spec.preemption_policy:
        return pod.spec.preemption_policy
    for pc in snap.priority_classes:
        if pc.name == pod.spec.priority_class_name:
            return pc.preemption_policy
    return "PreemptLowerPriority"


def _pdb_covers(pdb: PodDisruptionBudget, pod: Pod) -> bool:
    sel = pdb.spec.selector
    if pdb.namespace != pod.namespace or sel is None:
        return False
    if not sel.match_labels and not sel.match_expressions:
        return False  # kube's preemption: an empty selector protects nothing
    return pa.selector_matches(sel, pod.labels)


def preemption_violations(placements: Sequence[tuple[str, str]], snap: Snapshot,
                          evictions: Sequence[tuple[str, str, str]], pdb_mode: str
                          ) -> list[Violation]:
    """Each eviction: a running pod on that node, evicted once, for an agent placed on the same
    node that may preempt (preemptionPolicy) and has strictly higher priority; and, with PDBs
    hard, no budget spent beyond status.disruptionsAllowed."""
    running = {p.ref: p for p in snap.running}
    pending = {p.ref: p for p in snap.pending}
    placed = dict(placements)
    prio = resolve_priorities([*snap.running, *snap.pending], snap.priority_classes)
    out = []
    for pod_ref, count in Counter(p for p, _, _ in evictions).items():
        if count > 1:
            out.append(Violation(PREEMPTION, pod_ref, None, f"evicted {count} times"))
    for pod_ref, node, agent in evictions:
        victim = running.get(pod_ref)
        if victim is None:
            out.append(Violation(PREEMPTION, pod_ref, node, "not a running pod of the snapshot"))
            continue
        if victim.spec.node_name != node:
            out.append(Violation(PREEMPTION, pod_ref, node,
                                 f"runs on {victim.spec.node_name}, not on {node}"))
        pod = pending.get(agent)
        if pod is None or placed.get(agent) != node:
            out.append(Violation(PREEMPTION, pod_ref, node,
                                 f"evicted for {agent}, which is not placed on {node}"))
            continue
        if _policy(pod, snap) == "Never":
            out.append(Violation(PREEMPTION, pod_ref, node,
                                 f"evicted for {agent}, whose preemptionPolicy is Never"))
        # rolling windows age a waiting agent's spec.priority and keep its own here
        own = pod.metadata.annotations.get("agentplace.io/base-priority")
        mine = int(own) if own is not None and own.lstrip("-").isdigit() else prio[agent]
        if prio[victim.ref] >= mine:
            out.append(Violation(PREEMPTION, pod_ref, node,
                                 f"priority {prio[victim.ref]} is not lower than {agent}'s "
                                 f"{mine}"))
    if pdb_mode == "hard":
        for pdb in snap.pdbs:
            hit = [p for p, _, _ in evictions if p in running and _pdb_covers(pdb, running[p])]
            allowed = max(0, pdb.status.disruptions_allowed)
            if len(hit) > allowed:
                out.append(Violation(PDB, ",".join(hit), None,
                                     f"{pdb.ref}: {len(hit)} evictions > disruptionsAllowed "
                                     f"{allowed}"))
    return out


def _unnecessary(placements: Sequence[tuple[str, str]], snap: Snapshot,
                 evictions: Sequence[tuple[str, str, str]]) -> list[Violation]:
    """An eviction the plan is valid without (kube's reprieve would have kept that pod)."""
    out = []
    refs = [p for p, _, _ in evictions]
    gone = set(refs)
    pending = {p.ref: p for p in snap.pending}
    running = {p.ref: p for p in snap.running}
    nodes = {n.name: n for n in snap.nodes}
    load: dict[str, Counter[str]] = {}
    asked: dict[str, set[str]] = {}
    for pod in [*(p for p in snap.running if p.ref not in gone),
                *(pending[a] for a, _ in placements)]:
        node_name = pod.spec.node_name or dict(placements)[pod.ref]
        load.setdefault(node_name, Counter()).update({**pod.requests(), "pods": 1})
        if pod.ref in pending:
            asked.setdefault(node_name, {"pods"}).update(r for r, v in pod.requests().items() if v)
    for i, (pod_ref, node, _) in enumerate(evictions):
        back = load.get(node, Counter()) + Counter({**running[pod_ref].requests(), "pods": 1})
        alloc = nodes[node].allocatable()
        if any(back[r] > alloc.get(r, 0) for r in asked.get(node, set())):
            continue  # it must go for the resources alone
        rest = refs[:i] + refs[i + 1:]
        if not verify(placements, without_running(snap, rest)):
            out.append(Violation(PREEMPTION, pod_ref, node,
                                 "unnecessary: the plan is valid with this pod kept"))
    return out


# --- the joint binding order --------------------------------------------------------------------

BINDING_ORDER = "BindingOrder"
JOINT_BUDGET = 20_000  # search states expanded before a plan is rejected as unproven


def _kind(pod: Pod) -> str:
    """Agents of one kind read alike in every Filter (same namespace, labels and spec)."""
    return json.dumps([pod.namespace, pod.labels, pod.metadata.deletion_timestamp is None,
                       pod.spec.model_dump(mode="json")], sort_keys=True, default=str)


def _first_binders(placed: Sequence[Pod], nsl: Mapping[str, Mapping[str, str]]) -> set[int]:
    """The placed agents (indices) that can bind before every other without changing anyone's
    verdict: no hard spread constraint and no required affinity (their own Filters are then
    static, usage or anti-affinity, which the per-rule checks proved hold in every order), no
    placed agent's spread selector counts them (binding early could raise a domain past
    maxSkew), and no placed agent's required affinity term matches them (binding early could
    close a first-pod exception)."""
    spreads = [(p, c) for p in placed for c in ts.hard_constraints(p)]
    terms = list({repr(t): t for p in placed for t in pa.terms_of(p, False)}.values())
    out = set()
    for i, pod in enumerate(placed):
        if ts.hard_constraints(pod) or pa.terms_of(pod, False):
            continue
        if any(ts.counts_toward(c, owner, pod) for owner, c in spreads):
            continue
        own_ns = pa._ns_labels(pod.namespace, nsl)
        if any(pa.term_matches(t, pod, own_ns) for t in terms):
            continue
        out.add(i)
    return out


def needs_joint_order(assignment: Mapping[str, str], snap: Snapshot) -> bool:
    """Only PodTopologySpread and InterPodAffinity's required affinity depend on the binding
    order (static rules do not; NodeResourcesFit and anti-affinity only grow stricter as pods
    bind, so a final state that passes passes at every step). With one of the two absent, the
    other rule's own exact order search is the joint one."""
    pending = {p.ref: p for p in snap.pending}
    pods = [pending[a] for a in assignment if a in pending]
    return (any(ts.hard_constraints(p) for p in pods)
            and any(pa.terms_of(p, False) for p in pods))


def joint_order_violations(assignment: Mapping[str, str], snap: Snapshot,
                           budget: int = JOINT_BUDGET) -> list[Violation]:
    """BindingOrder violations: empty iff the placed agents bind one at a time in one order,
    each passing every Filter against the running pods plus the agents bound before it.

    Precondition: every rule's own verify passed. Then the static Filters hold at every step,
    and so do NodeResourcesFit and anti-affinity (both only grow stricter as pods bind, and the
    final state passes them); what is left to order is PodTopologySpread's skew and
    InterPodAffinity's required affinity, which this search tracks incrementally with kube's
    reading (the same counts `explain` derives from a ClusterView, updated one bind at a time,
    so a step costs no rebuild). The reasons reported for agents left unbound are node_reasons
    against the ClusterView of the longest order found."""
    pending = {p.ref: p for p in snap.pending}
    nodes = {n.name: n for n in snap.nodes}
    placed = [(pending[a], nodes[n]) for a, n in assignment.items()
              if a in pending and n in nodes]
    nsl = {name: snap.namespace_labels(name) for name in
           {p.namespace for p in (*snap.running, *snap.pending)}
           | {ns.name for ns in snap.namespaces}}
    free = _first_binders([p for p, _ in placed], nsl)
    first = [pn for i, pn in enumerate(placed) if i in free]
    searched = [pn for i, pn in enumerate(placed) if i not in free]
    if not searched:
        return []
    search = _JointSearch(snap, nsl, first, searched)
    return search.run(budget)


class _JointSearch:
    """Depth-first search for one binding order, over items (agents of one kind on one node,
    interchangeable): a state is how many of each item are still unbound, which fixes every
    count, so no state is expanded twice. Within a state the bindable items are tried most
    constrained first, then lowest spread skew (topology_spread's lowest-domain-first), so the
    first descent is the greedy fixpoint and backtracking only starts where it gets stuck."""

    def __init__(self, snap: Snapshot, nsl: Mapping[str, Mapping[str, str]],
                 first: list[tuple[Pod, Node]], searched: list[tuple[Pod, Node]]) -> None:
        self.snap, self.nsl = snap, nsl
        by_name = {n.name: n for n in snap.nodes}
        # always bound: the running pods and the agents that bind first
        self.fixed = [(p, p.spec.node_name or "") for p in snap.running] + [
            (p, n.name) for p, n in first]
        fixed_nodes = [(p, by_name[n]) for p, n in self.fixed if n in by_name]
        item_of: dict[tuple[str, str], int] = {}
        kinds: dict[str, int] = {}
        self.reps: list[Pod] = []
        self.pods: list[list[Pod]] = []
        self.node: list[Node] = []
        self.kind: list[int] = []
        for p, n in searched:
            k = _kind(p)
            if k not in kinds:
                kinds[k] = len(self.reps)
                self.reps.append(p.model_copy())  # in no view: InterPodAffinity skips itself
            if (k, n.name) not in item_of:
                item_of[(k, n.name)] = len(self.pods)
                self.pods.append([])
                self.node.append(n)
                self.kind.append(kinds[k])
            self.pods[item_of[(k, n.name)]].append(p)
        reps, nk, ni = self.reps, len(self.reps), len(self.pods)
        self.total = [len(ps) for ps in self.pods]
        self.left = list(self.total)

        # PodTopologySpread: one counter per (namespace, selector, key, eligible nodes)
        self.counters: dict[tuple[object, ...], ts._Counter] = {}
        self.spread: list[list[tuple[ts.SpreadConstraint, tuple[object, ...], int]]] = []
        for k in range(nk):
            cs = ts.hard_constraints(reps[k])
            row = []
            for c in cs:
                ok = frozenset(n.name for n in snap.nodes if ts.eligible(reps[k], cs, c, n))
                cid = (reps[k].namespace, c.selector, c.topology_key, ok)
                if cid not in self.counters:
                    self.counters[cid] = ts._counter(reps[k], cs, c, snap.nodes, self.fixed)
                row.append((c, cid, int(ts.selector_matches(c.selector, reps[k].labels))))
            self.spread.append(row)
        # the counters an item moves when one of its agents binds
        self.moves: list[list[tuple[ts._Counter, str]]] = []
        for i in range(ni):
            pod, node = self.pods[i][0], self.node[i]
            self.moves.append([
                (ctr, node.labels[str(cid[2])]) for cid, ctr in self.counters.items()
                if node.name in ctr.nodes and pod.namespace == cid[0]
                and pod.metadata.deletion_timestamp is None
                and ts.selector_matches(cid[1], pod.labels)])  # type: ignore[arg-type]
        self.mins: dict[tuple[int, int], int] = {}  # (id(counter), minDomains) -> minimum

        # InterPodAffinity: per kind, topology pairs counted over the bound pods
        self.aff = [pa.terms_of(r, False) for r in reps]
        self.aff_keys = [tuple(t.topology_key for t in terms) for terms in self.aff]
        self.self_match = [bool(self.aff[k]) and pa.matches_all(self.aff[k], reps[k], nsl)
                           for k in range(nk)]
        self.pairs: list[Counter[tuple[str, str]]] = []
        self.blocked: list[Counter[tuple[str, str]]] = []  # anti-affinity, both directions
        for k in range(nk):
            state = pa.pre_filter(reps[k], fixed_nodes, nsl)
            self.pairs.append(Counter(dict.fromkeys(state.affinity_pairs, 1)))
            self.blocked.append(Counter(dict.fromkeys(
                state.anti_pairs | state.existing_pairs, 1)))
        # what binding one agent of item i adds to each kind's pairs
        anti = [pa.terms_of(r, True) for r in reps]
        self.adds: list[list[tuple[int, list[tuple[str, str]], list[tuple[str, str]]]]] = []
        for i in range(ni):
            q, m = self.pods[i][0], self.node[i]
            q_ns = pa._ns_labels(q.namespace, nsl)
            q_anti = anti[self.kind[i]]
            row2 = []
            for k in range(nk):
                aff_add = [(t.topology_key, m.labels[t.topology_key]) for t in self.aff[k]
                           if t.topology_key in m.labels] if (
                    self.aff[k] and pa.matches_all(self.aff[k], q, nsl)) else []
                k_ns = pa._ns_labels(reps[k].namespace, nsl)
                block = [(t.topology_key, m.labels[t.topology_key]) for t in anti[k]
                         if t.topology_key in m.labels and pa.term_matches(t, q, q_ns)]
                block += [(t.topology_key, m.labels[t.topology_key]) for t in q_anti
                          if t.topology_key in m.labels and pa.term_matches(t, reps[k], k_ns)]
                if aff_add or block:
                    row2.append((k, aff_add, block))
            self.adds.append(row2)
        self.constrained = [bool(self.spread[k]) or bool(self.aff[k]) for k in range(nk)]
        self.pair_total = [sum(self.pairs[k].values()) for k in range(nk)]
        # per item: (counter, its domain value, selfMatch, maxSkew, (id(counter), minDomains))
        self.checks = [[(self.counters[cid], self.node[i].labels.get(c.topology_key), self_match,
                         c.max_skew, (id(self.counters[cid]), c.min_domains))
                        for c, cid, self_match in self.spread[self.kind[i]]]
                       for i in range(ni)]
        # counts only grow, so no minimum ever exceeds its value once every agent is bound: an
        # agent already more than maxSkew above that can never bind (the state is a dead end)
        for i in range(ni):
            self.bind(i, self.total[i])
        self.final_mins = {(id(ctr), c.min_domains): ctr.minimum(c.min_domains)
                           for row in self.spread for c, cid, _ in row
                           for ctr in (self.counters[cid],)}
        # likewise affinity pairs only grow: an agent whose domains hold no match even then
        # binds only by the first-pod exception, and once that closes it never reopens
        self.final_support = [self._supported(i) for i in range(ni)]
        for i in range(ni):
            self.bind(i, -self.total[i])

    # --- one bind, undone by delta -1 ---------------------------------------------------------

    def bind(self, i: int, delta: int) -> None:
        self.left[i] -= delta
        self.mins.clear()
        for ctr, v in self.moves[i]:
            ctr.counts[v] = ctr.counts.get(v, 0) + delta
        for k, aff_add, block in self.adds[i]:
            for pair in aff_add:
                self.pairs[k][pair] += delta
            self.pair_total[k] += delta * len(aff_add)
            for pair in block:
                self.blocked[k][pair] += delta

    def spread_state(self, i: int) -> int | None:
        """The sum of the item's spread skews now; -1 when some constraint rejects it now
        ; None when it can never bind (no topology key; or above the final minimum: counts only
        grow, so no minimum ever exceeds its value once every agent is bound)."""
        total = 0
        for ctr, v, self_match, s, key in self.checks[i]:
            if v is None:  # missing required label: never
                return None
            here = ctr.counts.get(v, 0) + self_match
            if here - self.final_mins[key] > s:
                return None
            lo = self.mins.get(key)
            if lo is None:
                lo = self.mins[key] = ctr.minimum(key[1])
            if total >= 0:
                total = -1 if here - lo > s else total + here - lo
        return total

    def affinity_ok(self, i: int) -> bool:
        """InterPodAffinity's Filter (PreFiltered.reason) on the current counts."""
        k, labels = self.kind[i], self.node[i].labels
        if self.aff_keys[k]:
            if not self.final_support[i] and not self._exception_open(k):
                return False
            pairs = self.pairs[k]
            if not self._exception_open(k) and not all(
                    key in labels and pairs[(key, labels[key])] > 0 for key in self.aff_keys[k]):
                return False
        blocked = self.blocked[k]
        return not (blocked and any(blocked.get(kv, 0) > 0 for kv in labels.items()))

    def _supported(self, i: int) -> bool:
        k, labels = self.kind[i], self.node[i].labels
        return all(key in labels and self.pairs[k][(key, labels[key])] > 0
                   for key in self.aff_keys[k])

    def _exception_open(self, k: int) -> bool:
        return self.self_match[k] and not self.pair_total[k]

    def dead(self, i: int) -> bool:
        """No later bind can make the item bindable: a dead end for the whole state. Affinity
        pairs only grow too: an agent whose domains hold no match even once every agent is
        bound binds only by the first-pod exception, which never reopens once closed."""
        if self.aff_keys[self.kind[i]] and not self.final_support[i] and \
                not self._exception_open(self.kind[i]):
            return True
        return self.spread_state(i) is None

    def choices(self) -> list[int]:
        """The items that can bind now, best first; none when some item can never bind."""
        ranked = []
        for i, n in enumerate(self.left):
            if not n:
                continue
            sk = self.spread_state(i)
            if sk is None or (self.aff_keys[self.kind[i]] and not self.final_support[i]
                              and not self._exception_open(self.kind[i])):
                return []  # dead
            if sk >= 0 and self.affinity_ok(i):
                ranked.append((not self.constrained[self.kind[i]], sk, i))
        return [i for *_, i in sorted(ranked)]

    # --- the search ---------------------------------------------------------------------------

    def run(self, budget: int) -> list[Violation]:
        left = self.left
        visited = {tuple(left)}
        path: list[int] = []
        frames = [self.choices()]
        best: list[int] = []
        steps = 0
        while True:
            if not any(left):
                return []
            frame = frames[-1]
            if not frame:
                frames.pop()
                if not path:
                    break
                self.bind(path.pop(), -1)
                continue
            i = frame.pop(0)
            self.bind(i, 1)
            state = tuple(left)
            if state in visited:
                self.bind(i, -1)
                continue
            visited.add(state)
            path.append(i)
            if len(path) > len(best):
                best = list(path)
            steps += 1
            if steps > budget:
                while path:
                    self.bind(path.pop(), -1)
                for j in best:
                    self.bind(j, 1)
                return self.stuck(f"no binding order found within the search budget ({budget} "
                                  f"states)", everyone=True)
            frames.append(self.choices())
        for j in best:  # replay the longest order found, and name what it left unbound
            self.bind(j, 1)
        return self.stuck("no binding order passes every Filter for every agent")

    def stuck(self, headline: str, everyone: bool = False) -> list[Violation]:
        """The agents the longest order found left unbound that cannot bind after it, with
        node_reasons against its ClusterView (`everyone`: every agent it left unbound)."""
        extra = {p.ref: self.node[j].name for j in range(len(self.pods))
                 for p in self.pods[j][:self.total[j] - self.left[j]]}
        extra.update({p.ref: n for p, n in self.fixed[len(self.snap.running):]})
        usage = cluster_usage(self.snap, extra)
        unbound, bound = sum(self.left), sum(self.total) - sum(self.left)
        # agents no later bind can help (spread already past every reachable minimum) first
        dead = [i for i, n in enumerate(self.left) if n and self.dead(i)]
        found: list[tuple[int, str]] = []
        for i, n in enumerate(self.left):
            if not n or (dead and i not in dead):
                continue
            k = self.kind[i]
            rs = node_reasons(self.reps[k], self.node[i], usage[self.node[i].name],
                              run_pre_filters(self.reps[k]))
            if rs:
                found.append((i, f"{rs[0].plugin}: {rs[0].message}"))
            elif everyone:
                found.append((i, "it could bind, but the search ran out first"))
        if not found:  # every one could bind, yet each choice led to a dead end
            found = [(i, "each order binding it leaves another agent unbindable")
                     for i, n in enumerate(self.left) if n]
        out = []
        for i, why in found:
            for p in self.pods[i][self.total[i] - self.left[i]:]:
                out.append(Violation(BINDING_ORDER, p.ref, self.node[i].name,
                                     f"{headline}; after the longest order found "
                                     f"({bound} of {bound + unbound} bound) it cannot bind "
                                     f"here: {why}"))
        return out
