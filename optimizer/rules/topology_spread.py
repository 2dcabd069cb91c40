"""PodTopologySpread, hard constraints only (whenUnsatisfiable: DoNotSchedule).

ScheduleAnyway constraints are scored by kube, never filtered: they belong to the objective and
are ignored here.

**kube's Filter** (pkg/scheduler/framework/plugins/podtopologyspread/filtering.go, common.go).
For the incoming pod P and each of its DoNotSchedule constraints k (in spec order):

- the selector is `labelSelector` (absent: matches nothing; `{}`: matches everything), with
  `matchLabelKeys` merged in as `key=P's value` for each key P carries;
- a node is *eligible* for k when it has ALL of P's constraint topology keys, passes P's
  nodeSelector + required node affinity if nodeAffinityPolicy is Honor (the default), and has no
  untolerated NoSchedule/NoExecute taint if nodeTaintsPolicy is Honor (default Ignore);
- matchNum(v) = pods in P's namespace, not terminating (no deletionTimestamp), matching the
  selector, on eligible nodes whose key value is v; the eligible domains D are the values of the
  eligible nodes; minMatch = min over D of matchNum, or 0 when |D| < minDomains (default 1);
- a node without the key fails with "(missing required label)" (UnschedulableAndUnresolvable);
  otherwise it fails when matchNum(v) + selfMatch - minMatch > maxSkew, where selfMatch is 1 iff
  the selector matches P's own labels (a pod outside its own selector adds 0).

**The batch reading.** A plan is valid iff its agents can be bound one at a time in some order,
each passing the check against running pods plus the agents bound before it. So an agent may
land in a domain that is behind, and a cluster skewed 4/0 may end 4/2: the final state need not
satisfy maxSkew.

**Encoding.** A *count group* is what one constraint counts: (namespace, selector, topology
key, eligible nodes); its final count is f[u] = R[u] + (placed agents it counts in domain u),
R the running pods. Four cases, each sound; for classes with one hard constraint the first two
are exact (the hypothesis tests check this against a brute-force order search):

1. *Closed group*: every class the group counts (and that could land on an eligible node) has
   this group as its *ordering* constraint (a class orders by at most one: its self-matching
   constraint with the fewest domains; any other constraint of it takes case 3), with the same
   maxSkew s and minDomains. Then a valid order exists iff, for every domain v receiving agents,
       f[v] <= M + s,   M = min over D of f[u]   (M = 0 when |D| < minDomains).
   Necessary: the last agent bound into v saw count f[v] - 1 and a minimum <= M (counts only
   grow), so f[v] - 1 + 1 - M <= s. Sufficient: bind "lowest domain first": each step binds into
   the domain v with the smallest current count c[v] among those with agents left. If the
   global minimum u has agents left, c[v] = c[u] and the skew is 1 <= s. Otherwise u is done,
   c[u] = f[u] >= M, and c[v] + 1 <= f[v] <= M + s <= c[u] + s. With |D| < minDomains the
   minimum is 0 throughout and c[v] + 1 <= f[v] <= s. Encoded with one variable m <= f[u] for
   every u in D and, per receiving domain, f[v] <= m + s enforced by "v receives an agent".
2. *selfMatch = 0 agent* (one hard constraint) *counting a closed group or nothing*: it does not
   move its own counts, so it can be bound first (valid iff R[v] - min R <= s, a constant) or
   last (valid iff f[v] <= M + s, as above); we require one of the two.
3. *Anything else* (a class's non-ordering constraints, groups counted by other classes): an
   order-free bound. At bind time the agent's domain holds at most F[v] - selfMatch others and
   the minimum is at least its start value min R, so F[v] <= min R + s (F = every agent counted
   in v) makes the agent valid in every order. Conservative: it may reject valid plans (on
   empty hosts a hostname constraint next to a zone one allows maxSkew agents per host; case 4
   lifts that for nested pairs).
4. *A nested second constraint* (zone + hostname): a closed group's members all have one more
   self-matching constraint S over the same pods and eligible nodes, each S domain inside one
   of the ordering constraint's domains. They bind in blocks of S's maxSkew levels (`_levels`
   gives the condition and its proof): exact when S's maxSkew is 1; for a larger maxSkew it is
   one sufficient order, ORed with case 3 for S (a literal chooses; the brute-force tests check
   soundness, and exactness for maxSkew 1, with running pods).
Closed groups are touched only by their own members, a class orders by one group only, and
case-3 bounds hold in any order, so the orders compose: each closed group lowest-domain-first,
interleaved arbitrarily (case 4's levels are one such order of its group). (The conjunction
of two constraints' case-1 conditions is necessary but not sufficient: e.g. zone z1 with hosts
h0, h1 and zone z0 with host h2, maxSkew 1 both, empty: final hosts 2/2/3 pass both, yet h2's
third agent needs h0 and h1 at 2 first, and then z1 leads z0 by two.)

**What stays conservative** (plans the verifier would accept that the encoding may reject):
a second constraint with maxSkew > 1 whose plan needs another order than case 4's blocks
and breaks case 3's bound too (brute force on small zone + hostname instances: ~3 % of the
valid plans); a second constraint that is not nested in the ordering one,
counts other pods or nodes, is not shared by every class of the group, or is one of two such
(zone + rack + hostname: case 3 each); any further constraint of a class (case 3); a second
constraint whose levels exceed LEVEL_BUDGET unary literals; groups with minDomains unmet; and
every group that is not closed (other classes counted: case 3).

**Verify** (exact): a depth-first search for a binding order over (agent kind, node) items,
lowest skew first, with memoised states and a step budget; when the budget runs out the plan is
reported as a violation, never accepted. It reads the raw objects with the scalar helpers below
and shares nothing with the encoding but `hard_constraints`, the reading of the pod spec.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from ortools.sat.python import cp_model

from models import Node, Pod
from optimizer.index import MISSING, Index
from optimizer.rules.base import Assignment, ClusterView, NodeUsage, Reason, Violation
from optimizer.rules.node_affinity import class_mask, pod_matches_node
from optimizer.rules.taints import HARD_EFFECTS, tolerated_matrix, untolerated_taint
from optimizer.snapshot import Snapshot

if TYPE_CHECKING:
    from optimizer.baseline import GreedyState
    from optimizer.model import ModelBuilder

REASON = "node(s) didn't match pod topology spread constraints"
LABEL_REASON = "node(s) didn't match pod topology spread constraints (missing required label)"
SEARCH_BUDGET = 20_000  # verify: states expanded before a plan is rejected as unproven
LEVEL_BUDGET = 2_000  # case 4: most unary count literals (S domain x level) per group

Requirement = tuple[str, str, tuple[str, ...]]  # (key, In|NotIn|Exists|DoesNotExist, values)


# --- the pod's constraints, as kube's PreFilter reads them (shared by every reading) ----------


@dataclass(frozen=True)
class SpreadConstraint:
    """topologySpreadConstraint after filterTopologySpreadConstraints: defaults applied and
    matchLabelKeys merged. `selector` None is labels.Nothing() (no labelSelector)."""

    max_skew: int
    topology_key: str
    selector: tuple[Requirement, ...] | None
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def hard_constraints(pod: Pod) -> tuple[SpreadConstraint, ...]:
    """The pod's DoNotSchedule constraints, in spec order."""
    return spread_constraints(pod, "DoNotSchedule")


