"""The objective's `soft` term: kube's scored (never filtered) preferences, as one penalty.

Raw value, in units of preference weight (all integers, to be minimised):

  node        unmet preferred node affinity weight + TAINT_PENALTY per untolerated
              PreferNoSchedule taint (NodeAffinity, TaintToleration scores)
  pod         preferred inter-pod affinity and anti-affinity (InterPodAffinity score)
  spread      excess skew of ScheduleAnyway topology spread (PodTopologySpread score)

**Inter-pod preferences** (kube: interpodaffinity/scoring.go). kube scores node n for the
incoming pod P by summing, over every existing pod E whose node shares the term's topology
value with n: +w for each of P's preferred affinity terms E matches, -w for each of P's
preferred anti-affinity terms E matches, and symmetrically +w / -w for each of E's preferred
affinity / anti-affinity terms P matches (IgnorePreferredTermsOfExistingPods: false, the
default). Binding the window one agent at a time, every pair of pods sharing a domain is scored
exactly once (by the later one) with the same value either way, so the window's total score
before normalisation is order-free:

    sum over placed agents a, running pods q in a's domain:   s(a, q)
  + sum over unordered pairs {a, b} of placed agents:           s(a, b)

with s(a, b) = a's terms matching b + b's terms matching a (affinity +w, anti-affinity -w).
Per class pair (c, d) and key k with X[c, v] agents of c in domain v, the pairs number
X[c, v] * X[d, v] (c != d) or X[c, v] * (X[c, v] - 1) / 2 (c = d, each pair valued twice).
As a penalty: anti-affinity weight of the co-located pairs, plus the affinity weight the plan
misses against its best (running pods: per agent, against the best candidate node; window
pairs: against Ymax, an upper bound on the pairs, so the value stays in [0, max]).
Encoded exactly: one integer y per (class pair, key, shared domain) with y = X[c, v] * X[d, v]
(CP-SAT multiplication), or, for a class repelling itself, by the secants of the convex
X (X - 1), exact at integers because the term is minimised.
Not scored: HardPodAffinityWeight (existing pods' *required* affinity terms attracting the
agent; required affinity is a hard rule here), and kube's per-pod NormalizeScore (relative to
the other feasible nodes of that one pod, it has no batch reading): raw scores are summed.

**ScheduleAnyway spread** (kube: podtopologyspread/scoring.go scores a node by the matching
pods in its domain, lowest best; maxSkew - 1 waters differences down). Its intent, made exact:
each constraint (deduplicated over classes with the same selector, key, eligible nodes and
maxSkew) is treated as a soft DoNotSchedule. With f[v] = running matches + placed agents it
counts in domain v (eligible nodes, as the hard rule reads them; minDomains does not apply),
M = min over the domains of the owners' candidate nodes, the excess

    sum over domains v receiving an owner agent of  max(0, f[v] - M - maxSkew)

costs SPREAD_PENALTY per agent of excess (zero iff the plan would pass the constraint as
DoNotSchedule when the group is closed, see rules/topology_spread.py, case 1), and an owner on a
node without one of its soft topology keys (kube scores such nodes 0, the worst) costs
SPREAD_PENALTY. Encoded with m <= f[u] for every such domain u (the penalty is non-increasing
in m, so the optimum has m = M) and e[v] >= f[v] - m - maxSkew when v receives an owner.
kube's system default constraints (for pods with none, from their Service/ReplicaSet) are not
added.

Known limit: running pods count as they are; a plan that evicts one (preemption) is not
credited or charged for the preferences that pod took part in.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ortools.sat.python import cp_model

from models import Pod
from optimizer.index import MISSING, Index
from optimizer.rules import RULES
from optimizer.rules.node_affinity import preferred_scores
from optimizer.rules.pod_affinity import compile_terms, term_hits
from optimizer.rules.taints import prefer_no_schedule_counts
from optimizer.rules.topology_spread import _Instance, _instances, soft_constraints

if TYPE_CHECKING:
    from optimizer.model import ModelBuilder

TAINT_PENALTY = 100
SPREAD_PENALTY = 100  # one agent of excess skew weighs like a weight-100 preference
SECANT_LIMIT = 64  # a self-repelling class with more agents per domain uses a product instead
Counts = np.ndarray  # int64[cls, node]
Hints = list[tuple[cp_model.IntVar, Callable[[Counts], int]]]


def _preferred(pod: Pod, anti: bool) -> list[tuple[int, Any]]:
    """(weight, compiled term) of the pod's preferred (anti-)affinity terms."""
    aff = pod.spec.affinity
    block = (aff.pod_anti_affinity if anti else aff.pod_affinity) if aff else None
    terms = list(block.preferred_during_scheduling_ignored_during_execution) if block else []
    compiled = compile_terms(pod, [t.pod_affinity_term for t in terms])
    return [(t.weight, ct) for t, ct in zip(terms, compiled, strict=True)]


