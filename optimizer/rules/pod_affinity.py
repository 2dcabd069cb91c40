"""InterPodAffinity: required pod affinity and anti-affinity, against running pods and the window.

kube's Filter (pkg/scheduler/framework/plugins/interpodaffinity/filtering.go) checks, in order:
  1. the agent's required affinity: the node has every term's topologyKey, and in each term's
     domain stands a pod matching ALL the terms; or, when no pod in the cluster matches all the
     terms (on a node with one of the keys) and the agent matches them itself, the first-pod
     exception lets it anywhere the keys exist (UnschedulableAndUnresolvable);
  2. the agent's required anti-affinity: no pod matching a term in that term's domain; a node
     without the key passes (Unschedulable);
  3. symmetry: no bound pod's required anti-affinity term matches the agent in that pod's domain,
     even when the agent declares nothing (Unschedulable).

A term's pods: the namespaces it lists, else those its namespaceSelector matches (`{}` = all),
else the owner's own namespace; a nil labelSelector matches nothing, `{}` everything. The API
server folds matchLabelKeys / mismatchLabelKeys into the labelSelector at admission as `key In
(value)` / `key NotIn (value)` of the pod's own label (skipped when the pod lacks it, or has no
labelSelector); we fold them again, which is idempotent for pods already admitted.

Preferred terms are scores, not filters: they belong to the objective and are not read here.

Batch reading. Anti-affinity does not depend on the order (kube checks both directions), so it is
a condition on the final state: two agents where either's term matches the other never share
the term's domain, an agent matching its own term is alone in its domain. Affinity does depend
on the order: each agent needs its match bound before it. The encoding is conservative; it
allows the plans that bind in this order:
  (1) at most one "seed" per class that may use the first-pod exception (no running pod matches
      all its terms, the class matches them itself); a seed must not follow a seed matching its
      terms, so at most one seed per group of classes matching each other's terms in a cycle;
  (2) every agent without required pod affinity;
  (3) the affinity classes in a fixed order, a class after every class matching all its terms
      (classes matching each other in a cycle: by index); each agent needs, in each term's
      domain, a running pod matching all its terms, an agent of an earlier class matching them,
      or its class's seed.
It rejects plans kube would allow only where two affinity classes must support each other in
both directions (the cycle is cut one way), or where two seeds of classes in one cycle are
needed. The verifier is exact: it searches for a binding order (`_unbindable`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from ortools.sat.python import cp_model

from models import Node, Pod
from models.pod import PodAffinityTerm
from models.selectors import LabelSelector
from optimizer.index import MISSING, Index
from optimizer.rules.base import Assignment, ClusterView, NodeUsage, Reason, Violation
from optimizer.snapshot import NAMESPACE_NAME_LABEL, Snapshot

if TYPE_CHECKING:
    from optimizer.model import ModelBuilder

REASON_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_ANTI = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"
SEARCH_BUDGET = 20_000  # verifier: binding-order states explored before giving up


def _required(pod: Pod, anti: bool) -> list[PodAffinityTerm]:
    aff = pod.spec.affinity
    block = (aff.pod_anti_affinity if anti else aff.pod_affinity) if aff else None
    return list(block.required_during_scheduling_ignored_during_execution) if block else []


def _ns_labels(name: str, known: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    return known.get(name) or {NAMESPACE_NAME_LABEL: name}


# --- scalar reading (explain, verify): plain Python on the raw objects ----------------------


@dataclass(frozen=True)
class Term:
    """One required term of one pod, as kube's framework.AffinityTerm holds it."""

    topology_key: str
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None  # None: none given (matches no namespace)
    selector: LabelSelector | None  # None matches no pod
    folded: tuple[tuple[str, str, str], ...]  # (key, In|NotIn, value) from (mis)matchLabelKeys


def terms_of(pod: Pod, anti: bool) -> list[Term]:
    out = []
    for t in _required(pod, anti):
        if not t.namespaces and t.namespace_selector is None:
            namespaces = frozenset({pod.namespace})
        else:
            namespaces = frozenset(t.namespaces)
        folded: list[tuple[str, str, str]] = []
        if t.label_selector is not None:
            folded += [(k, "In", pod.labels[k]) for k in t.match_label_keys if k in pod.labels]
            folded += [(k, "NotIn", pod.labels[k]) for k in t.mismatch_label_keys
                       if k in pod.labels]
        out.append(Term(t.topology_key, namespaces, t.namespace_selector, t.label_selector,
                        tuple(folded)))
    return out