def soft_constraints(pod: Pod) -> tuple[SpreadConstraint, ...]:
    """The pod's ScheduleAnyway constraints, in spec order (scored, never filtered: they belong
    to the objective's soft term, optimizer/preferences.py)."""
    return spread_constraints(pod, "ScheduleAnyway")


def spread_constraints(pod: Pod, when: str) -> tuple[SpreadConstraint, ...]:
    out = []
    for c in pod.spec.topology_spread_constraints:
        if c.when_unsatisfiable != when:
            continue
        selector: tuple[Requirement, ...] | None = None
        if c.label_selector is not None:
            selector = tuple(
                [(k, "In", (v,)) for k, v in sorted(c.label_selector.match_labels.items())]
                + [(e.key, e.operator, tuple(e.values))
                   for e in c.label_selector.match_expressions])
        keyed = tuple((k, "In", (pod.labels[k],)) for k in c.match_label_keys if k in pod.labels)
        if keyed:  # mergeLabelSetWithSelector: Nothing() has no requirements to keep
            selector = keyed + (selector or ())
        out.append(SpreadConstraint(
            max_skew=c.max_skew, topology_key=c.topology_key, selector=selector,
            min_domains=c.min_domains or 1,
            honor_affinity=(c.node_affinity_policy or "Honor") == "Honor",
            honor_taints=(c.node_taints_policy or "Ignore") == "Honor"))
    return tuple(out)


# --- the kube reading, scalar (verify, explain) -----------------------------------------------


def selector_matches(selector: tuple[Requirement, ...] | None, labels: Mapping[str, str]) -> bool:
    """labels.Selector.Matches; None is labels.Nothing()."""
    if selector is None:
        return False
    for key, op, values in selector:
        value = labels.get(key)
        if op == "In" and (value is None or value not in values):
            return False
        if op == "NotIn" and value is not None and value in values:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def counts_toward(c: SpreadConstraint, owner: Pod, other: Pod) -> bool:
    """countPodsMatchSelector: same namespace as the incoming pod, not terminating, matching."""
    return (other.namespace == owner.namespace and other.metadata.deletion_timestamp is None
            and selector_matches(c.selector, other.labels))


def eligible(pod: Pod, constraints: Sequence[SpreadConstraint], c: SpreadConstraint,
             node: Node) -> bool:
    """A node whose pods count and whose value is a domain (nodeLabelsMatchSpreadConstraints +
    matchNodeInclusionPolicies)."""
    if any(k.topology_key not in node.labels for k in constraints):
        return False
    if c.honor_affinity and not pod_matches_node(pod, node):
        return False
    return not (c.honor_taints and untolerated_taint(pod.spec.tolerations, node, HARD_EFFECTS))


@dataclass
class _Counter:
    """One constraint's view of the cluster: eligible nodes, domains, matching pods per value."""

    nodes: frozenset[str]
    domains: frozenset[str]
    counts: dict[str, int]

    def minimum(self, min_domains: int) -> int:
        if len(self.domains) < min_domains:
            return 0
        return min(self.counts.get(v, 0) for v in self.domains)