@dataclass
class PairTerm:
    """Window agents of classes c <= d scored together in a shared domain of `key`."""

    c: int
    d: int
    key: str
    aff: int = 0  # weight per co-located pair, both directions summed
    anti: int = 0

    @property
    def net(self) -> int:
        return self.anti - self.aff


@dataclass
class SpreadGroup:
    """One ScheduleAnyway constraint, deduplicated over the classes that own it."""

    inst: _Instance  # the first owner's reading (dom, eligible, running, affects)
    owners: list[int]
    max_skew: int


@dataclass
class SoftTables:
    node: np.ndarray  # int64[cls, node]: node affinity + PreferNoSchedule penalty
    run_aff: np.ndarray  # int64[cls, node]: affinity weight met by running pods
    run_anti: np.ndarray  # int64[cls, node]: anti-affinity weight hit by running pods
    pairs: list[PairTerm]
    spread: list[SpreadGroup]
    missing: np.ndarray  # int64[cls, node]: soft topology keys the node lacks
    stats: dict[str, int] = field(default_factory=dict)


_TABLES: weakref.WeakKeyDictionary[Index, SoftTables] = weakref.WeakKeyDictionary()


def soft_tables(ix: Index) -> SoftTables:
    """Once per Index: the objective's soft term and the aggregation check both read them."""
    got = _TABLES.get(ix)
    if got is None:
        got = _TABLES[ix] = _soft_tables(ix)
    return got


def _soft_tables(ix: Index) -> SoftTables:
    snap = ix.snap
    pref, max_pref = preferred_scores(ix)
    node = (max_pref[:, None] - pref + TAINT_PENALTY * prefer_no_schedule_counts(ix)).astype(np.int64)
    nc, nn = ix.num_classes, ix.num_nodes
    nsl_cache: dict[str, Any] = {}

    def nsl(name: str) -> Any:
        if name not in nsl_cache:
            nsl_cache[name] = snap.namespace_labels(name)
        return nsl_cache[name]

    reps = [cls.pod for cls in ix.classes]
    aff = [_preferred(p, False) for p in reps]
    anti = [_preferred(p, True) for p in reps]
    run_aff = np.zeros((nc, nn), dtype=np.int64)
    run_anti = np.zeros((nc, nn), dtype=np.int64)
    # weight per (table, class, key) and domain code of the running pod's node, expanded to
    # nodes once at the end
    acc: dict[tuple[int, int, str], dict[int, int]] = {}

    def credit(which: int, c: int, key: str, at_node: int, w: int) -> None:
        v = int(ix.label(key).codes[at_node])
        if v != MISSING:
            row = acc.setdefault((which, c, key), {})
            row[v] = row.get(v, 0) + w

    scoring = [c for c in range(nc) if aff[c] or anti[c]]
    for q in snap.running:
        m = snap.node_pos.get(q.spec.node_name or "")
        if m is None:
            continue
        q_terms = ((0, _preferred(q, False)), (1, _preferred(q, True)))
        for c in scoring:  # the agent's terms matching the running pod
            for which, own in ((0, aff[c]), (1, anti[c])):
                for w, ct in own:
                    if term_hits(ct, q, nsl(q.namespace)):
                        credit(which, c, ct.key, m, w)
        for which, theirs in q_terms:  # the running pod's terms matching the agent
            for w, ct in theirs:
                for c, a in enumerate(reps):
                    if term_hits(ct, a, nsl(a.namespace)):
                        credit(which, c, ct.key, m, w)
    for (which, c, key), row in acc.items():
        col = ix.label(key)
        weights = np.zeros(max(len(col.vocab), 1), dtype=np.int64)
        for v, w in row.items():
            weights[v] += w
        table = run_aff if which == 0 else run_anti
        table[c] += np.where(col.codes != MISSING, weights[np.maximum(col.codes, 0)], 0)
    pairs: dict[tuple[int, int, str], PairTerm] = {}
    for c in range(nc):
        for which, terms in (("aff", aff[c]), ("anti", anti[c])):
            for w, ct in terms:
                for d, b in enumerate(reps):
                    if term_hits(ct, b, nsl(b.namespace)):
                        k = (min(c, d), max(c, d), ct.key)
                        pt = pairs.setdefault(k, PairTerm(*k))
                        # c = d: each pair is seen from both ends, counted in X (X - 1)
                        setattr(pt, which, getattr(pt, which) + w)
    spread: dict[bytes, SpreadGroup] = {}
    missing = np.zeros((nc, nn), dtype=np.int64)
    for c, rows in enumerate(_instances(ix, soft_constraints)):
        for inst in rows:
            missing[c] += inst.dom == MISSING
            key = inst.group + json.dumps(inst.c.max_skew).encode()
            g = spread.setdefault(key, SpreadGroup(inst, [], inst.c.max_skew))
            g.owners.append(c)
    return SoftTables(node, run_aff, run_anti, [p for p in pairs.values() if p.aff or p.anti],
                      list(spread.values()), missing)


