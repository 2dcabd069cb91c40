"""The process the crash test kills: submits one plan and binds it into a JSONL file.

    python -m tests.binder.crash_worker DB_URL JSONL_PATH PLAN_ID N_AGENTS SLEEP_SECONDS

The window: 20 nodes of 10 cpu, N agents of 1 cpu and priority 100, placed round-robin, and a
running victim of 1 cpu and priority 0 on each of node-05..node-14: the last agent placed on each
of those nodes makes room by evicting it (a verified plan with 10 evictions: the independent
verifier passes it on the snapshot it was made for). The sink refuses the eviction of
batch/victim-14 (as a PodDisruptionBudget would), so that agent goes back to the queue. The
binder's fit check reads a fresher snapshot in which an intruder pod took 1 cpu on each of
node-00..node-04, so on those five nodes the last agent checked no longer fits: a conflict and a
requeue each (for N ≥ 100).

Every run submits the same plan under the same id (a no-op after the first) and binds whatever
is left; the sink sleeps before and after each write to widen the crash windows (claimed but not
written, written but not marked done). Prints `ready` once submitted, `done` at the end.
"""

from __future__ import annotations

import sys
import time

from models import Inventory
from optimizer.binder import Binder, EvictionRefused, JsonlSink, Outbox, SnapshotFit
from optimizer.plan import Eviction, Placement, Plan
from optimizer.snapshot import build_snapshot
from optimizer.verify import verify
from tests import builders as b

NODES = 20
INTRUDED = 5
VICTIM_NODES = range(5, 15)
REFUSED = "batch/victim-14"  # its eviction is refused: a PDB


def window(n_agents: int, intruders: bool) -> Inventory:
    objs = [b.node(f"node-{i:02d}", cpu="10") for i in range(NODES)]
    objs += [b.pod(f"agent-{i:03d}", cpu="1", namespace=f"team-{i % 4}", priority=100)
             for i in range(n_agents)]
    objs += [b.pod(f"victim-{k:02d}", cpu="1", namespace="batch", priority=0, node_name=f"node-{k:02d}")
             for k in VICTIM_NODES]
    if intruders:
        objs += [b.pod(f"intruder-{i}", cpu="1", namespace="other", node_name=f"node-{i:02d}")
                 for i in range(INTRUDED)]
    return b.inventory(*objs)


def plan_for(n_agents: int) -> Plan:
    snap = build_snapshot(window(n_agents, intruders=False))
    placements = [(f"team-{i % 4}/agent-{i:03d}", f"node-{i % NODES:02d}") for i in range(n_agents)]
    last = {n: a for a, n in placements}  # the last agent placed on each node
    evictions = [(f"batch/victim-{k:02d}", f"node-{k:02d}", last[f"node-{k:02d}"]) for k in VICTIM_NODES]
    violations = verify(placements, snap, evictions=evictions)
    if violations:
        raise SystemExit(f"test plan is invalid: {violations}")
    return Plan(status="OPTIMAL", verified=True, placements=[Placement(a, n) for a, n in placements],
                evictions=[Eviction(p, n, "PreemptionByScheduler", a, 0) for p, n, a in evictions])


class SlowSink:
    """Wraps the JSONL sink with sleeps on both sides of the write; refuses REFUSED's eviction."""

    def __init__(self, inner: JsonlSink, pause: float) -> None:
        self.inner = inner
        self.pause = pause

    def bind(self, agent_ns: str, agent_name: str, node: str, key: str) -> None:
        time.sleep(self.pause)
        self.inner.bind(agent_ns, agent_name, node, key)
        time.sleep(self.pause)

    def evict(self, namespace: str, name: str, key: str) -> None:
        time.sleep(self.pause)
        if f"{namespace}/{name}" == REFUSED:
            raise EvictionRefused("Cannot evict pod as it would violate the pod's disruption budget.")
        self.inner.evict(namespace, name, key)
        time.sleep(self.pause)


def main(argv: list[str]) -> int:
    url, path, plan_id, n, pause = argv[0], argv[1], argv[2], int(argv[3]), float(argv[4])
    outbox = Outbox(url)
    outbox.submit(plan_for(n), plan_id)
    print("ready", flush=True)
    fits = SnapshotFit(build_snapshot(window(n, intruders=True)), outbox)
    with JsonlSink(path) as sink:
        Binder(outbox, SlowSink(sink, pause), fits).run(interval=0.01)
    outbox.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