def _counter(pod: Pod, constraints: Sequence[SpreadConstraint], c: SpreadConstraint,
             nodes: Sequence[Node], bound: Sequence[tuple[Pod, str]]) -> _Counter:
    ok = {n.name: n.labels[c.topology_key] for n in nodes if eligible(pod, constraints, c, n)}
    counts: dict[str, int] = {}
    for other, node_name in bound:
        if node_name in ok and counts_toward(c, pod, other):
            counts[ok[node_name]] = counts.get(ok[node_name], 0) + 1
    return _Counter(frozenset(ok), frozenset(ok.values()), counts)


def _skew(c: SpreadConstraint, counter: _Counter, value: str, self_match: int) -> int:
    return counter.counts.get(value, 0) + self_match - counter.minimum(c.min_domains)


# --- the index reading, vectorised (prefilter, encode, greedy) --------------------------------


def _compile(selector: tuple[Requirement, ...] | None) -> Callable[[Mapping[str, str]], bool]:
    """A label predicate for the index side (written apart from selector_matches on purpose)."""
    if selector is None:
        return lambda labels: False
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for key, op, values in selector:
        vs = frozenset(values)
        if op == "In":
            checks.append(lambda lb, k=key, vs=vs: lb.get(k, None) in vs)
        elif op == "NotIn":
            checks.append(lambda lb, k=key, vs=vs: k not in lb or lb[k] not in vs)
        elif op == "Exists":
            checks.append(lambda lb, k=key: k in lb)
        else:
            checks.append(lambda lb, k=key: k not in lb)
    return lambda labels: all(f(labels) for f in checks)


@dataclass(frozen=True)
class _Instance:
    """One hard constraint of one class, over the index's nodes and classes."""

    cls: int
    c: SpreadConstraint
    dom: np.ndarray  # int32[node]: code of the node's topology value, MISSING when absent
    eligible: np.ndarray  # bool[node]
    running: np.ndarray  # int64[node]: matching running pods, 0 off eligible nodes
    affects: np.ndarray  # bool[cls]: that class's agents count here (when on eligible nodes)
    self_match: bool
    domains: np.ndarray  # int64[domain]: codes of the eligible domains D
    group: bytes  # what it counts: namespace, selector, key, eligible nodes

    @property
    def unmet(self) -> bool:
        """|D| < minDomains: the global minimum is 0 for good."""
        return len(self.domains) < self.c.min_domains

    def domain_counts(self, per_node: np.ndarray) -> np.ndarray:
        """int64[code]: per-node counts summed by domain, eligible nodes only."""
        size = max(int(self.dom.max(initial=-1)) + 1, 1)
        on = self.eligible
        return np.bincount(self.dom[on], weights=per_node[on], minlength=size).astype(np.int64)

    def at_node(self, by_domain: np.ndarray) -> np.ndarray:
        """int64[node]: the count of each node's domain (0 where the key is missing)."""
        return np.where(self.dom != MISSING, by_domain[np.maximum(self.dom, 0)], 0)

    def minimum(self, by_domain: np.ndarray) -> int:
        if self.unmet or len(self.domains) == 0:
            return 0
        return int(by_domain[self.domains].min())


def _instances(ix: Index, read: Callable[[Pod], tuple[SpreadConstraint, ...]] = hard_constraints
               ) -> list[list[_Instance]]:
    """Per class, its hard constraints (or those `read` returns: the soft term reads the
    ScheduleAnyway ones); running counts shared per (namespace, selector)."""
    running_cache: dict[str, np.ndarray] = {}
    tolerated = tolerated_matrix(ix) if ix.taints else None
    hard = np.array([e in HARD_EFFECTS for (_, _, e) in ix.taints], dtype=bool)
    out: list[list[_Instance]] = []
    for ci, cls in enumerate(ix.classes):
        pod = cls.pod
        constraints = read(pod)
        if not constraints:
            out.append([])
            continue
        has_keys = np.ones(ix.num_nodes, dtype=bool)
        for k in constraints:
            has_keys &= ix.label(k.topology_key).present
        rows = []
        for k in constraints:
            ok = has_keys.copy()
            if k.honor_affinity:
                ok &= class_mask(pod, ix)
            if k.honor_taints and tolerated is not None:
                blocking = (~tolerated[ci] & hard).astype(np.int32)
                ok &= (ix.node_taints.astype(np.int32) @ blocking) == 0
            match = _compile(k.selector)
            sel_key = json.dumps([pod.namespace, k.selector])
            if sel_key not in running_cache:
                per_node = np.zeros(ix.num_nodes, dtype=np.int64)
                for n, pods in enumerate(ix.snap.running_on):
                    per_node[n] = sum(
                        1 for p in pods
                        if ix.snap.running[p].namespace == pod.namespace
                        and ix.snap.running[p].metadata.deletion_timestamp is None
                        and match(ix.snap.running[p].labels))
                running_cache[sel_key] = per_node
            dom = ix.label(k.topology_key).codes
            affects = np.array([o.pod.namespace == pod.namespace and match(o.pod.labels)
                                for o in ix.classes], dtype=bool)
            rows.append(_Instance(
                cls=ci, c=k, dom=dom, eligible=ok,
                running=np.where(ok, running_cache[sel_key], 0),
                affects=affects, self_match=bool(affects[ci]),
                domains=np.unique(dom[ok]).astype(np.int64),
                group=json.dumps([pod.namespace, k.selector, k.topology_key]).encode()
                + np.packbits(ok).tobytes()))
        out.append(rows)
    return out


_TABLES: weakref.WeakKeyDictionary[Index, list[list[_Instance]]] = weakref.WeakKeyDictionary()