# --- the term: value from counts, and its CP-SAT encoding ------------------------------------


def _domain_sums(ix: Index, key: str, row: np.ndarray) -> np.ndarray:
    """int64[code]: a per-node count summed by the key's domains (nodes without the key: 0)."""
    col = ix.label(key)
    on = col.codes != MISSING
    size = max(len(col.vocab), 1)
    return np.bincount(col.codes[on], weights=row[on], minlength=size).astype(np.int64)


class SoftTerm:
    """Builds the `soft` penalty over the model's candidate pairs and evaluates it on counts."""

    def __init__(self, mb: ModelBuilder) -> None:
        self.mb = mb
        ix = mb.ix
        self.tb = tb = soft_tables(ix)
        pc, pn = mb.pair_cls, mb.pair_node
        cand = np.zeros((ix.num_classes, ix.num_nodes), dtype=bool)
        cand[pc, pn] = True
        self.cand = cand
        best_aff = np.where(cand, tb.run_aff, np.iinfo(np.int64).min).max(axis=1, initial=0)
        best_aff = np.maximum(best_aff, 0)
        # per pair: node preferences, running-pod (anti-)affinity, missing soft keys
        # rules' own per-pair preferences (GpuShare: GPUs a placement strands)
        self.rules = np.zeros(len(pc), dtype=np.int64)
        for rule in RULES:
            hook = getattr(rule, "soft_penalty", None)
            if hook is not None:
                self.rules += hook(ix, pc, pn)
        self.linear = (tb.node[pc, pn] + tb.run_anti[pc, pn] + best_aff[pc] - tb.run_aff[pc, pn]
                       + SPREAD_PENALTY * tb.missing[pc, pn] + self.rules).astype(np.int64)
        cap = np.zeros((ix.num_classes, ix.num_nodes), dtype=np.int64)
        cap[pc, pn] = mb.upper
        self.cap = cap
        self.pair_max = [self._pair_ymax(pt) for pt in tb.pairs]
        self.groups = [(g, self._group_domains(g)) for g in tb.spread]

    # -- ranges ----------------------------------------------------------------------------

    def _dom_cap(self, c: int, key: str) -> np.ndarray:
        return np.minimum(_domain_sums(self.mb.ix, key, self.cap[c]), self.mb.ix.class_size[c])

    def _pair_ymax(self, pt: PairTerm) -> int:
        size = self.mb.ix.class_size
        a = self._dom_cap(pt.c, pt.key)
        if pt.c == pt.d:
            return int(min(size[pt.c] * (size[pt.c] - 1), (a * np.maximum(a - 1, 0)).sum()))
        b = self._dom_cap(pt.d, pt.key)
        return int(min(size[pt.c] * size[pt.d], (a * b).sum()))

    def _group_domains(self, g: SpreadGroup) -> np.ndarray:
        """Codes of the eligible domains holding a candidate node of some owner: M's domains."""
        on = self.cand[g.owners].any(axis=0) & g.inst.eligible & (g.inst.dom != MISSING)
        return np.unique(g.inst.dom[on]).astype(np.int64)

    def _group_max(self, g: SpreadGroup, domains: np.ndarray) -> int:
        inst = g.inst
        counted = self.cap[inst.affects].sum(axis=0) * inst.eligible
        most = inst.domain_counts(inst.running) + np.minimum(
            inst.domain_counts(counted), int(self.mb.ix.class_size[inst.affects].sum()))
        receive = np.unique(inst.dom[self.cand[g.owners].any(axis=0) & (inst.dom != MISSING)])
        return int(np.maximum(most[receive] - g.max_skew, 0).sum()) if receive.size else 0

    def max_value(self) -> int:
        worst = np.zeros(self.mb.ix.num_classes, dtype=np.int64)
        np.maximum.at(worst, self.mb.pair_cls, self.linear)
        total = int(worst @ self.mb.ix.class_size)
        total += sum(max(pt.aff, pt.anti) * y for pt, y in zip(self.tb.pairs, self.pair_max, strict=True))
        total += sum(SPREAD_PENALTY * self._group_max(g, d) for g, d in self.groups)
        return total

    # -- value from a plan's counts ------------------------------------------------------------

    def parts(self, counts: Counts) -> dict[str, int]:
        mb = self.mb
        at = counts[mb.pair_cls, mb.pair_node]
        node = int((self.tb.node[mb.pair_cls, mb.pair_node]) @ at)
        missing = int(SPREAD_PENALTY * self.tb.missing[mb.pair_cls, mb.pair_node] @ at)
        rules = int(self.rules @ at)
        pod = int((self.linear - self.tb.node[mb.pair_cls, mb.pair_node] - self.rules
                   - SPREAD_PENALTY * self.tb.missing[mb.pair_cls, mb.pair_node]) @ at)
        pairs_aff = pairs_anti = 0
        for pt, ymax in zip(self.tb.pairs, self.pair_max, strict=True):
            y = self.pair_count(pt, counts)
            pod += pt.net * y + pt.aff * ymax
            pairs_aff += pt.aff * y
            pairs_anti += pt.anti * y
        spread = sum(SPREAD_PENALTY * self.excess(g, d, counts) for g, d in self.groups) + missing
        return {"node": node, "pod": pod, "spread": spread, "rules": rules,
                "window_affinity_met": pairs_aff,
                "window_anti_affinity_hit": pairs_anti}

    def evaluate(self, counts: Counts) -> int:
        p = self.parts(counts)
        return p["node"] + p["pod"] + p["spread"] + p["rules"]

    def pair_count(self, pt: PairTerm, counts: Counts) -> int:
        a = _domain_sums(self.mb.ix, pt.key, counts[pt.c])
        if pt.c == pt.d:
            return int((a * np.maximum(a - 1, 0)).sum())
        return int((a * _domain_sums(self.mb.ix, pt.key, counts[pt.d])).sum())

    def _f(self, g: SpreadGroup, counts: Counts) -> np.ndarray:
        inst = g.inst
        counted = counts[inst.affects].sum(axis=0) * inst.eligible
        return inst.domain_counts(inst.running) + inst.domain_counts(counted)

    def minimum(self, g: SpreadGroup, domains: np.ndarray, counts: Counts) -> int:
        return int(self._f(g, counts)[domains].min()) if domains.size else 0

    def excess(self, g: SpreadGroup, domains: np.ndarray, counts: Counts) -> int:
        inst = g.inst
        f = self._f(g, counts)
        low = self.minimum(g, domains, counts)
        owners = counts[g.owners].sum(axis=0)
        receive = np.unique(inst.dom[(owners > 0) & (inst.dom != MISSING)])
        return int(np.maximum(f[receive] - low - g.max_skew, 0).sum()) if receive.size else 0

    # -- the CP-SAT encoding -----------------------------------------------------------------

    def encode(self, hints: Hints) -> cp_model.LinearExprT:
        """The penalty as a linear expression (constant included: it equals `evaluate`)."""
        mb = self.mb
        nz = np.nonzero(self.linear)[0]
        expr: cp_model.LinearExprT = cp_model.LinearExpr.weighted_sum(
            [mb.x[p] for p in nz.tolist()], self.linear[nz].tolist())
        for pt, ymax in zip(self.tb.pairs, self.pair_max, strict=True):
            expr += pt.aff * ymax
            if pt.net and ymax:
                expr += pt.net * self._encode_pairs(pt, hints)
        for g, domains in self.groups:
            expr += SPREAD_PENALTY * self._encode_spread(g, domains, hints)
        return expr

    def _by_domain(self, c: int, key: str) -> dict[int, list[int]]:
        codes = self.mb.ix.label(key).codes
        out: dict[int, list[int]] = {}
        for p in np.nonzero(self.mb.pair_cls == c)[0].tolist():
            v = int(codes[self.mb.pair_node[p]])
            if v != MISSING:
                out.setdefault(v, []).append(p)
        return out

    def _encode_pairs(self, pt: PairTerm, hints: Hints) -> cp_model.LinearExprT:
        mb = self.mb
        model = mb.model
        size = mb.ix.class_size
        codes = mb.ix.label(pt.key).codes
        dc, dd = self._by_domain(pt.c, pt.key), self._by_domain(pt.d, pt.key)
        ys = []
        for v in sorted(dc.keys() & dd.keys()):
            xs_c = [mb.x[p] for p in dc[v]]
            ca = min(int(mb.upper[dc[v]].sum()), int(size[pt.c]))
            sum_c = cp_model.LinearExpr.sum(xs_c)
            on = codes == v

            if pt.c == pt.d:
                if ca < 2:
                    continue
                y = model.new_int_var(0, ca * (ca - 1), f"soft_pairs_{pt.c}_{pt.c}_{v}")
                if pt.net > 0 and ca <= SECANT_LIMIT:
                    for k in range(1, ca):  # secants of X (X - 1) through (k, k (k - 1))
                        model.add(y >= 2 * k * sum_c - k * (k + 1))
                    mb.count_constraint("soft pod affinity", ca - 1)
                else:
                    model.add_multiplication_equality(y, [sum_c, sum_c - 1])
                    mb.count_constraint("soft pod affinity")

                def value(counts: Counts, c: int = pt.c, on: np.ndarray = on) -> int:
                    k = int(counts[c, on].sum())
                    return k * (k - 1)
            else:
                cb = min(int(mb.upper[dd[v]].sum()), int(size[pt.d]))
                y = model.new_int_var(0, ca * cb, f"soft_pairs_{pt.c}_{pt.d}_{v}")
                sum_d = cp_model.LinearExpr.sum([mb.x[p] for p in dd[v]])
                model.add_multiplication_equality(y, [sum_c, sum_d])
                mb.count_constraint("soft pod affinity")

                def value(counts: Counts, c: int = pt.c, d: int = pt.d, on: np.ndarray = on) -> int:
                    return int(counts[c, on].sum()) * int(counts[d, on].sum())
            hints.append((y, value))
            ys.append(y)
        return cp_model.LinearExpr.sum(ys)

    def _encode_spread(self, g: SpreadGroup, domains: np.ndarray, hints: Hints
                       ) -> cp_model.LinearExprT:
        mb = self.mb
        model = mb.model
        inst = g.inst
        running = inst.domain_counts(inst.running)
        counted = inst.affects[mb.pair_cls] & inst.eligible[mb.pair_node]
        f_terms: dict[int, list[cp_model.IntVar]] = {}
        for p in np.nonzero(counted)[0].tolist():
            f_terms.setdefault(int(inst.dom[mb.pair_node[p]]), []).append(mb.x[p])
        owner = np.isin(mb.pair_cls, g.owners) & (inst.dom[mb.pair_node] != MISSING)
        recv: dict[int, list[int]] = {}
        for p in np.nonzero(owner)[0].tolist():
            recv.setdefault(int(inst.dom[mb.pair_node[p]]), []).append(p)
        if not recv:
            return 0

        def f(v: int) -> cp_model.LinearExprT:
            return int(running[v]) + cp_model.LinearExpr.sum(f_terms.get(v, []))

        top = int(running.sum()) + int(mb.upper[counted].sum())
        m = model.new_int_var(0, max(top, 0), "soft_spread_min")
        for u in domains.tolist():
            model.add(m <= f(u))
        if not domains.size:
            model.add(m == 0)
        mb.count_constraint("soft topology spread", len(domains))
        hints.append((m, lambda counts, g=g, d=domains: self.minimum(g, d, counts)))
        es = []
        for v, ps in sorted(recv.items()):
            e = model.new_int_var(0, max(top, 0), f"soft_spread_excess_{v}")
            b = model.new_bool_var(f"soft_spread_recv_{v}")
            model.add(cp_model.LinearExpr.sum([mb.x[p] for p in ps]) <= int(mb.upper[ps].sum()) * b)
            model.add(e >= f(v) - m - g.max_skew).only_enforce_if(b)
            mb.count_constraint("soft topology spread", 2)
            on = np.array(ps, dtype=np.int64)

            def received(counts: Counts, on: np.ndarray = on) -> int:
                return int(counts[mb.pair_cls[on], mb.pair_node[on]].sum() > 0)

            def excess(counts: Counts, g: SpreadGroup = g, d: np.ndarray = domains, v: int = v,
                       on: np.ndarray = on) -> int:
                if not counts[mb.pair_cls[on], mb.pair_node[on]].sum():
                    return 0
                return max(0, int(self._f(g, counts)[v]) - self.minimum(g, d, counts) - g.max_skew)

            hints.append((b, received))
            hints.append((e, excess))
            es.append(e)
        return cp_model.LinearExpr.sum(es)
