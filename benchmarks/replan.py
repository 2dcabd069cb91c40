"""Re-planning vs greedy consolidation, same cluster, same move budget, same run.

    python -m benchmarks.replan --nodes 40 --pods 120 --budgets 5,10,20 [--out DIR]

A seeded cluster of identical nodes in three zones with controller-owned running pods spread
round-robin (kube's LeastAllocated leaves such a fleet). Per move budget it runs
`agentplace replan --profile pack` and a greedy single-node consolidation in the spirit of
descheduler's HighNodeUtilization / Karpenter's single-node consolidation (least-loaded node
first, move all its pods to the most-loaded nodes that take them, keep the node's moves only if
all fit within the budget). Every move of both is checked step by step by the verifier (the
greedy's through the same step check as replan's ordering). Prints and writes DIR/replan.json:
moves, nodes freed, seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from models import Inventory, Pod, load_documents
from optimizer.config import SolveConfig
from optimizer.replan import ReplanConfig, _state, _step_ok, pin_reason, replan


def cluster(nodes: int, pods: int, seed: int, sizes: tuple[int, ...] = (1, 2, 3, 4)) -> Inventory:
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for i in range(nodes):
        alloc = {"cpu": "16", "memory": "64Gi", "pods": "110"}
        docs.append({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": f"n{i:03d}", "labels": {"kubernetes.io/hostname": f"n{i:03d}",
                                             "topology.kubernetes.io/zone": f"z{i % 3}"}},
            "status": {"capacity": alloc, "allocatable": alloc}})
    for j in range(pods):
        requests = {"cpu": str(rng.choice(sizes)), "memory": f"{rng.choice([2, 4, 8])}Gi"}
        docs.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"p{j:04d}", "namespace": f"ns{j % 5}", "uid": f"uid-{j}",
            "labels": {"app": f"a{j % 20}"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                 "uid": "rs", "controller": True}]},
            "spec": {"nodeName": f"n{j % nodes:03d}", "containers": [
                {"name": "agent", "image": "agent:1", "resources": {"requests": requests}}]},
            "status": {"phase": "Running"}})
    return load_documents(docs)


def greedy_consolidation(inv: Inventory, budget: int) -> dict[str, Any]:
    """Least-loaded node first: move all its pods (biggest first) to the most-loaded other
    nodes that pass the step check; keep the node's moves only if all fit within the budget."""
    t = time.perf_counter()
    pinned = {p.ref: r for p in inv.running if (r := pin_reason(p, inv))}
    movable: list[Pod] = [p for p in inv.running if p.ref not in pinned]
    pos: dict[str, str | None] = {p.ref: p.spec.node_name for p in movable}
    cpu = {p.ref: p.requests().get("cpu", 0) for p in inv.running}

    def load() -> dict[str, int]:
        out = {n.name: 0 for n in inv.nodes}
        for p in inv.running:
            where = pos.get(p.ref, p.spec.node_name) if p.ref not in pinned else p.spec.node_name
            if where:
                out[where] += cpu[p.ref]
        return out

    moves: list[tuple[str, str, str]] = []
    freed: list[str] = []
    for node in sorted(load(), key=lambda n: (load()[n], n)):
        if any(p.spec.node_name == node for p in inv.running if p.ref in pinned):
            continue
        mine = sorted((p for p in movable if pos[p.ref] == node), key=lambda p: -cpu[p.ref])
        if not mine or len(moves) + len(mine) > budget:
            continue
        saved = dict(pos)
        trial = []
        for p in mine:
            current = load()
            targets = sorted((n for n in current if n != node and n not in freed and current[n]),
                             key=lambda n: (-current[n], n))
            dst = next((n for n in targets if _step_ok(
                inv, _state(inv, pinned, movable, pos), p, n, True)), None)
            if dst is None:
                break
            pos[p.ref] = dst
            trial.append((p.ref, node, dst))
        if len(trial) == len(mine):
            moves += trial
            freed.append(node)
        else:
            pos = saved
    return {"moves": len(moves), "freed": len(freed), "seconds": round(time.perf_counter() - t, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=40)
    ap.add_argument("--pods", type=int, default=120)
    ap.add_argument("--budgets", default="5,10,20")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default="1,2,3,4", help="cpu requests drawn from, comma-separated")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()
    inv = cluster(args.nodes, args.pods, args.seed, tuple(int(x) for x in args.sizes.split(",")))
    rows = []
    for budget in [int(b) for b in args.budgets.split(",")]:
        t = time.perf_counter()
        r = replan(inv, ReplanConfig(max_moves=budget, solve=SolveConfig(
            profile="pack", time_limit=args.time_limit)))
        ours = {"moves": len(r.moves), "freed": len(r.freed_nodes), "status": r.plan.status,
                "seconds": round(time.perf_counter() - t, 3)}
        greedy = greedy_consolidation(inv, budget)
        rows.append({"budget": budget, "replan": ours, "greedy": greedy})
        print(f"budget {budget:3d}: replan {ours['moves']} moves, {ours['freed']} nodes freed "
              f"({ours['status']}, {ours['seconds']} s) | greedy {greedy['moves']} moves, "
              f"{greedy['freed']} nodes freed ({greedy['seconds']} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "replan.json").write_text(json.dumps(
        {"nodes": args.nodes, "pods": args.pods, "seed": args.seed, "sizes": args.sizes,
         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