def instances(ix: Index) -> list[list[_Instance]]:
    if ix not in _TABLES:
        _TABLES[ix] = _instances(ix)
    return _TABLES[ix]


def _sum(terms: list[cp_model.IntVar]) -> cp_model.LinearExprT:
    return cp_model.LinearExpr.sum(terms)


class PodTopologySpread:
    name: ClassVar[str] = "PodTopologySpread"

    def __init__(self) -> None:
        self._explained: tuple[ClusterView, Pod, list[_Counter]] | None = None

    # --- prefilter: nodes that can never pass --------------------------------------------------

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """A node lacking a topology key never passes; nor does a node whose domain is already
        more than maxSkew above the highest minimum the window could ever reach (0 when fewer
        than minDomains domains; else today's minimum plus every agent that counts)."""
        tables = instances(ix)
        if not any(tables):
            return None
        mask = np.ones((ix.num_classes, ix.num_nodes), dtype=bool)
        for c, rows in enumerate(tables):
            for inst in rows:
                mask[c] &= inst.dom != MISSING
                by_domain = inst.domain_counts(inst.running)
                reach = 0 if inst.unmet else (
                    inst.minimum(by_domain) + int(ix.class_size[inst.affects].sum()))
                here = inst.at_node(by_domain)
                mask[c] &= here + int(inst.self_match) - reach <= inst.c.max_skew
        return mask

    # --- greedy: kube's check against what the greedy bound so far ----------------------------

    def admits(self, ix: Index, state: GreedyState, agent: int, nodes: np.ndarray) -> np.ndarray:
        rows = instances(ix)[int(ix.class_of[agent])]
        if not rows:
            return nodes
        bound = state.node_of >= 0
        bound_cls, bound_node = ix.class_of[bound], state.node_of[bound]
        out = nodes.copy()
        for inst in rows:
            on = inst.affects[bound_cls] & inst.eligible[bound_node]
            per_node = inst.running + np.bincount(bound_node[on], minlength=ix.num_nodes)
            by_domain = inst.domain_counts(per_node)
            here = inst.at_node(by_domain)
            skew = here + int(inst.self_match) - inst.minimum(by_domain)
            out &= (inst.dom != MISSING) & (skew <= inst.c.max_skew)
        return out

    # --- encode --------------------------------------------------------------------------------

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        tables = instances(ix)
        if not any(tables) or not mb.x:
            return
        pair_cls, pair_node = mb.pair_cls, mb.pair_node
        by_group: dict[bytes, list[_Instance]] = {}
        for rows in tables:
            for inst in rows:
                by_group.setdefault(inst.group, []).append(inst)
        single = {c for c, rows in enumerate(tables) if len(rows) == 1}
        # each class orders its agents by at most one constraint, its coarsest self-matching
        # one; its other constraints take the order-free bound
        primary: dict[int, _Instance] = {}
        for c, rows in enumerate(tables):
            own = [i for i in rows if i.self_match]
            if own:
                primary[c] = min(own, key=lambda i: len(i.domains))
        info: dict[bytes, tuple[np.ndarray, set[int], bool]] = {}
        for key, insts in by_group.items():
            first = insts[0]
            counted = first.affects[pair_cls] & first.eligible[pair_node]  # bool[pair]
            counted_cls = set(pair_cls[counted].tolist())
            members = [i for i in insts if primary.get(i.cls) is i]
            member_cls = {i.cls for i in members}
            closed = (counted_cls <= member_cls
                      and len({(i.c.max_skew, i.c.min_domains) for i in members}) <= 1
                      and all(bool(first.eligible[pair_node[pair_cls == c]].all())
                              for c in member_cls))
            info[key] = (counted, member_cls, closed)
        # case 4: a closed group's members share a nested second constraint (zone + hostname)
        levelled: dict[bytes, tuple[cp_model.IntVar, set[int]]] = {}
        for key, (counted, member_cls, closed) in info.items():
            if not closed or not member_cls:
                continue
            pi = next(i for i in by_group[key] if primary.get(i.cls) is i)
            partner = self._nested_partner(tables, pi, member_cls, pi.unmet)
            if partner is not None:
                si = next(i for i in by_group[partner] if i.cls in member_cls)
                use = self._levels(mb, pi, si, counted)
                if use is not None:
                    levelled[partner] = (use, member_cls)
        for key, insts in by_group.items():
            first = insts[0]
            counted, member_cls, closed = info[key]
            m = self._group_minimum(mb, first, counted) if closed else None
            for inst in insts:
                if closed and primary.get(inst.cls) is inst:
                    self._closed(mb, inst, counted, m, member_cls)
                elif closed and not inst.self_match and inst.cls in single:
                    self._self_free(mb, inst, counted, m)
                elif key in levelled and inst.cls in levelled[key][1]:
                    self._any_order(mb, inst, counted, unless=levelled[key][0])
                else:
                    self._any_order(mb, inst, counted)

    def _domain_terms(self, mb: ModelBuilder, inst: _Instance, pairs: np.ndarray
                      ) -> dict[int, list[cp_model.IntVar]]:
        return {v: [mb.x[p] for p in ps.tolist()]
                for v, ps in self._domain_pairs(mb, inst, pairs).items()}

    @staticmethod
    def _domain_pairs(mb: ModelBuilder, inst: _Instance, pairs: np.ndarray) -> dict[int, np.ndarray]:
        """Candidate pairs selected by `pairs`, by the domain of their node."""
        idx = np.flatnonzero(pairs)
        if not idx.size:
            return {}
        dom = inst.dom[mb.pair_node[idx]]
        order = np.argsort(dom, kind="stable")
        values, starts = np.unique(dom[order], return_index=True)
        return {int(v): part for v, part in zip(values.tolist(), np.split(idx[order], starts[1:]),
                                                  strict=True)}

    @staticmethod
    def _placed(mb: ModelBuilder, pairs: np.ndarray, counts: np.ndarray) -> int:
        """Agents a hint's counts[cls, node] put on the given pairs."""
        return int(counts[mb.pair_cls[pairs], mb.pair_node[pairs]].sum())

    def _group_minimum(self, mb: ModelBuilder, inst: _Instance, counted: np.ndarray
                       ) -> cp_model.IntVar:
        """m <= f[u] for every eligible domain u: m can be the final minimum M."""
        running = inst.domain_counts(inst.running)
        pairs = self._domain_pairs(mb, inst, counted)
        fixed = [int(running[u]) for u in inst.domains.tolist() if u not in pairs]
        top = int(running.sum()) + int(mb.upper[counted].sum()) if len(running) else 0
        m = mb.model.new_int_var(0, max(top, 0), "spread_min")
        if fixed:
            mb.model.add(m <= min(fixed))
        for u, ps in pairs.items():
            mb.model.add(m <= int(running[u]) + _sum([mb.x[p] for p in ps.tolist()]))
        mb.count_constraint("topology spread", len(pairs) + bool(fixed))
        # hinted at its largest value (the final minimum), so a complete hint is one solution

        def hint(counts: np.ndarray) -> int:
            return max(0, min([*fixed, top, *(int(running[u]) + self._placed(mb, ps, counts)
                                              for u, ps in pairs.items())]))

        mb.aux_hints.append((m, hint))
        return m

    def _receives(self, mb: ModelBuilder, pairs: np.ndarray, bound: int) -> cp_model.IntVar:
        """A literal that is true when any of the pairs is used."""
        b = mb.model.new_bool_var("spread_recv")
        mb.model.add(_sum([mb.x[p] for p in pairs.tolist()]) <= bound * b)
        mb.aux_hints.append((b, lambda counts: int(self._placed(mb, pairs, counts) > 0)))
        return b

    def _closed(self, mb: ModelBuilder, inst: _Instance, counted: np.ndarray,
                m: cp_model.IntVar | None, member_cls: set[int]) -> None:
        """Case 1: f[v] <= M + s for every domain v the class's agents land in."""
        running = inst.domain_counts(inst.running)
        all_terms = self._domain_terms(mb, inst, counted)
        own = mb.pair_cls == inst.cls
        bound = int(mb.upper[own].sum())
        for v, ps in self._domain_pairs(mb, inst, own).items():
            f = int(running[v]) + _sum(all_terms.get(v, []))
            b = self._receives(mb, ps, bound)
            if inst.unmet:
                mb.model.add(f <= inst.c.max_skew).only_enforce_if(b)
            else:
                assert m is not None
                mb.model.add(f <= m + inst.c.max_skew).only_enforce_if(b)
            mb.count_constraint("topology spread", 2)

    def _self_free(self, mb: ModelBuilder, inst: _Instance, counted: np.ndarray,
                   m: cp_model.IntVar | None) -> None:
        """Case 2: an agent its own selector ignores goes first (R[v] - min R <= s) or last
        (f[v] <= M + s)."""
        running = inst.domain_counts(inst.running)
        start_min = inst.minimum(running)
        all_terms = self._domain_terms(mb, inst, counted)
        own = mb.pair_cls == inst.cls
        for v, ps in self._domain_pairs(mb, inst, own).items():
            xs = [mb.x[p] for p in ps.tolist()]
            if int(running[v]) - start_min <= inst.c.max_skew:
                continue  # binding it before every counted agent is valid
            if inst.unmet or m is None:
                mb.model.add(_sum(xs) == 0)
                mb.count_constraint("topology spread")
                continue
            f = int(running[v]) + _sum(all_terms.get(v, []))
            b = self._receives(mb, ps, int(mb.upper[own].sum()))
            mb.model.add(f <= m + inst.c.max_skew).only_enforce_if(b)
            mb.count_constraint("topology spread", 2)

    def _any_order(self, mb: ModelBuilder, inst: _Instance, counted: np.ndarray,
                   unless: cp_model.IntVar | None = None) -> None:
        """Case 3: F[v] <= min R + s, valid whatever the order (not enforced when `unless`,
        the level order's literal, holds instead)."""
        running = inst.domain_counts(inst.running)
        start_min = inst.minimum(running)
        all_terms = self._domain_terms(mb, inst, counted)
        own = mb.pair_cls == inst.cls
        extra = [] if unless is None else [unless.Not()]
        for v, ps in self._domain_pairs(mb, inst, own).items():
            xs = [mb.x[p] for p in ps.tolist()]
            limit = start_min + inst.c.max_skew - int(running[v])
            if v not in all_terms:
                if limit < 0:
                    mb.model.add(_sum(xs) == 0).only_enforce_if(extra)
                    mb.count_constraint("topology spread")
                continue
            b = self._receives(mb, ps, int(mb.upper[own].sum()))
            mb.model.add(_sum(all_terms[v]) <= limit).only_enforce_if([b, *extra])
            mb.count_constraint("topology spread", 2)

    # --- case 4: a coarse and a nested fine constraint, bound level by level -------------------

    @staticmethod
    def _nested_partner(tables: list[list[_Instance]], pi: _Instance, members: set[int],
                        unmet: bool) -> bytes | None:
        """The group of a second constraint every member has, nested in `pi`'s domains (each of
        its domains inside one of pi's), counting exactly what pi counts, with one maxSkew; or
        None."""
        if unmet:
            return None
        found: set[bytes] = set()
        skews: set[tuple[int, int]] = set()
        for c in members:
            cands = [i for i in tables[c] if i is not pi and i.group != pi.group and i.self_match
                     and not i.unmet and i.c.selector == pi.c.selector
                     and np.array_equal(i.eligible, pi.eligible)
                     and np.array_equal(i.affects, pi.affects)]
            if len(cands) != 1:  # a member with none (or several): not this case
                return None
            found.add(cands[0].group)
            skews.add((cands[0].c.max_skew, cands[0].c.min_domains))
        if len(found) != 1 or len(skews) != 1:
            return None
        si = next(i for i in tables[next(iter(members))] if i.group in found)
        on = si.eligible
        pairs = np.unique(np.stack([si.dom[on], pi.dom[on]]), axis=1)
        if len(np.unique(pairs[0])) != pairs.shape[1]:  # a fine domain spans two coarse ones
            return None
        return si.group

    def _levels(self, mb: ModelBuilder, pi: _Instance, si: _Instance, counted: np.ndarray
                ) -> cp_model.IntVar | None:
        """Case 4, for a closed group ordered by the coarse constraint P (pi, maxSkew s1) whose
        members all have a second constraint S (si, maxSkew s2) over the same pods and nodes,
        each S domain inside one P domain (hostname in zone). Bind in blocks of s2 levels: every
        agent that brings its S domain to a count in block b = ((b-1) s2, b s2] before any that
        brings one into block b + 1, and inside a block, lowest P domain first. With F[h] the
        final S counts, M_S their minimum, and Z[v](L) = sum over S domains h in v of
        min(F[h], max(R[h], L)) (P counts once the levels up to L are bound), that order is
        valid iff
            F[h] <= M_S + s2 for every S domain h receiving agents   (S's case 1), and
            Z[v](L) <= min_u Z[u](L) + s1 at every block end L (every s2-th level, and the
                top) for every P domain v receiving an agent in that block.
        Sufficient: inside block b an agent brings its S domain to a count c <= b s2 while the S
        minimum is >= min((b-1) s2, M_S), so c - min <= s2 (when the minimum is M_S, c <= F[h]
        <= M_S + s2); and the P check is case 1's lowest-first argument on the block's agents
        (it holds from any start state). Necessary when s2 = 1 (blocks are single levels): S's
        check then only admits binds into a domain at the current minimum, so every valid order
        binds level by level, and the last bind into v at level l saw a P minimum <= min Z(l).
        So for s2 = 1 this case is exact; for s2 > 1 it is one sufficient order (brute force:
        about 97 % of the valid plans, against 33 % for case 3 alone), ORed with case 3 (the
        returned literal says which holds). F[h] is encoded in unary (r[h][k] = F[h] >= k + 1 +
        R[h]). Returns None (case 3 only) when that takes more than LEVEL_BUDGET literals."""
        model = mb.model
        hosts = si.domains.tolist()
        running = si.domain_counts(si.running)
        terms = self._domain_terms(mb, si, counted)
        total = int(mb.ix.class_size[np.unique(mb.pair_cls[counted])].sum())
        cap = {h: min(int(sum(int(mb.upper[p]) for p in np.nonzero(counted & (
            si.dom[mb.pair_node] == h))[0].tolist())), total) for h in terms}
        if not terms or sum(cap.values()) > LEVEL_BUDGET:
            return None
        zone = {int(h): int(z) for h, z in zip(si.dom[si.eligible].tolist(),
                                               pi.dom[pi.eligible].tolist(), strict=True)}
        s1, s2 = pi.c.max_skew, si.c.max_skew
        use = model.new_bool_var("spread_levels")
        r: dict[int, list[cp_model.IntVar]] = {}
        for h, xs in terms.items():
            r[h] = [model.new_bool_var(f"spread_lvl_{h}_{k}") for k in range(cap[h])]
            model.add(_sum(xs) == _sum(r[h]))
            for a, b in zip(r[h], r[h][1:], strict=False):
                model.add(b <= a)
            mb.count_constraint("topology spread", len(r[h]))

        def count(h: int, level: int | None = None) -> cp_model.LinearExprT:
            """min(F[h], max(R[h], level)); F[h] when level is None."""
            bits = r.get(h, [])
            if level is not None:
                bits = bits[:max(0, level - int(running[h]))]
            return int(running[h]) + _sum(bits)

        top = int(running.sum()) + total
        m_s = model.new_int_var(0, top, "spread_lvl_min")
        for h in hosts:
            model.add(m_s <= count(h))
        for h in terms:
            if r[h]:
                model.add(count(h) <= m_s + s2).only_enforce_if([r[h][0], use])
        mb.count_constraint("topology spread", len(hosts) + len(terms))
        by_zone: dict[int, list[int]] = {}
        for h in hosts:
            by_zone.setdefault(zone[h], []).append(h)
        hi = max(int(running[h]) + cap[h] for h in terms)
        # block ends: every s2-th level, and the top
        ends = sorted({*range(s2, hi, s2), hi})
        prev = 0
        for end in ends:
            # S domains receiving an agent that brings them into (prev, end]: F[h] > max(R, prev)
            receiving = {h: r[h][max(int(running[h]), prev) - int(running[h])] for h in terms
                         if int(running[h]) < end
                         and max(int(running[h]), prev) - int(running[h]) < cap[h]}
            if receiving:
                z = {v: _sum([count(h, end) for h in hs]) for v, hs in by_zone.items()}
                m = model.new_int_var(0, top, f"spread_lvl_min_{end}")
                for v in pi.domains.tolist():
                    model.add(m <= z[v] if v in z else m <= 0)
                for h, lit in receiving.items():
                    model.add(z[zone[h]] <= m + s1).only_enforce_if([lit, use])
                mb.count_constraint("topology spread", len(pi.domains) + len(receiving))
            prev = end
        return use

    # --- verify: an exact search for a binding order -------------------------------------------

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        pods = {p.ref: p for p in snap.pending}
        nodes = {n.name: n for n in snap.nodes}
        placed = [(pods[a], nodes[n]) for a, n in assignment.items() if a in pods and n in nodes]
        owners = [(pod, node, hard_constraints(pod)) for pod, node in placed]
        if not any(cs for _, _, cs in owners):
            return []
        out: list[Violation] = []
        search = _OrderSearch(snap)
        for pod, node, cs in owners:
            if any(c.topology_key not in node.labels for c in cs):
                out.append(Violation(self.name, pod.ref, node.name, LABEL_REASON))
            else:
                search.add(pod, node)
        return out + [Violation(self.name, a, n, f"{REASON}: {why}") for a, n, why in search.run()]

    # --- explain: kube's Filter against the cluster as given -----------------------------------

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        cs = hard_constraints(pod)
        if not cs:
            return []
        view = usage.cluster or ClusterView((node,), ())
        cached = self._explained
        if cached is not None and cached[0] is view and cached[1] is pod:
            counters = cached[2]
        else:
            counters = [_counter(pod, cs, c, view.nodes, view.pods) for c in cs]
            self._explained = (view, pod, counters)
        for c, counter in zip(cs, counters, strict=True):
            value = node.labels.get(c.topology_key)
            if value is None:
                return [Reason(self.name, LABEL_REASON, unresolvable=True)]
            self_match = int(selector_matches(c.selector, pod.labels))
            if _skew(c, counter, value, self_match) > c.max_skew:
                return [Reason(self.name, REASON)]
        return []


