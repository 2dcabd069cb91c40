"""Priority preemption, decided in the same solve as the placements.

kube-scheduler preempts one pod at a time in PostFilter: it picks a node where evicting
strictly-lower-priority pods lets the pod fit, keeps ("reprieves") as many of those victims as
it can, highest priority first, and breaks ties between nodes by fewest PodDisruptionBudget
violations, then the lowest highest-victim priority, the lowest priority sum, the fewest victims.
Here every running pod that may be evicted is a 0/1 variable of the window's model:

- a victim is a running pod of lower priority than some agent that may preempt it (the agent's
  `preemptionPolicy` is not `Never`) on a node that agent passes every non-resource Filter;
- an eviction is allowed only on a node that receives a strictly-higher-priority preempting agent
  (so never on a node where the agent fails an unresolvable rule: it is not placed there);
- freed capacity counts in NodeResourcesFit; PDBs cap evictions by `status.disruptionsAllowed`
  (hard by default; `best-effort` lets the solver exceed a budget, each excess eviction costing
  more than any eviction within budget, as kube prefers nodes with fewest violations);
- the objective counts an eviction at the victim's priority level in the same lexicographic
  ladder as placements: one agent of priority p outweighs any number of victims below p (kube
  preempts as many as needed), and a victim is never traded for an agent of its own priority or
  lower. Among plans placing the same agents the `preemption` term minimises damage: evictions
  plus lost work since the victim's last checkpoint (annotation `agentplace.io/last-checkpoint`,
  RFC 3339; else `status.startTime`; in minutes, capped at one day).

Victims are only pods no agent of the window counts in a topology spread constraint or a pod
(anti-)affinity term, and whose own required anti-affinity matches no agent: evicting them then
changes resources and pod slots only, which keeps the encoding exact. A pod outside that set is
never evicted (deliberately narrower than kube, which may also evict to satisfy inter-pod rules).
After the solve, kube's reprieve runs on each node (highest priority first, PDB-violating victims
first), so every eviction in a plan is necessary on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from ortools.sat.python import cp_model

from models import Node, Pod, PodDisruptionBudget
from optimizer.index import Index
from optimizer.plan import Eviction
from optimizer.rules import pod_affinity as pa
from optimizer.rules.base import ClusterView, NodeUsage, Reason
from optimizer.snapshot import Snapshot, resolve_priorities

if TYPE_CHECKING:
    from optimizer.model import ModelBuilder

CHECKPOINT_ANNOTATION = "agentplace.io/last-checkpoint"
BASE_PRIORITY_ANNOTATION = "agentplace.io/base-priority"
MAX_LOST_MINUTES = 24 * 60
EVICTION_REASON = "PreemptionByScheduler"


def preemption_policy(pod: Pod, snap_classes: dict[str, str]) -> str:
    """spec.preemptionPolicy, else the PriorityClass's (admission copies it), else the default."""
    if pod.spec.preemption_policy:
        return pod.spec.preemption_policy
    return snap_classes.get(pod.spec.priority_class_name or "", "PreemptLowerPriority")


def kube_priority(pod: Pod, resolved: int) -> int:
    """The priority preemption compares: rolling windows age a waiting agent's priority for
    agentplace's own ordering and keep its kube priority in BASE_PRIORITY_ANNOTATION."""
    raw = pod.metadata.annotations.get(BASE_PRIORITY_ANNOTATION)
    try:
        return int(raw) if raw is not None else resolved
    except ValueError:
        return resolved


def pdb_matches(pdb: PodDisruptionBudget, pod: Pod) -> bool:
    """kube's preemption reading: same namespace, and a nil or empty selector matches nothing."""
    sel = pdb.spec.selector
    if pod.namespace != pdb.namespace or sel is None:
        return False
    if not sel.match_labels and not sel.match_expressions:
        return False
    return pa.selector_matches(sel, pod.labels)