def selector_matches(sel: LabelSelector, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelectorAsSelector(sel).Matches(labels); an empty selector matches all."""
    return sel.matches(labels)


def term_matches(term: Term, pod: Pod, namespace_labels: Mapping[str, str]) -> bool:
    """framework.AffinityTerm.Matches: the pod's namespace is covered and its labels match."""
    if term.selector is None:
        return False
    covered = pod.namespace in term.namespaces or (
        term.namespace_selector is not None
        and selector_matches(term.namespace_selector, namespace_labels))
    if not covered or not selector_matches(term.selector, pod.labels):
        return False
    for key, op, value in term.folded:
        have = pod.labels.get(key)
        if (op == "In") != (have == value):
            return False
    return True


def matches_all(terms: Sequence[Term], pod: Pod, nsl: Mapping[str, Mapping[str, str]]) -> bool:
    return bool(terms) and all(term_matches(t, pod, _ns_labels(pod.namespace, nsl)) for t in terms)


@dataclass(frozen=True)
class PreFiltered:
    """kube's PreFilter state for one pod: topology pairs counted once, read per node."""

    affinity_keys: tuple[str, ...]
    affinity_pairs: frozenset[tuple[str, str]]  # pairs holding a pod matching all the terms
    first_pod: bool  # no pair counted and the pod matches all its own terms
    anti_pairs: frozenset[tuple[str, str]]  # pairs holding a pod matching an anti term
    existing_pairs: frozenset[tuple[str, str]]  # pairs whose pods' anti terms match the pod

    def reason(self, node: Node) -> str | None:
        """kube's InterPodAffinity.Filter: the first failing check, or None."""
        if self.affinity_keys:
            if any(k not in node.labels for k in self.affinity_keys):
                return REASON_AFFINITY
            if not self.first_pod and not all(
                    (k, node.labels[k]) in self.affinity_pairs for k in self.affinity_keys):
                return REASON_AFFINITY
        for pairs, reason in ((self.anti_pairs, REASON_ANTI),
                              (self.existing_pairs, REASON_EXISTING)):
            if any((k, v) in pairs for k, v in node.labels.items()):
                return reason
        return None


def pre_filter(pod: Pod, bound: Iterable[tuple[Pod, Node]],
               nsl: Mapping[str, Mapping[str, str]]) -> PreFiltered:
    """Count, over the `bound` pods (running plus earlier placements), the topology pairs each
    check reads (interpodaffinity PreFilter)."""
    affinity, anti = terms_of(pod, False), terms_of(pod, True)
    own = _ns_labels(pod.namespace, nsl)
    aff_pairs: set[tuple[str, str]] = set()
    anti_pairs: set[tuple[str, str]] = set()
    existing: set[tuple[str, str]] = set()
    for q, m in bound:
        if affinity and matches_all(affinity, q, nsl):
            aff_pairs |= {(t.topology_key, m.labels[t.topology_key]) for t in affinity
                          if t.topology_key in m.labels}
        for t in anti:
            if t.topology_key in m.labels and term_matches(t, q, _ns_labels(q.namespace, nsl)):
                anti_pairs.add((t.topology_key, m.labels[t.topology_key]))
        for t in terms_of(q, True):
            if t.topology_key in m.labels and term_matches(t, pod, own):
                existing.add((t.topology_key, m.labels[t.topology_key]))
    first_pod = bool(affinity) and not aff_pairs and matches_all(affinity, pod, nsl)
    return PreFiltered(tuple(t.topology_key for t in affinity), frozenset(aff_pairs), first_pod,
                       frozenset(anti_pairs), frozenset(existing))


# --- vectorised reading (prefilter, encode, greedy) ------------------------------------------

Req = tuple[str, str, frozenset[str]]  # (key, operator, values)


@dataclass(frozen=True)
class _Compiled:
    """A term compiled for table building: requirements as flat tuples."""

    key: str
    all_namespaces: bool
    namespaces: frozenset[str]
    ns_reqs: tuple[Req, ...] | None
    reqs: tuple[Req, ...] | None


def _flatten(sel: LabelSelector) -> tuple[Req, ...]:
    return tuple([(k, "In", frozenset({v})) for k, v in sel.match_labels.items()]
                 + [(r.key, r.operator, frozenset(r.values)) for r in sel.match_expressions])


def _compile(pod: Pod, anti: bool) -> list[_Compiled]:
    return compile_terms(pod, _required(pod, anti))


def compile_terms(pod: Pod, terms: Iterable[PodAffinityTerm]) -> list[_Compiled]:
    """Terms of `pod` compiled for table building (required ones here; preferred ones for the
    objective's soft term, optimizer/preferences.py, which matches them with `term_hits`)."""
    out = []
    for t in terms:
        default_ns = not t.namespaces and t.namespace_selector is None
        ns_reqs = None if t.namespace_selector is None else _flatten(t.namespace_selector)
        reqs = None
        if t.label_selector is not None:
            reqs = _flatten(t.label_selector) + tuple(
                (k, "In", frozenset({pod.labels[k]})) for k in t.match_label_keys
                if k in pod.labels) + tuple(
                (k, "NotIn", frozenset({pod.labels[k]})) for k in t.mismatch_label_keys
                if k in pod.labels)
        out.append(_Compiled(
            key=t.topology_key, all_namespaces=ns_reqs == (),
            namespaces=frozenset({pod.namespace} if default_ns else t.namespaces),
            ns_reqs=ns_reqs or None, reqs=reqs))
    return out


def _reqs_hold(reqs: tuple[Req, ...], labels: Mapping[str, str]) -> bool:
    for key, op, values in reqs:
        present = key in labels
        inside = present and labels[key] in values
        holds = {"In": inside, "NotIn": not inside, "Exists": present,
                 "DoesNotExist": not present}[op]
        if not holds:
            return False
    return True


def _hits(ct: _Compiled, pod: Pod, ns_labels: Mapping[str, str]) -> bool:
    if ct.reqs is None:
        return False
    ns_ok = ct.all_namespaces or pod.namespace in ct.namespaces or (
        ct.ns_reqs is not None and _reqs_hold(ct.ns_reqs, ns_labels))
    return ns_ok and _reqs_hold(ct.reqs, pod.labels)


term_hits = _hits  # kube's AffinityTerm.Matches over a compiled term


def _label_index(pods: list[Pod]) -> dict[tuple[str, str], list[int]]:
    """(label key, value) -> positions of the pods carrying it."""
    out: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(pods):
        for kv in p.labels.items():
            out.setdefault(kv, []).append(i)
    return out


def _hit_vector(t: _Compiled, pods: list[Pod], index: dict[tuple[str, str], list[int]],
                nsl: Callable[[str], Mapping[str, str]]) -> np.ndarray:
    """bool[pod]: _hits for every pod, testing only the pods that can pass the term's first `In`
    requirement (thousands of terms times thousands of classes otherwise)."""
    out = np.zeros(len(pods), dtype=bool)
    if t.reqs is None:
        return out
    first_in = next(((k, vals) for k, op, vals in t.reqs if op == "In"), None)
    cand: Iterable[int] = range(len(pods)) if first_in is None else sorted(
        {i for v in first_in[1] for i in index.get((first_in[0], v), ())})
    for i in cand:
        out[i] = _hits(t, pods[i], nsl(pods[i].namespace))
    return out


@dataclass
class _Tables:
    """Matches computed once per Index: classes against classes and running pods."""

    aff: list[list[_Compiled]]  # [cls] required affinity terms
    anti: list[list[_Compiled]]  # [cls] required anti-affinity terms
    all_aff_cls: np.ndarray  # bool[c, d]: class d matches every affinity term of c
    anti_cls: list[list[np.ndarray]]  # [c][term] bool[d]: class d matches c's anti term
    self_match: np.ndarray  # bool[c]: c matches all its own affinity terms
    run_node: np.ndarray  # int64[running pod] -> node
    all_aff_run: list[np.ndarray]  # [c] bool[running]: matches every affinity term of c
    anti_run: list[list[np.ndarray]]  # [c][term] bool[running]
    existing: list[list[tuple[str, int]]]  # [c] (key, node) of running pods' terms matching c
    seedable: np.ndarray  # bool[c]: the first-pod exception is open to c
    involved: bool = False

    def run_nodes(self, mask: np.ndarray) -> np.ndarray:
        return self.run_node[mask]


def _codes_at(ix: Index, key: str, nodes: np.ndarray) -> np.ndarray:
    codes = ix.label(key).codes[nodes]
    return codes[codes != MISSING]


def _build_tables(ix: Index) -> _Tables:
    snap = ix.snap
    labels_of: dict[str, Mapping[str, str]] = {}

    def nsl(name: str) -> Mapping[str, str]:
        if name not in labels_of:
            labels_of[name] = snap.namespace_labels(name)
        return labels_of[name]

    reps = [cls.pod for cls in ix.classes]
    nc = len(reps)
    aff = [_compile(p, False) for p in reps]
    anti = [_compile(p, True) for p in reps]
    running = list(snap.running)
    run_node = np.array([snap.node_pos[p.spec.node_name or ""] for p in running], dtype=np.int64)

    def all_hit(terms: list[_Compiled], pod: Pod) -> bool:
        return bool(terms) and all(_hits(t, pod, nsl(pod.namespace)) for t in terms)

    all_aff_cls = np.zeros((nc, nc), dtype=bool)
    all_aff_run = []
    for c in range(nc):
        if aff[c]:
            all_aff_cls[c] = [all_hit(aff[c], p) for p in reps]
        all_aff_run.append(np.array([all_hit(aff[c], p) for p in running], dtype=bool)
                           if aff[c] else np.zeros(len(running), dtype=bool))
    rep_index, run_index = _label_index(reps), _label_index(running)
    anti_cls = [[_hit_vector(t, reps, rep_index, nsl) for t in anti[c]] for c in range(nc)]
    anti_run = [[_hit_vector(t, running, run_index, nsl) for t in anti[c]] for c in range(nc)]
    existing: list[list[tuple[str, int]]] = [[] for _ in range(nc)]
    for i, p in enumerate(running):
        for t in _compile(p, True):
            for c in np.nonzero(_hit_vector(t, reps, rep_index, nsl))[0].tolist():
                existing[c].append((t.key, int(run_node[i])))
    self_match = np.diag(all_aff_cls).copy()
    seedable = np.zeros(nc, dtype=bool)
    for c in range(nc):
        if aff[c] and self_match[c]:
            keyed = np.zeros(len(running), dtype=bool)
            for t in aff[c]:
                keyed |= ix.label(t.key).present[run_node]
            seedable[c] = not (all_aff_run[c] & keyed).any()
    involved = any(aff) or any(anti) or any(existing)
    return _Tables(aff, anti, all_aff_cls, anti_cls, self_match, run_node, all_aff_run,
                   anti_run, existing, seedable, involved)


def _support_order(tb: _Tables) -> list[tuple[int, int, int]]:
    """A fixed binding order of classes, as sort keys: classes without required affinity first,
    then affinity classes so that a class comes after every class that can support it (matches
    all its terms) unless they support each other, where the class index decides. Supporting
    agents must come earlier in this order, so every affinity agent's match is bound before it."""
    nc = len(tb.aff)
    edges = tb.all_aff_cls.T.copy()  # edges[d, c]: d supports c
    np.fill_diagonal(edges, False)
    reach = edges.copy()
    for k in range(nc):
        reach |= reach[:, [k]] & reach[[k], :]
    strict = reach & ~reach.T  # d reaches c and c does not reach d
    ancestors = strict.sum(axis=0)
    return [(1, int(ancestors[c]), c) if tb.aff[c] else (0, 0, c)
            for c in range(nc)]


def _scc_groups(edges: np.ndarray, members: list[int]) -> list[list[int]]:
    """Strongly connected groups (size > 1) of the digraph `edges` restricted to `members`."""
    m = len(members)
    reach = edges[np.ix_(members, members)].copy()
    for k in range(m):
        reach |= reach[:, [k]] & reach[[k], :]
    mutual = reach & reach.T
    seen: set[int] = set()
    out = []
    for i in range(m):
        if i in seen:
            continue
        group = [j for j in range(m) if j == i or mutual[i, j]]
        seen.update(group)
        if len(group) > 1:
            out.append([members[j] for j in group])
    return out


class InterPodAffinity:
    name: ClassVar[str] = "InterPodAffinity"

    def __init__(self) -> None:
        self._tables: weakref.WeakKeyDictionary[Index, _Tables] = weakref.WeakKeyDictionary()
        self._last: tuple[tuple[int, int], ClusterView | None, Pod, PreFiltered] | None = None

    def tables(self, ix: Index) -> _Tables:
        tb = self._tables.get(ix)
        if tb is None:
            tb = self._tables[ix] = _build_tables(ix)
        return tb

    # -- prefilter ---------------------------------------------------------------------------

    def prefilter(self, ix: Index) -> np.ndarray | None:
        """Per class over nodes: nodes lacking an affinity key; domains with no running match
        unless window agents or the first-pod exception could satisfy the affinity; domains
        where a running pod matches an anti-affinity term, or whose running pods' anti-affinity
        matches the class."""
        tb = self.tables(ix)
        if not tb.involved:
            return None
        mask = np.ones((ix.num_classes, ix.num_nodes), dtype=bool)
        for c in range(ix.num_classes):
            row = mask[c]
            if tb.aff[c]:
                others = tb.all_aff_cls[c].copy()
                others[c] = False
                open_ = tb.seedable[c] or others.any()
                for t in tb.aff[c]:
                    col = ix.label(t.key)
                    row &= col.present
                    if not open_:
                        row &= np.isin(col.codes, _codes_at(ix, t.key,
                                                            tb.run_nodes(tb.all_aff_run[c])))
            for t, hit in zip(tb.anti[c], tb.anti_run[c], strict=True):
                blocked = _codes_at(ix, t.key, tb.run_nodes(hit))
                if blocked.size:
                    row &= ~np.isin(ix.label(t.key).codes, blocked)
            for key, n in tb.existing[c]:
                codes = ix.label(key).codes
                if codes[n] != MISSING:
                    row &= codes != codes[n]
        return mask

    # -- encode ------------------------------------------------------------------------------

    def encode(self, mb: ModelBuilder, ix: Index) -> None:
        tb = self.tables(ix)
        if not tb.involved or not len(mb.x):
            return
        model = mb.model
        # candidate pairs per class, grouped in one sort (a mask per class is classes x pairs)
        order = np.argsort(mb.pair_cls, kind="stable")
        bounds = np.searchsorted(mb.pair_cls[order], np.arange(ix.num_classes + 1))
        pairs_of: dict[int, np.ndarray] = {
            c: order[bounds[c]:bounds[c + 1]] for c in range(ix.num_classes)}
        domains: dict[tuple[int, str], dict[int, list[int]]] = {}

        def dom(c: int, key: str) -> dict[int, list[int]]:
            """domain code -> candidate pairs of class c there."""
            if (c, key) not in domains:
                codes = ix.label(key).codes
                out: dict[int, list[int]] = {}
                for p in pairs_of[c].tolist():
                    v = int(codes[mb.pair_node[p]])
                    if v != MISSING:
                        out.setdefault(v, []).append(p)
                domains[(c, key)] = out
            return domains[(c, key)]

        presence: dict[tuple[int, str, int], cp_model.IntVar] = {}

        def present(c: int, key: str, v: int) -> cp_model.IntVar:
            """A boolean equal to 'some agent of class c is placed in domain key=v'."""
            if (c, key, v) not in presence:
                ps = dom(c, key)[v]
                b = model.new_bool_var(f"ipa_p_{c}_{key}_{v}")
                total = cp_model.LinearExpr.sum([mb.x[p] for p in ps])
                model.add(total <= int(mb.upper[ps].sum()) * b)
                model.add(total >= b)
                mb.count_constraint("InterPodAffinity presence", 2)
                presence[(c, key, v)] = b
                nodes = mb.pair_node[ps]
                mb.aux_hints.append((b, lambda counts, c=c, nodes=nodes: int(counts[c, nodes].sum() > 0)))
            return presence[(c, key, v)]

        # anti-affinity: a final-state condition between classes (both directions)
        done: set[tuple[int, int, str]] = set()
        for c in range(ix.num_classes):
            for t, hit in zip(tb.anti[c], tb.anti_cls[c], strict=True):
                for d in np.nonzero(hit)[0].tolist():
                    pair = (min(c, d), max(c, d), t.key)
                    if pair in done or not len(pairs_of[c]) or not len(pairs_of[d]):
                        continue
                    done.add(pair)
                    if c == d:
                        for ps in dom(c, t.key).values():
                            if int(mb.upper[ps].sum()) > 1:
                                model.add(cp_model.LinearExpr.sum([mb.x[p] for p in ps]) <= 1)
                                mb.count_constraint("InterPodAffinity anti-affinity")
                        continue
                    shared = dom(c, t.key).keys() & dom(d, t.key).keys()
                    for v in sorted(shared):
                        model.add(present(c, t.key, v) + present(d, t.key, v) <= 1)
                        mb.count_constraint("InterPodAffinity anti-affinity")

        # affinity: running matches, agents without affinity, or the class's own seed
        rank = _support_order(tb)
        seeds: dict[int, list[cp_model.IntVar]] = {}
        for c in range(ix.num_classes):
            if not tb.aff[c] or not len(pairs_of[c]):
                continue
            supporters = [d for d in np.nonzero(tb.all_aff_cls[c])[0].tolist()
                          if rank[d] < rank[c] and len(pairs_of[d])]
            seed_of_pair: dict[int, cp_model.IntVar] = {}
            if tb.seedable[c]:
                for p in pairs_of[c].tolist():
                    z = model.new_bool_var(f"ipa_seed_{c}_{p}")
                    model.add(z <= mb.x[p])
                    seed_of_pair[p] = z
                model.add(cp_model.LinearExpr.sum(list(seed_of_pair.values())) <= 1)
                mb.count_constraint("InterPodAffinity seed", len(seed_of_pair) + 1)
                seeds[c] = list(seed_of_pair.values())
            for t in tb.aff[c]:
                matched = set(_codes_at(ix, t.key, tb.run_nodes(tb.all_aff_run[c])).tolist())
                for v, ps in dom(c, t.key).items():
                    if v in matched:
                        continue
                    support = [present(d, t.key, v) for d in supporters if v in dom(d, t.key)]
                    support += [seed_of_pair[p] for p in ps if p in seed_of_pair]
                    if support:
                        model.add(present(c, t.key, v) <= cp_model.LinearExpr.sum(support))
                    else:
                        model.add(cp_model.LinearExpr.sum([mb.x[p] for p in ps]) == 0)
                    mb.count_constraint("InterPodAffinity affinity")
        # seeds bind first, each before any seed matching its terms: no cycles among them
        members = sorted(seeds)
        kills = tb.all_aff_cls.T  # kills[e, c]: an agent of e matches every affinity term of c
        for group in _scc_groups(kills, members) if len(members) > 1 else []:
            model.add(cp_model.LinearExpr.sum([z for c in group for z in seeds[c]]) <= 1)
            mb.count_constraint("InterPodAffinity seed order")

    # -- greedy hook -------------------------------------------------------------------------

    def admits(self, ix: Index, state: Any, agent: int, nodes: np.ndarray) -> np.ndarray:
        """kube's Filter for one greedy step against running pods plus the agents bound so far."""
        tb = self.tables(ix)
        if not tb.involved:
            return nodes
        node_of = getattr(state, "node_of", None)
        if node_of is not None:
            bound = np.nonzero(node_of >= 0)[0]
            b_cls, b_node = ix.class_of[bound], node_of[bound]
        else:  # a counts[cls, node] state
            b_cls, b_node = np.nonzero(state.counts)
        c = int(ix.class_of[agent])
        out = nodes.copy()
        if tb.aff[c]:
            matchers = np.concatenate([tb.run_nodes(tb.all_aff_run[c]),
                                       b_node[tb.all_aff_cls[c][b_cls]]])
            exists = np.ones(ix.num_nodes, dtype=bool)
            counted = False
            for t in tb.aff[c]:
                col = ix.label(t.key)
                out &= col.present
                here = _codes_at(ix, t.key, matchers)
                counted |= bool(here.size)
                exists &= np.isin(col.codes, here)
            if counted or not tb.self_match[c]:
                out &= exists
        for t, hit in zip(tb.anti[c], tb.anti_cls[c], strict=True):
            blocked = _codes_at(ix, t.key, b_node[hit[b_cls]])
            if blocked.size:
                out &= ~np.isin(ix.label(t.key).codes, blocked)
        for d in np.unique(b_cls).tolist():
            for t, hit in zip(tb.anti[d], tb.anti_cls[d], strict=True):
                if hit[c]:
                    blocked = _codes_at(ix, t.key, b_node[b_cls == d])
                    if blocked.size:
                        out &= ~np.isin(ix.label(t.key).codes, blocked)
        return out

    # -- explain -----------------------------------------------------------------------------

    def explain(self, pod: Pod, node: Node, usage: NodeUsage) -> list[Reason]:
        view = usage.cluster
        key = (id(view), id(pod))
        if self._last is None or self._last[0] != key or self._last[1] is not view:
            if view is None:
                state = pre_filter(pod, [], {})
            else:
                by_name = {n.name: n for n in view.nodes}
                bound = [(q, by_name[n]) for q, n in view.pods if n in by_name and q is not pod]
                state = pre_filter(pod, bound, view.namespace_labels)
            self._last = (key, view, pod, state)  # explain walks the nodes of one pod in turn
        reason = self._last[3].reason(node)
        if reason is None:
            return []
        return [Reason(self.name, reason, unresolvable=reason == REASON_AFFINITY)]

    # -- verify ------------------------------------------------------------------------------

    def verify(self, assignment: Assignment, snap: Snapshot) -> list[Violation]:
        """Exact: anti-affinity on the final state (it is order-independent), then a search
        for an order binding every placed agent with its affinity satisfied when it binds."""
        pods = {p.ref: p for p in snap.pending}
        nodes = {n.name: n for n in snap.nodes}
        placed = [(pods[a], nodes[n]) for a, n in assignment.items() if a in pods and n in nodes]
        nsl = {name: snap.namespace_labels(name) for name in
               {p.namespace for p in (*snap.running, *snap.pending)}
               | {ns.name for ns in snap.namespaces}}
        running = [(p, nodes[p.spec.node_name or ""]) for p in snap.running]
        found: dict[tuple[str, str], _Found] = {}

        def note(pod: Pod, node: Node, reason: str, detail: str) -> None:
            found.setdefault((pod.ref, reason), _Found(pod.ref, node.name, reason)).details.append(
                detail)

        everyone = running + placed
        by_domain = _DomainIndex(everyone)
        for a, an in placed:
            for t in terms_of(a, True):
                value = an.labels.get(t.topology_key)
                if value is None:
                    continue
                for q, qn in by_domain.of(t.topology_key, value):
                    if q is not a and term_matches(t, q, nsl[q.namespace]):
                        note(a, an, REASON_ANTI,
                             f"{q.ref} on {qn.name} matches its term in {t.topology_key}={value}")
        placed_by_domain = _DomainIndex(placed)
        for q, qn in running:
            for t in terms_of(q, True):
                value = qn.labels.get(t.topology_key)
                if value is None:
                    continue
                for a, an in placed_by_domain.of(t.topology_key, value):
                    if term_matches(t, a, nsl[a.namespace]):
                        note(a, an, REASON_EXISTING,
                             f"running {q.ref} on {qn.name} excludes it from "
                             f"{t.topology_key}={value}")
        for a, an in _unbindable(placed, running, nsl):
            note(a, an, REASON_AFFINITY, "no binding order gives it a pod matching all its "
                 "terms in each term's domain (nor the first-pod exception) when it binds")
        # one reason per agent, the first in kube's Filter order, as kube would report it
        order = (REASON_AFFINITY, REASON_ANTI, REASON_EXISTING)
        first: dict[str, _Found] = {}
        for f in sorted(found.values(), key=lambda f: order.index(f.reason)):
            first.setdefault(f.agent, f)
        return [Violation(self.name, f.agent, f.node, f"{f.reason}: {'; '.join(f.details[:3])}")
                for f in sorted(first.values(), key=lambda f: f.agent)]


class _DomainIndex:
    """Pods by (topology key, value) of their node, built per key on first use: anti-affinity
    checks only pods sharing the domain (a scan of every pod per term was O(agents^2): 241 s
    at 50,000)."""

    def __init__(self, pods: list[tuple[Pod, Node]]) -> None:
        self._pods = pods
        self._by_key: dict[str, dict[str, list[tuple[Pod, Node]]]] = {}

    def of(self, key: str, value: str) -> list[tuple[Pod, Node]]:
        table = self._by_key.get(key)
        if table is None:
            table = self._by_key[key] = {}
            for q, qn in self._pods:
                v = qn.labels.get(key)
                if v is not None:
                    table.setdefault(v, []).append((q, qn))
        return table.get(value, [])


@dataclass
class _Found:
    agent: str
    node: str
    reason: str
    details: list[str] = field(default_factory=list)


def _unbindable(placed: list[tuple[Pod, Node]], running: list[tuple[Pod, Node]],
                nsl: Mapping[str, Mapping[str, str]]) -> list[tuple[Pod, Node]]:
    """Placed agents left over by the best binding order found; empty when every agent binds.

    From a set of bound agents, binding an agent that can bind now and closes no one's open
    first-pod exception never hurts (affinity support only grows; anti-affinity is checked on
    the final state), so those bind at once; when none is left, each agent that can bind is
    tried in turn (depth-first, memoised), since it closes some exception."""
    aff = [terms_of(a, False) for a, _ in placed]
    idx = [i for i, t in enumerate(aff) if t]
    if not idx:
        return []
    n = len(placed)
    # agents with equal terms match the same pods: match once per distinct term list
    hits: dict[str, tuple[list[int], list[Node]]] = {}
    for i in idx:
        key = repr(aff[i])
        if key not in hits:
            hits[key] = ([j for j in range(n) if matches_all(aff[i], placed[j][0], nsl)],
                         [m for q, m in running if matches_all(aff[i], q, nsl)])
    # matchers[i]: placed agents matching all of i's terms; running support per term
    matchers = {i: [j for j in hits[repr(aff[i])][0] if j != i] for i in idx}
    keys_ok, run_ok, run_counted, self_ok = {}, {}, {}, {}
    for i in idx:
        a, an = placed[i]
        keys_ok[i] = all(t.topology_key in an.labels for t in aff[i])
        run = hits[repr(aff[i])][1]
        run_ok[i] = [any(m.labels.get(t.topology_key) == an.labels.get(t.topology_key)
                         for m in run) for t in aff[i]]
        run_counted[i] = any(t.topology_key in m.labels for m in run for t in aff[i])
        self_ok[i] = matches_all(aff[i], a, nsl)

    def keyed(j: int, i: int) -> bool:  # agent j, once bound, counts against i's exception
        return any(t.topology_key in placed[j][1].labels for t in aff[i])

    def exception_open(i: int, bound: AbstractSet[int]) -> bool:
        return self_ok[i] and not run_counted[i] and not any(
            j in bound and keyed(j, i) for j in matchers[i])

    def can_bind(i: int, bound: AbstractSet[int]) -> bool:
        if not aff[i]:
            return True
        if not keys_ok[i]:
            return False
        an = placed[i][1]
        normal = all(run_ok[i][k] or any(
            j in bound and placed[j][1].labels.get(t.topology_key) == an.labels[t.topology_key]
            for j in matchers[i]) for k, t in enumerate(aff[i]))
        return normal or exception_open(i, bound)

    # watchers[j]: agents whose open exception binding j would close. Only an agent that can
    # have an open exception (self_ok, no running matcher) can watch; membership goes through
    # one set per distinct term list (a list scan made this O(n^3): > 10 min at 5,000 agents)
    hit_sets = {key: set(js) for key, (js, _) in hits.items()}
    can_open = [i for i in idx if self_ok[i] and not run_counted[i]]
    hit_set_of = {i: hit_sets[repr(aff[i])] for i in can_open}
    watchers = {j: [i for i in can_open if i != j and j in hit_set_of[i] and keyed(j, i)]
                for j in range(n)}
    best: list[frozenset[int]] = [frozenset()]
    seen: set[frozenset[int]] = set()

    def search(bound: frozenset[int]) -> bool:
        while True:  # the safe closure (one mutable set per pass, not a frozenset copy per agent)
            grown = set(bound)
            for i in range(n):
                if i in grown or not can_bind(i, grown):
                    continue
                if any(r not in grown and r != i and exception_open(r, grown)
                       for r in watchers[i]):
                    continue
                grown.add(i)
            if len(grown) == len(bound):
                break
            bound = frozenset(grown)
        if len(bound) == n:
            return True
        if len(bound) > len(best[0]):
            best[0] = bound
        if bound in seen or len(seen) >= SEARCH_BUDGET:
            return False
        seen.add(bound)
        return any(search(bound | {i}) for i in range(n)
                   if i not in bound and can_bind(i, bound))

    if search(frozenset()):
        return []
    return [placed[i] for i in range(n) if i not in best[0]]
