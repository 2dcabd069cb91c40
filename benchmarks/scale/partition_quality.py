"""Decomposition on an over-full window: `python -m benchmarks.scale.partition_quality`.

The scale shapes fit every agent, so every method ties on the reference objective there. This
runs the seeded synthetic window (`benchmarks.synthetic`, more agents than fit) unpartitioned
and with k parts, in one process, and scores every plan (and the kube-like greedy's) by one
reference objective (the full per-node model's, default profile): placed, placed priority,
objective loss vs the unpartitioned plan. Every plan is verified (optimize does; the greedy's
is checked here).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import check_plan, code_version, machine_info
from benchmarks.scale.reference import reference_score
from benchmarks.synthetic import synthetic_window
from optimizer import SolveConfig, optimize
from optimizer.baseline import greedy
from optimizer.index import Index
from optimizer.snapshot import build_snapshot
from optimizer.solve import prefilter


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--agents", type=int, default=4000)
    ap.add_argument("--partitions", default="4,8", help="comma-separated k values")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench-out/partition-quality"))
    args = ap.parse_args(argv)
    inv = synthetic_window(args.nodes, args.agents, seed=args.seed)
    snap = build_snapshot(inv)
    ix = Index(snap)
    static, _ = prefilter(ix)
    score = reference_score(ix)

    t = time.perf_counter()
    assign = greedy(ix, static, "LeastAllocated")
    placed = [(p.ref, snap.nodes[int(b)].name) for p, b in zip(snap.pending, assign, strict=True) if b >= 0]
    check = check_plan("greedy", placed, snap, require_complete=False)
    records = [{"method": "greedy", "seconds": round(time.perf_counter() - t, 3), "verified": check.ok,
                **score(placed)}]
    for k in [0, *(int(x) for x in args.partitions.split(","))]:
        t = time.perf_counter()
        plan = optimize(inv, SolveConfig(time_limit=args.time_limit, workers=args.workers, partitions=k))
        records.append({"method": f"partitions={k}" if k else "agentplace", "status": plan.status,
                        "seconds": round(time.perf_counter() - t, 3), "verified": plan.verified,
                        "partitions": plan.model.get("partitions"), "timings": plan.timings,
                        **score([(p.agent, p.node) for p in plan.placements])})
    base = next(r for r in records if r["method"] == "agentplace")
    for r in records:
        r["loss_vs_unpartitioned"] = round((base["objective_ref"] - r["objective_ref"])
                                           / abs(base["objective_ref"]), 6)
        r["placed_minus_greedy"] = r["placed"] - records[0]["placed"]
        print(f"{r['method']:14s} {r.get('status', 'GREEDY'):9s} {r['seconds']:8.1f} s  placed {r['placed']} "
              f"({r['placed_minus_greedy']:+d} vs greedy)  loss {r['loss_vs_unpartitioned']:+.4%}  "
              f"verified {r['verified']}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"partition-quality-{args.nodes}x{args.agents}.json"
    path.write_text(json.dumps({"machine": machine_info(), "code": code_version(),
                                "parameters": {k: str(v) for k, v in vars(args).items()},
                                "records": records}, indent=2, default=str))
    return 0 if all(r["verified"] for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
