"""The heap greedy with spread and pod-affinity gates must bind exactly as the vector greedy,
whose `admits` hooks recount every bound agent per step (the reading kube's Filter defines)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import numpy as np
import pytest

from models import load_documents
from optimizer.baseline import decreasing_size_order, greedy
from optimizer.fastgreedy import fast_applies, greedy_local
from optimizer.greedy_gates import DROP, OK, PARK, Gates
from optimizer.index import Index
from optimizer.rules import RULES
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter
from tests.builders import node, pod

ZONE, HOST = "topology.kubernetes.io/zone", "kubernetes.io/hostname"
APPS = ("a", "b", "c")


def _spread(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for key in rng.sample([ZONE, HOST, "rack"], rng.choice([1, 1, 2])):
        c: dict[str, Any] = {"maxSkew": rng.choice([1, 1, 2]), "topologyKey": key,
                             "whenUnsatisfiable": "DoNotSchedule",
                             "labelSelector": {"matchLabels": {"app": rng.choice(APPS)}}}
        if rng.random() < 0.2:
            c["minDomains"] = rng.choice([2, 5])
        out.append(c)
    return out


def _term(rng: random.Random) -> dict[str, Any]:
    return {"topologyKey": rng.choice([ZONE, HOST, "rack"]),
            "labelSelector": {"matchLabels": {"app": rng.choice(APPS)}}}


def window(seed: int) -> list[dict[str, Any]]:
    """Nodes over zones and racks (some without a rack label), running pods with labels and
    anti-affinity, pending agents of a few kinds with spread, affinity and anti-affinity."""
    rng = random.Random(seed)
    nodes = rng.randint(6, 18)
    docs = []
    for i in range(nodes):
        labels = {ZONE: f"z{i % 3}"}
        if rng.random() < 0.85:
            labels["rack"] = f"r{i % 5}"
        docs.append(node(f"n{i:02d}", cpu=rng.choice(["2", "4"]), memory="8Gi",
                         pods=rng.choice(["4", "110"]), labels=labels))
    for j in range(rng.randint(0, 6)):
        aff = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term(rng)]}} \
            if rng.random() < 0.3 else None
        docs.append(pod(f"run{j}", cpu="500m", node_name=f"n{rng.randrange(nodes):02d}",
                        labels={"app": rng.choice(APPS)}, affinity=aff))
    kinds = []
    for _ in range(rng.randint(2, 5)):
        kind: dict[str, Any] = {"app": rng.choice(APPS), "cpu": rng.choice(["250m", "500m", "1"])}
        roll = rng.random()
        if roll < 0.45:
            kind["spread"] = _spread(rng)
        if 0.3 < roll < 0.7:
            kind["affinity"] = {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [_term(rng)]}}
        if roll > 0.6:
            anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term(rng)]}}
            kind["affinity"] = {**kind.get("affinity", {}), **anti}
        kinds.append(kind)
    for j in range(rng.randint(10, 60)):
        k = rng.choice(kinds)
        p = pod(f"p{j:02d}", cpu=k["cpu"], labels={"app": k["app"]}, affinity=k.get("affinity"))
        if "spread" in k:
            p["spec"]["topologySpreadConstraints"] = k["spread"]
        docs.append(p)
    return docs


@pytest.mark.parametrize("seed", range(60))
def test_same_assignment_as_vector_greedy(seed: int) -> None:
    ix = Index(build_snapshot(load_documents(window(seed), source="t")))
    assert fast_applies(ix)
    static, _ = prefilter(ix)
    rng = np.random.default_rng(seed)
    prefer = rng.integers(-1, ix.num_nodes, len(ix.snap.pending))
    for strategy in ("LeastAllocated", "MostAllocated", "FirstFit"):
        for order in (None, decreasing_size_order(ix)):
            vector = greedy(ix, static, strategy, rules=list(RULES), order=order)
            np.testing.assert_array_equal(greedy_local(ix, static, strategy, order=order), vector)
        vector = greedy(ix, static, strategy, rules=list(RULES), prefer=prefer)
        np.testing.assert_array_equal(greedy_local(ix, static, strategy, prefer=prefer), vector)


def test_windows_exercise_every_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator must reach every gate's park, drop and reopen paths, or the equivalence
    above proves little."""
    seen: Counter[str] = Counter()
    verdict, bind = Gates.verdict, Gates.bind

    def spy_verdict(self: Gates, c: int, n: int) -> tuple[int, Any, int]:
        got = verdict(self, c, n)
        kind = ("affinity" if any(got[1] is p for a in self.affinity if a for p in a.parked)
                else "spread")
        seen[{OK: "ok", PARK: f"park {kind}", DROP: "drop"}[got[0]]] += 1
        return got

    def spy_bind(self: Gates, d: int, n: int) -> list[tuple[int, list[int]]]:
        got = bind(self, d, n)
        seen["reopen"] += bool(got)
        return got

    monkeypatch.setattr(Gates, "verdict", spy_verdict)
    monkeypatch.setattr(Gates, "bind", spy_bind)
    for seed in range(60):
        ix = Index(build_snapshot(load_documents(window(seed), source="t")))
        greedy_local(ix, prefilter(ix)[0])
    assert min(seen[k] for k in ("ok", "park affinity", "park spread", "drop", "reopen")) >= 10, seen