def _water_filling_suffices(checks: Sequence[Sequence[tuple[SpreadConstraint, tuple[object, ...], str, int]]],
                            moves: Sequence[Sequence[tuple[tuple[object, ...], str]]],
                            final: Mapping[tuple[tuple[object, ...], int], int],
                            counters: Mapping[tuple[object, ...], _Counter],
                            placed: Sequence[int]) -> bool:
    """A proof without search for the common shape: every placed item has one hard constraint,
    its selector matches itself and it moves that constraint's counter only (so counters are
    independent). Then binding each counter's agents lowest-domain-first is a valid order iff
    every placed domain ends within maxSkew of the final minimum: when an agent binds to the
    lowest unfinished domain v, the minimum is either count(v) (skew 1) or a finished domain's
    final count >= the final minimum, and count(v) + 1 <= final(v). False means: search."""
    added: dict[tuple[tuple[object, ...], str], int] = {}
    for i, mv in enumerate(moves):
        for key in mv:
            added[key] = added.get(key, 0) + placed[i]
    for i, row in enumerate(checks):
        if not placed[i]:
            continue
        if not row:
            if moves[i]:
                return False  # counted without being constrained: binding it early may matter
            continue
        if len(row) != 1:
            return False
        c, cid, v, self_match = row[0]
        if not self_match or list(moves[i]) != [(cid, v)]:
            return False
        if counters[cid].counts.get(v, 0) + added[(cid, v)] - final[(cid, c.min_domains)] > c.max_skew:
            return False
    return True


