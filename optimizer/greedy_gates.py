"""Incremental PodTopologySpread and InterPodAffinity checks for the heap greedy.

The vector greedy asks each rule's `admits` hook per agent, which recounts every agent bound so
far over every node: O(agents x (agents + nodes)), ~200 s for 50,000 x 50,000. Both rules decide
a node from its *domain* (its value of a topology key) and a few counters that only grow while
the greedy binds, so they can be kept per domain and updated per binding:

- spread (DoNotSchedule): the domain's matching count and the minimum over the eligible domains.
  A domain too far ahead is *parked* (its nodes leave the class's heap) until the minimum rises,
  the only event that can readmit it (counts never fall); with minDomains unmet the minimum is 0
  for good and the node is dropped.
- required anti-affinity, both directions: a domain holding a matching agent is closed for good.
- required affinity: a domain is open once it holds a matching pod (parked until then); before
  the first match anywhere, a self-matching class may go anywhere (kube's first-pod exception).

`verdict` answers for one (class, node) in O(gates of the class); `bind` updates the counters
and returns the parked nodes a binding readmits. Verdicts equal `admits`' (the equivalence tests
in tests/scale/test_fastgreedy.py run both greedies on the same windows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.index import MISSING, Index
from optimizer.rules import pod_affinity, topology_spread

OK, PARK, DROP = 0, 1, 2
Parked = dict[int, list[int]]  # domain code -> nodes parked for it


@dataclass
class _Spread:
    cls: int
    codes: list[int]  # [node] domain code or MISSING
    eligible: np.ndarray  # bool[node]: its pods count
    counts: list[int]  # [code]
    domains: list[int]  # codes of the eligible domains
    in_domains: np.ndarray  # bool[code]
    self_match: int
    max_skew: int
    unmet: bool
    minimum: int = 0
    at_min: int = 0  # eligible domains whose count is the minimum
    parked: Parked = field(default_factory=dict)

    def ok(self, code: int) -> bool:
        return self.counts[code] + self.self_match - self.minimum <= self.max_skew


@dataclass
class _Affinity:
    codes: list[list[int]]  # [term][node]
    has: list[np.ndarray]  # [term] bool[code]: a matching pod sits in the domain
    counted: bool  # a matching pod sits on a node with one of the terms' keys
    self_match: bool
    parked: list[Parked]  # [term]


class Gates:
    """The dynamic part of the spread and pod-affinity checks of one greedy run."""

    def __init__(self, ix: Index) -> None:
        nc = ix.num_classes
        self.spread: list[list[_Spread]] = [[] for _ in range(nc)]
        self.spread_by: list[list[_Spread]] = [[] for _ in range(nc)]  # bound class -> counters
        for rows in topology_spread.instances(ix):
            for inst in rows:
                g = self._spread(inst)
                self.spread[inst.cls].append(g)
                for d in np.flatnonzero(inst.affects).tolist():
                    self.spread_by[d].append(g)
        tb = pod_affinity.InterPodAffinity().tables(ix)
        self.affinity: list[_Affinity | None] = [None] * nc
        self.supports: list[list[int]] = [[] for _ in range(nc)]  # bound class -> classes
        # anti-affinity: per class, its closed domains per key with the key's codes; per bound
        # class, the closed-domain flags it sets
        self.closes: list[list[tuple[np.ndarray, list[int]]]] = [[] for _ in range(nc)]
        self._closed_rows: list[list[tuple[np.ndarray, list[int]]]] = [[] for _ in range(nc)]
        self._codes: dict[str, list[int]] = {}
        if not tb.involved:
            return
        for c in range(nc):
            if tb.aff[c]:
                self.affinity[c] = self._affinity(ix, tb, c)
                for d in np.flatnonzero(tb.all_aff_cls[c]).tolist():
                    self.supports[d].append(c)
        marks: set[tuple[int, int, str]] = set()  # (bound class, closed class, key)
        for c in range(nc):
            for t, hit in zip(tb.anti[c], tb.anti_cls[c], strict=True):
                for d in np.flatnonzero(hit).tolist():
                    marks.add((d, c, t.key))  # c's own term against d
                    marks.add((c, d, t.key))  # c bound: its term shuts d out (symmetry)
        closed: list[dict[str, np.ndarray]] = [{} for _ in range(nc)]  # [class][key] bool[code]
        for d, c, key in sorted(marks):
            if key not in closed[c]:
                closed[c][key] = _domain_flags(ix, key)
            self.closes[d].append((closed[c][key], self._key_codes(ix, key)))
        self._closed_rows = [[(arr, self._key_codes(ix, key)) for key, arr in row.items()]
                             for row in closed]

    def _key_codes(self, ix: Index, key: str) -> list[int]:
        if key not in self._codes:
            self._codes[key] = ix.label(key).codes.tolist()
        return self._codes[key]

    @staticmethod
    def _spread(inst: topology_spread._Instance) -> _Spread:
        counts = inst.domain_counts(inst.running)
        size = max(int(inst.dom.max(initial=-1)) + 1, 1)
        in_domains = np.zeros(size, dtype=bool)
        in_domains[inst.domains] = True
        g = _Spread(inst.cls, inst.dom.tolist(), inst.eligible, counts.tolist(),
                    inst.domains.tolist(), in_domains, int(inst.self_match), inst.c.max_skew,
                    inst.unmet or len(inst.domains) == 0)
        _reset_minimum(g)
        return g

    @staticmethod
    def _affinity(ix: Index, tb: pod_affinity._Tables, c: int) -> _Affinity:
        matchers = tb.run_nodes(tb.all_aff_run[c])
        codes, has, counted = [], [], False
        for t in tb.aff[c]:
            col = ix.label(t.key)
            arr = _domain_flags(ix, t.key)
            here = col.codes[matchers]
            here = here[here != MISSING]
            arr[here] = True
            counted |= bool(here.size)
            codes.append(col.codes.tolist())
            has.append(arr)
        return _Affinity(codes, has, counted, bool(tb.self_match[c]), [{} for _ in tb.aff[c]])

    @property
    def any(self) -> bool:
        return any(self.spread) or any(a is not None for a in self.affinity) or any(self.closes)

    def verdict(self, c: int, n: int) -> tuple[int, Parked | None, int]:
        """(OK | PARK | DROP, where to park, domain code) for one agent of class c on node n."""
        for arr, codes in self._closed_rows[c]:
            code = codes[n]
            if code != MISSING and arr[code]:
                return DROP, None, 0
        aff = self.affinity[c]
        if aff is not None:
            open_ = not aff.counted and aff.self_match
            for t, codes in enumerate(aff.codes):
                code = codes[n]
                if code == MISSING:
                    return DROP, None, 0
                if not open_ and not aff.has[t][code]:
                    return PARK, aff.parked[t], code
        for g in self.spread[c]:
            code = g.codes[n]
            if code == MISSING:
                return DROP, None, 0
            if not g.ok(code):
                return (DROP, None, 0) if g.unmet else (PARK, g.parked, code)
        return OK, None, 0

    def bind(self, d: int, n: int) -> list[tuple[int, list[int]]]:
        """Count an agent of class d bound to node n; (class, nodes) readmitted by it."""
        for arr, codes in self.closes[d]:
            code = codes[n]
            if code != MISSING:
                arr[code] = True
        back: list[tuple[int, list[int]]] = []
        for c in self.supports[d]:
            aff = self.affinity[c]
            assert aff is not None
            for t, codes in enumerate(aff.codes):
                code = codes[n]
                if code == MISSING:
                    continue
                aff.counted = True
                if not aff.has[t][code]:
                    aff.has[t][code] = True
                    if code in aff.parked[t]:
                        back.append((c, aff.parked[t].pop(code)))
        for g in self.spread_by[d]:
            if not g.eligible[n]:
                continue
            code = g.codes[n]
            g.counts[code] += 1
            if g.unmet or not g.in_domains[code] or g.counts[code] - 1 != g.minimum:
                continue
            g.at_min -= 1
            if g.at_min == 0:  # the minimum rose: domains it held back may pass now
                _reset_minimum(g)
                for code2 in [k for k in g.parked if g.ok(k)]:
                    back.append((g.cls, g.parked.pop(code2)))
        return back


def _domain_flags(ix: Index, key: str) -> np.ndarray:
    """bool[code] over the values of a label key, all False."""
    return np.zeros(max(int(ix.label(key).codes.max(initial=-1)) + 1, 1), dtype=bool)


def _reset_minimum(g: _Spread) -> None:
    if g.unmet:
        g.minimum, g.at_min = 0, 0
        return
    vals = [g.counts[k] for k in g.domains]
    g.minimum = min(vals)
    g.at_min = vals.count(g.minimum)