def lost_minutes(pod: Pod, now: datetime) -> int:
    raw = pod.metadata.annotations.get(CHECKPOINT_ANNOTATION)
    since = pod.status.start_time
    if raw:
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            since = pod.status.start_time
    if since is None:
        return 0
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return int(min(MAX_LOST_MINUTES, max(0.0, (now - since).total_seconds() // 60)))


@dataclass(frozen=True)
class Victims:
    """Running pods the window may evict; index v throughout."""

    pods: np.ndarray  # int64[v]: index into snap.running
    node: np.ndarray  # int64[v]
    priority: np.ndarray  # int64[v]
    req: np.ndarray  # int64[v, res]; the pod slot included
    damage: np.ndarray  # int64[v]: 1 + lost minutes
    preempts: np.ndarray  # bool[cls]: the class may preempt (policy)
    agent_priority: np.ndarray  # int64[cls]: kube priority (without the windows' ageing)
    pdbs: tuple[PodDisruptionBudget, ...] = ()
    pdb_members: tuple[np.ndarray, ...] = ()  # per pdb: int64 victims it covers
    allowed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [pdb]
    pdb_mode: str = "hard"
    _extra: dict[int, np.ndarray] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return int(self.pods.size)

    def extra(self, ix: Index, priority: int) -> np.ndarray:
        """int64[node, res]: capacity an agent of `priority` could free by evicting every
        victim below it (PDB budgets aside, as kube's dry run)."""
        if priority not in self._extra:
            out = np.zeros((ix.num_nodes, len(ix.resources)), dtype=np.int64)
            below = self.priority < priority
            np.add.at(out, self.node[below], self.req[below])
            self._extra[priority] = out
        return self._extra[priority]


def no_victims(ix: Index) -> Victims:
    return Victims(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros((0, len(ix.resources)), np.int64), np.zeros(0, np.int64),
                   np.zeros(ix.num_classes, dtype=bool), ix.class_priority.copy())


def _entangled(ix: Index) -> list[bool]:
    """Per running pod: does evicting it change anything but resources for this window?"""
    snap = ix.snap
    agents = [c.pod for c in ix.classes]
    nsl = {ns: snap.namespace_labels(ns) for ns in
           {p.namespace for p in (*snap.running, *snap.pending)}}
    selectors = []  # (namespace or None, LabelSelector) every agent may count
    terms: list[pa.Term] = []
    for pod in agents:
        for c in pod.spec.topology_spread_constraints:
            if c.label_selector is not None:
                selectors.append((pod.namespace, c.label_selector))
        aff = pod.spec.affinity
        for block in ((aff.pod_affinity, aff.pod_anti_affinity) if aff else ()):
            if block is None:
                continue
            for w in block.preferred_during_scheduling_ignored_during_execution:
                if w.pod_affinity_term.label_selector is not None:
                    selectors.append((None, w.pod_affinity_term.label_selector))
        terms += pa.terms_of(pod, False) + pa.terms_of(pod, True)
    out = []
    for pod in snap.running:
        hit = any((ns is None or ns == pod.namespace) and pa.selector_matches(sel, pod.labels)
                  for ns, sel in selectors)
        hit = hit or any(pa.term_matches(t, pod, nsl[pod.namespace]) for t in terms)
        own = pa.terms_of(pod, True)
        hit = hit or any(pa.term_matches(t, a, nsl[a.namespace]) for t in own for a in agents)
        out.append(hit)
    return out


def find_victims(ix: Index, enabled: bool = True, pdb_mode: str = "hard",
                 now: datetime | None = None) -> Victims:
    """The running pods this window may evict (see the module docstring for which)."""
    snap = ix.snap
    if not enabled or not snap.running or not ix.num_classes:
        return no_victims(ix)
    policies = {pc.name: pc.preemption_policy for pc in snap.priority_classes}
    preempts = np.array([preemption_policy(c.pod, policies) != "Never" for c in ix.classes],
                        dtype=bool)
    if not preempts.any():
        return no_victims(ix)
    agent_priority = np.array([kube_priority(c.pod, c.priority) for c in ix.classes],
                              dtype=np.int64)
    top = int(agent_priority[preempts].max())
    prio = resolve_priorities(snap.running, snap.priority_classes)
    running_prio = np.array([prio[p.ref] for p in snap.running], dtype=np.int64)
    node = np.array([snap.node_pos[p.spec.node_name or ""] for p in snap.running], dtype=np.int64)
    below = running_prio < top
    below &= np.array([p.metadata.deletion_timestamp is None for p in snap.running], dtype=bool)
    if not below.any():
        return no_victims(ix)
    entangled = np.array(_entangled(ix), dtype=bool)
    keep = np.nonzero(below & ~entangled)[0]
    # a node no preempting class could ever use keeps its pods
    useful = np.zeros(ix.num_nodes, dtype=bool)
    for rule_mask in _static_masks(ix):
        useful |= rule_mask[preempts].any(axis=0)
    keep = keep[useful[node[keep]]]
    now = now or datetime.now(UTC)
    req = np.zeros((keep.size, len(ix.resources)), dtype=np.int64)
    for k, i in enumerate(keep.tolist()):
        for r, v in snap.running[i].requests().items():
            req[k, ix.res_pos[r]] = v
        req[k, ix.pods_res] = 1
    damage = np.array([1 + lost_minutes(snap.running[i], now) for i in keep.tolist()],
                      dtype=np.int64)
    pdbs, members, allowed = [], [], []
    for pdb in snap.pdbs:
        m = np.array([k for k, i in enumerate(keep.tolist()) if pdb_matches(pdb, snap.running[i])],
                     dtype=np.int64)
        if m.size:
            pdbs.append(pdb)
            members.append(m)
            allowed.append(max(0, pdb.status.disruptions_allowed))
    return Victims(keep.astype(np.int64), node[keep], running_prio[keep], req, damage, preempts,
                   agent_priority, tuple(pdbs), tuple(members), np.array(allowed, dtype=np.int64), pdb_mode)


def _static_masks(ix: Index) -> list[np.ndarray]:
    """Every non-resource Filter's mask, combined: where an agent could go given room."""
    from optimizer.rules import RULES  # the registry imports rules that import this module

    mask = np.ones((ix.num_classes, ix.num_nodes), dtype=bool)
    for rule in RULES:
        if rule.name == "NodeResourcesFit":
            continue
        m = rule.prefilter(ix)
        if m is not None:
            mask &= m
    return [mask]


# --- the model ------------------------------------------------------------------------------


@dataclass
class EvictionVars:
    evict: list[cp_model.IntVar]  # per victim
    excess: list[cp_model.IntVar]  # per pdb, best-effort only: evictions beyond the budget
    by_node: dict[int, list[int]]  # node -> victims


def encode(mb: ModelBuilder, victims: Victims) -> EvictionVars:
    """Eviction variables, their permission and the PDB budgets."""
    model = mb.model
    evict = [model.new_bool_var(f"evict_{v}") for v in range(len(victims))]
    by_node: dict[int, list[int]] = {}
    for v, n in enumerate(victims.node.tolist()):
        by_node.setdefault(n, []).append(v)
    for n, vs in by_node.items():
        ps = mb.pairs_of_node.get(n, np.zeros(0, dtype=np.int64))
        cls = mb.pair_cls[ps]
        for v in vs:
            ok = ps[victims.preempts[cls] & (victims.agent_priority[cls] > victims.priority[v])]
            if ok.size == 0:
                model.add(evict[v] == 0)
            else:  # only for a strictly-higher-priority preempting agent on the same node
                model.add(evict[v] <= cp_model.LinearExpr.sum([mb.x[p] for p in ok.tolist()]))
            mb.count_constraint("preemption")
    excess = []
    for d, members in enumerate(victims.pdb_members):
        total = cp_model.LinearExpr.sum([evict[v] for v in members.tolist()])
        allowed = int(victims.allowed[d])
        if victims.pdb_mode == "hard":
            if members.size > allowed:
                model.add(total <= allowed)
                mb.count_constraint("PodDisruptionBudget")
        else:
            e = model.new_int_var(0, int(members.size), f"pdb_excess_{d}")
            model.add(total - allowed <= e)
            excess.append(e)
            mb.count_constraint("PodDisruptionBudget")
    return EvictionVars(evict, excess, by_node)


def freed(victims: Victims, ev: EvictionVars | None, node: int, r: int
          ) -> list[tuple[int, cp_model.IntVar]]:
    """(request, eviction var) pairs that free resource r on `node`."""
    if ev is None:
        return []
    return [(int(victims.req[v, r]), ev.evict[v]) for v in ev.by_node.get(node, [])
            if victims.req[v, r] > 0]


def pdb_excess(victims: Victims, evicted: np.ndarray) -> int:
    """Evictions beyond the PDBs' disruptionsAllowed, summed over PDBs."""
    return sum(max(0, int(evicted[m].sum()) - int(a))
               for m, a in zip(victims.pdb_members, victims.allowed.tolist(), strict=True))


# --- after the solve ------------------------------------------------------------------------


def reprieve(ix: Index, victims: Victims, counts: np.ndarray, evicted: np.ndarray) -> np.ndarray:
    """kube's reprieve per node: add victims back, PDB-violating ones first, then by priority
    (highest first), while the node's placements still fit. Returns the new evicted mask."""
    evicted = evicted.copy()
    if not evicted.any():
        return evicted
    violating = np.zeros(len(victims), dtype=bool)
    for members, allowed in zip(victims.pdb_members, victims.allowed.tolist(), strict=True):
        if int(evicted[members].sum()) > allowed:
            violating[members] = True
    load = ix.used + counts.T @ ix.req  # [node, res], victims still counted
    for n in np.unique(victims.node[evicted]).tolist():
        vs = np.nonzero(evicted & (victims.node == n))[0]
        order = sorted(vs.tolist(), key=lambda v: (not violating[v], -int(victims.priority[v]),
                                                   int(victims.pods[v])))
        gone = victims.req[vs].sum(axis=0)
        asked = counts[:, n] @ ix.req > 0  # fitsRequest skips resources nobody requests
        for v in order:
            after = load[n] - gone + victims.req[v]
            if np.all((after <= ix.alloc[n]) | ~asked):
                evicted[v] = False
                gone = gone - victims.req[v]
    return evicted


def attribute(ix: Index, victims: Victims, counts: np.ndarray, evicted: np.ndarray
              ) -> list[tuple[int, int]]:
    """(victim, class) per eviction: the highest-priority preempting class placed on the
    victim's node above the victim's priority (the agent it makes room for)."""
    out = []
    for v in np.nonzero(evicted)[0].tolist():
        n = int(victims.node[v])
        cand = np.nonzero((counts[:, n] > 0) & victims.preempts
                          & (victims.agent_priority > victims.priority[v]))[0]
        if cand.size:
            out.append((v, int(cand[np.argmax(victims.agent_priority[cand])])))
    return out


def evictions(ix: Index, counts: np.ndarray, evicted: np.ndarray,
               placements: list[tuple[str, str]]) -> list[Eviction]:
    """The plan's evictions, each with the agent it makes room for (the highest-priority
    preempting agent placed on its node) and kube's reason."""
    victims = ix.victims
    if victims is None or not evicted.any():
        return []
    snap = ix.snap
    agent_at: dict[tuple[int, str], str] = {}
    for ref, node in placements:
        agent_at.setdefault((int(ix.class_of[snap.agent_pos[ref]]), node), ref)
    over = set()
    for d, members in enumerate(victims.pdb_members):
        if int(evicted[members].sum()) > int(victims.allowed[d]):
            over |= {(int(v), victims.pdbs[d].ref) for v in members.tolist() if evicted[v]}
    out = []
    for v, c in attribute(ix, victims, counts, evicted):
        pod = snap.running[int(victims.pods[v])]
        node = ix.node_names[int(victims.node[v])]
        agent = agent_at[(c, node)]
        reason = (f"{EVICTION_REASON}: agentplace: preempting to accommodate a higher "
                  f"priority pod ({agent}, priority {int(victims.agent_priority[c])} > "
                  f"{int(victims.priority[v])})")
        pdbs = sorted(ref for vv, ref in over if vv == v)
        if pdbs:
            reason += f"; exceeds the disruption budget of {', '.join(pdbs)} (--pdb best-effort)"
        out.append(Eviction(pod.ref, node, reason, agent, int(victims.priority[v])))
    return out



# --- the kube-like greedy's PostFilter ----------------------------------------------------------


def candidates_budget(num_nodes: int) -> int:
    """kube's DefaultPreemption: at least 100 candidates or 10 % of the nodes."""
    return min(num_nodes, max(100, num_nodes // 10))


def kube_preempt(ix: Index, victims: Victims, c: int, nodes: np.ndarray, free: np.ndarray,
                 evicted: np.ndarray, pdb_used: np.ndarray) -> tuple[int, np.ndarray] | None:
    """One DefaultPreemption PostFilter for an agent of class c that no node fits: the node and
    the victims to evict (victim indices), or None. `nodes`: where every other Filter passes;
    `free`: [node, res] now; `evicted`: victims already gone; `pdb_used`: evictions per PDB."""
    if not victims.preempts[c] or len(victims) == 0:
        return None
    prio = int(victims.agent_priority[c])
    req = ix.req[c]
    live = ~evicted & (victims.priority < prio)
    if victims.pdb_mode == "hard":
        for d, members in enumerate(victims.pdb_members):
            if pdb_used[d] >= victims.allowed[d]:
                live[members] = False
    extra = np.zeros_like(free)
    np.add.at(extra, victims.node[live], victims.req[live])
    ok = nodes & np.all((req <= free + extra) | (req == 0), axis=1) & (extra.any(axis=1))
    cand = np.nonzero(ok)[0][:candidates_budget(ix.num_nodes)]
    if cand.size == 0:
        return None
    covered = np.zeros(len(victims), dtype=bool)
    for members in victims.pdb_members:
        covered[members] = True
    at = np.isin(victims.node, cand)
    if not (covered & live & at).any():
        return _preempt_without_pdbs(victims, req, free, np.nonzero(live & at)[0])
    best: tuple[tuple[int, int, int, int, int], int, np.ndarray] | None = None
    for n in cand.tolist():
        vs = np.nonzero(live & (victims.node == n))[0]
        left = pdb_used.copy()
        viol = np.zeros(vs.size, dtype=bool)
        for d, members in enumerate(victims.pdb_members):
            inside = np.isin(vs, members)
            for k in np.nonzero(inside)[0].tolist():
                left[d] += 1
                viol[k] |= left[d] > victims.allowed[d]
        order = sorted(range(vs.size), key=lambda k: (not viol[k], -int(victims.priority[vs[k]]),
                                                      int(victims.pods[vs[k]])))
        room = free[n] + victims.req[vs].sum(axis=0) - req
        keep = np.zeros(vs.size, dtype=bool)
        for k in order:  # fitsRequest skips resources the agent does not request
            if np.all((room - victims.req[vs[k]] >= 0) | (req == 0)):
                room = room - victims.req[vs[k]]
                keep[k] = True
        gone = vs[~keep]
        if gone.size == 0:
            continue
        key = (int(viol[~keep].sum()), int(victims.priority[gone].max()),
               int(victims.priority[gone].sum()), int(gone.size), n)
        if best is None or key < best[0]:
            best = (key, n, gone)
    return None if best is None else (best[1], best[2])


def _preempt_without_pdbs(victims: Victims, req: np.ndarray, free: np.ndarray, vs: np.ndarray
                          ) -> tuple[int, np.ndarray] | None:
    """kube_preempt over every candidate node at once when no PDB is involved: the reprieve
    runs in lockstep, the k-th most important victim of every node at step k."""
    order = np.lexsort((victims.pods[vs], -victims.priority[vs], victims.node[vs]))
    vs = vs[order]
    node = victims.node[vs]
    starts = np.r_[0, np.nonzero(np.diff(node))[0] + 1]
    rank = np.arange(vs.size) - np.repeat(starts, np.diff(np.r_[starts, vs.size]))
    nodes = node[starts]
    room = free[nodes].copy()
    np.add.at(room, np.searchsorted(nodes, node), victims.req[vs])
    room -= req
    keep = np.zeros(vs.size, dtype=bool)
    for k in range(int(rank.max()) + 1 if vs.size else 0):
        sel = np.nonzero(rank == k)[0]
        where = np.searchsorted(nodes, node[sel])
        after = room[where] - victims.req[vs[sel]]
        fits = np.all((after >= 0) | (req == 0), axis=1)
        keep[sel[fits]] = True
        room[where[fits]] = after[fits]
    gone = ~keep
    if not gone.any():
        return None
    g_node = node[gone]
    g_prio = victims.priority[vs[gone]]
    cols = np.searchsorted(nodes, g_node)
    total = np.zeros(nodes.size, dtype=np.int64)
    count = np.zeros(nodes.size, dtype=np.int64)
    high = np.full(nodes.size, np.iinfo(np.int64).min)
    np.maximum.at(high, cols, g_prio)
    np.add.at(total, cols, g_prio)
    np.add.at(count, cols, 1)
    valid = count > 0
    # kube's pickOneNodeForPreemption: lowest highest-victim priority, lowest sum, fewest
    pick = np.lexsort((nodes[valid], count[valid], total[valid], high[valid]))[0]
    n = int(nodes[valid][pick])
    return n, vs[gone & (node == n)]


# --- explanations ---------------------------------------------------------------------------

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
PDB_BLOCKED = "Evicting the lower-priority pods would exceed a PodDisruptionBudget"


@dataclass(frozen=True)
class DryRun:
    """kube's SelectVictimsOnNode for one pod and node, read from the raw objects: the fewest
    lower-priority pods whose eviction lets the node take the pod (highest priority reprieved
    first), and the PDBs those evictions would exceed."""

    node: str
    victims: tuple[Pod, ...]
    pdbs: tuple[str, ...]


def dry_run(pod: Pod, node: Node, snap: Snapshot, usage: NodeUsage, priority: int,
            by_node: dict[int, dict[str, list[Pod]]] | None = None) -> DryRun | None:
    """`by_node`: a cache of the cluster view's pods per node, shared by the caller's dry runs
    (scanning every bound pod for each node was 97 % of an over-full openb window)."""
    from optimizer.explain import node_reasons  # explain reads the rules registry

    view = usage.cluster
    on_node = _pods_on(view, node.name, {} if by_node is None else by_node)
    prio = resolve_priorities(on_node, snap.priority_classes)
    lower = sorted((p for p in on_node if prio[p.ref] < priority),
                   key=lambda p: (-prio[p.ref], p.ref))
    if not lower:
        return None

    def without(gone: list[Pod]) -> NodeUsage:
        refs = {p.ref for p in gone}
        u = NodeUsage(dict(usage.requested), usage.pods, None if view is None else ClusterView(
            view.nodes, tuple((p, n) for p, n in view.pods if p.ref not in refs),
            view.namespace_labels))
        for p in gone:
            for r, v in p.requests().items():
                u.requested[r] = u.requested.get(r, 0) - v
            u.pods -= 1
        return u

    if node_reasons(pod, node, without(lower)):
        return None
    gone = list(lower)
    for p in list(lower):  # reprieve, highest priority first
        trial = [g for g in gone if g is not p]
        if not node_reasons(pod, node, without(trial)):
            gone = trial
    left: dict[str, int] = {}
    over = []
    for d in snap.pdbs:
        hit = sum(pdb_matches(d, p) for p in gone)
        if hit > max(0, d.status.disruptions_allowed):
            over.append(d.ref)
        left[d.ref] = hit
    return DryRun(node.name, tuple(gone), tuple(over))


def _pods_on(view: ClusterView | None, node: str, cache: dict[int, dict[str, list[Pod]]]
             ) -> list[Pod]:
    """The view's pods bound to `node`, grouped once per view (keyed by its identity)."""
    if view is None:
        return []
    groups = cache.get(id(view))
    if groups is None:
        groups = {}
        for p, n in view.pods:
            if p.spec.node_name == n:
                groups.setdefault(n, []).append(p)
        cache[id(view)] = groups
    return list(groups.get(node, ()))


def postfilter(pod: Pod, snap: Snapshot, usage: Mapping[str, NodeUsage],
               rejected: Mapping[str, list[Reason]], enabled: bool, pdb_mode: str
               ) -> tuple[str | None, DryRun | None]:
    """kube's PostFilter message for an agent no node takes ("preemption: ..."), and the best
    dry run (the node where the fewest, lowest-priority evictions would place it), if any."""
    policies = {pc.name: pc.preemption_policy for pc in snap.priority_classes}
    priority = kube_priority(pod, resolve_priorities([pod], snap.priority_classes)[pod.ref])
    nodes = {n.name: n for n in snap.nodes}
    histogram: Counter[str] = Counter()
    best: DryRun | None = None
    by_node: dict[int, dict[str, list[Pod]]] = {}
    for name, reasons in rejected.items():
        if any(r.unresolvable for r in reasons):
            histogram[NOT_HELPFUL] += 1
            continue
        run = dry_run(pod, nodes[name], snap, usage[name], priority, by_node)
        if run is None:
            histogram[NO_VICTIMS + "."] += 1
            continue
        if run.pdbs and pdb_mode == "hard":
            histogram[PDB_BLOCKED] += 1
        else:
            histogram["Preemption would place it here; the window's higher-value plan used it"] += 1
        key = (len(run.pdbs), len(run.victims), run.node)
        if best is None or key < (len(best.pdbs), len(best.victims), best.node):
            best = run
    if not enabled:
        return None, best
    if preemption_policy(pod, policies) == "Never":
        return "preemption: not eligible due to preemptionPolicy=Never.", best
    parts = ", ".join(sorted(f"{n} {reason}" for reason, n in histogram.items()))
    return f"preemption: 0/{len(snap.nodes)} nodes are available: {parts}.", best


def eviction_counterfactual(run: DryRun, pod: Pod, snap: Snapshot, enabled: bool,
                            pdb_mode: str) -> str:
    prio = resolve_priorities(run.victims, snap.priority_classes)
    top = max(prio.values())
    text = (f"fits on {run.node} if {len(run.victims)} pod(s) of priority <= {top} there were "
            f"evicted ({', '.join(p.ref for p in run.victims)})")
    policies = {pc.name: pc.preemption_policy for pc in snap.priority_classes}
    if not enabled:
        return text + "; preemption is off for this solve"
    if preemption_policy(pod, policies) == "Never":
        return text + "; its preemptionPolicy is Never"
    if run.pdbs and pdb_mode == "hard":
        return text + f" (blocked by PDB {', '.join(run.pdbs)})"
    return text