class _OrderSearch:
    """Depth-first search for an order binding every placed agent validly.

    Agents are grouped into items: same namespace, labels, constraints, affinity and
    tolerations (so every check reads them alike), on the same node. A state is how many of
    each item are still unbound, which fixes every count, so visited states are never expanded
    twice; within a state, items are tried lowest skew first, agents without constraints last
    (they only move counts, and once every constrained agent is bound they can follow).
    """

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.items: dict[tuple[str, str], list[Pod]] = {}
        self.node_of: dict[tuple[str, str], Node] = {}

    def add(self, pod: Pod, node: Node) -> None:
        spec = pod.spec.model_dump(mode="json", include={
            "node_selector", "affinity", "tolerations", "topology_spread_constraints"})
        kind = json.dumps([pod.namespace, pod.labels, spec,
                           pod.metadata.deletion_timestamp is None], sort_keys=True)
        self.items.setdefault((kind, node.name), []).append(pod)
        self.node_of[(kind, node.name)] = node

    def run(self) -> list[tuple[str, str, str]]:
        """(agent, node, why) for each agent no order found could bind; empty when all can."""
        snap = self.snap
        running = [(p, p.spec.node_name or "") for p in snap.running]
        keys = list(self.items)
        counters: dict[tuple[object, ...], _Counter] = {}
        cids: dict[tuple[str, int], tuple[object, ...]] = {}  # (kind, constraint) -> counter
        checks: list[list[tuple[SpreadConstraint, tuple[object, ...], str, int]]] = []
        for key in keys:
            pod, node = self.items[key][0], self.node_of[key]
            cs = hard_constraints(pod)
            row = []
            for j, c in enumerate(cs):
                if (key[0], j) not in cids:
                    cid = (pod.namespace, c.selector, c.topology_key,
                           frozenset(n.name for n in snap.nodes if eligible(pod, cs, c, n)))
                    cids[(key[0], j)] = cid
                    if cid not in counters:
                        counters[cid] = _counter(pod, cs, c, snap.nodes, running)
                row.append((c, cids[(key[0], j)], node.labels[c.topology_key],
                            int(selector_matches(c.selector, pod.labels))))
            checks.append(row)
        # the counters an item moves when bound: any placed agent the selector matches counts
        moves: list[list[tuple[tuple[object, ...], str]]] = []
        for key in keys:
            pod, node = self.items[key][0], self.node_of[key]
            moves.append([
                (cid, node.labels[str(cid[2])]) for cid, ctr in counters.items()
                if node.name in ctr.nodes and pod.namespace == cid[0]
                and pod.metadata.deletion_timestamp is None
                and selector_matches(cid[1], pod.labels)])  # type: ignore[arg-type]
        left = [len(self.items[k]) for k in keys]
        constrained = [i for i, row in enumerate(checks) if row]

        live = [i for i in range(len(keys)) if checks[i] or moves[i]]
        mins: dict[tuple[tuple[object, ...], int], int] = {}  # global minima of this state

        def skews(i: int) -> list[tuple[int, SpreadConstraint, str]]:
            out = []
            for c, cid, v, self_match in checks[i]:
                counter = counters[cid]
                if (cid, c.min_domains) not in mins:
                    mins[(cid, c.min_domains)] = counter.minimum(c.min_domains)
                lo = mins[(cid, c.min_domains)]
                out.append((counter.counts.get(v, 0) + self_match - lo, c, v))
            return out

        def bind(i: int, delta: int) -> None:
            left[i] -= delta
            mins.clear()
            for cid, v in moves[i]:
                counters[cid].counts[v] = counters[cid].counts.get(v, 0) + delta

        def choices() -> list[int]:
            ranked = []
            for i in live:
                if not left[i]:
                    continue
                sk = skews(i)
                if all(k <= c.max_skew for k, c, _ in sk):
                    ranked.append((not checks[i], sum(k for k, _, _ in sk), i))
            return [i for *_, i in sorted(ranked)]

        # counts only grow, so every minimum stays at or below its value once all are bound: an
        # agent already more than maxSkew above that final minimum can never bind (dead end)
        everything = list(left)
        for i, n in enumerate(everything):
            bind(i, n)
        final = {(cid, c.min_domains): counters[cid].minimum(c.min_domains)
                 for row in checks for c, cid, _, _ in row}
        for i, n in enumerate(everything):
            bind(i, -n)
        if _water_filling_suffices(checks, moves, final, counters, everything):
            return []

        def dead() -> bool:
            return any(counters[cid].counts.get(v, 0) + sm - final[(cid, c.min_domains)] > c.max_skew
                       for i in constrained if left[i] for c, cid, v, sm in checks[i])

        visited: set[tuple[int, ...]] = {tuple(left)}
        path: list[int] = []
        frames = [choices()]
        stuck: list[tuple[int, int, str]] | None = None
        steps = 0
        while True:
            if not any(left[i] for i in constrained):
                return []
            frame = frames[-1]
            if not frame:
                if stuck is None:  # the first dead end: where the lowest-first order got stuck
                    stuck = [(i, left[i], self._why(skews(i))) for i in constrained if left[i]]
                frames.pop()
                if not path:
                    break
                bind(path.pop(), -1)
                continue
            i = frame.pop(0)
            bind(i, 1)
            state = tuple(left)
            if state in visited:
                bind(i, -1)
                continue
            visited.add(state)
            if dead():
                if stuck is None:  # report where the lowest-first order ran into it
                    stuck = [(j, left[j], self._why(skews(j))) for j in constrained if left[j]]
                bind(i, -1)
                continue
            path.append(i)
            frames.append(choices())
            steps += 1
            if steps > SEARCH_BUDGET:
                return [(p.ref, self.node_of[keys[j]].name,
                         f"no valid binding order found within {SEARCH_BUDGET} search steps")
                        for j in constrained for p in self.items[keys[j]]]
        assert stuck is not None
        return [(p.ref, self.node_of[keys[i]].name, why)
                for i, n, why in stuck for p in self.items[keys[i]][-n:]]

    @staticmethod
    def _why(skews: list[tuple[int, SpreadConstraint, str]]) -> str:
        bad = [(sk, c, v) for sk, c, v in skews if sk > c.max_skew]
        if not bad:
            return "no binding order keeps every placement within maxSkew"
        sk, c, v = bad[0]
        return (f"in no binding order: skew {sk} > maxSkew {c.max_skew} in "
                f"{c.topology_key}={v}")
