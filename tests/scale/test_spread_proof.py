"""The verifier's water-filling proof (topology_spread._water_filling_suffices) must never
accept a plan that the order search rejects: random zone-spread windows and random plans,
verified with and without the shortcut."""

from __future__ import annotations

import random
from typing import Any

import pytest

from models import load_documents
from optimizer.rules import topology_spread as ts
from optimizer.snapshot import build_snapshot
from optimizer.verify import verify
from tests.builders import node, pod


def _window(rng: random.Random) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    zones = rng.choice([2, 3, 4])
    nodes = [node(f"n{i}", labels={"zone": f"z{i % zones}"}) for i in range(rng.randint(3, 8))]
    if rng.random() < 0.3:  # a node without the key: never eligible
        nodes.append(node("bare"))
    docs: list[dict[str, Any]] = [*nodes]
    for j in range(rng.randint(0, 4)):  # running pods counted by the selector
        docs.append(pod(f"r{j}", labels={"app": "a"}, node_name=rng.choice(nodes)["metadata"]["name"]))
    agents = []
    skew = rng.choice([1, 1, 2])
    min_domains = rng.choice([None, None, zones + 1])
    for j in range(rng.randint(2, 9)):
        p = pod(f"a{j}", labels={"app": "a"} if rng.random() < 0.85 else {"app": "b"})
        c: dict[str, Any] = {"maxSkew": skew, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                             "labelSelector": {"matchLabels": {"app": "a"}}}
        if min_domains:
            c["minDomains"] = min_domains
        if rng.random() < 0.9:
            p["spec"]["topologySpreadConstraints"] = [c]
        docs.append(p)
        agents.append(f"default/a{j}")
    return docs, [n["metadata"]["name"] for n in nodes], agents


@pytest.mark.parametrize("seed", range(120))
def test_shortcut_agrees_with_the_search(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    docs, names, agents = _window(rng)
    snap = build_snapshot(load_documents(docs, source="t"))
    for _ in range(4):
        plan = [(a, rng.choice(names)) for a in agents if rng.random() < 0.8]
        fast = [v for v in verify(plan, snap) if v.rule == ts.PodTopologySpread.name]
        with monkeypatch.context() as m:
            m.setattr(ts, "_water_filling_suffices", lambda *a, **k: False)
            slow = [v for v in verify(plan, snap) if v.rule == ts.PodTopologySpread.name]
        assert bool(fast) == bool(slow), (plan, fast, slow)
