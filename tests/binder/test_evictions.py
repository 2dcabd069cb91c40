"""Evictions through the binder: stored with the plan, issued once and before the bindings that
depend on them, a refused or failing one sends its agent back, restarts resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException
from sqlalchemy import create_engine, inspect

from optimizer.binder import (
    BOUND,
    CONFLICT,
    EVICTED,
    FAILED,
    ISSUING,
    PENDING,
    Binder,
    DryRunSink,
    EvictionRefused,
    JsonlSink,
    KubernetesSink,
    Outbox,
    SnapshotFit,
    eviction_key,
)
from optimizer.binder.outbox import BindingRow, PlanRow, RequeueRow
from optimizer.plan import Eviction, Placement, Plan, PlanInvalidError
from optimizer.snapshot import build_snapshot
from tests import builders as b
from tests.binder.apiserver import StandInApiServer


def preempting_plan() -> Plan:
    """hi makes room on n1 by evicting low-1 and low-2; free lands on n2 with no eviction."""
    return Plan("OPTIMAL", verified=True,
                placements=[Placement("t/hi", "n1"), Placement("t/free", "n2")],
                evictions=[Eviction("t/low-1", "n1", "PreemptionByScheduler", "t/hi", 0),
                           Eviction("t/low-2", "n1", "PreemptionByScheduler", "t/hi", 0)])


class RecordingSink(DryRunSink):
    """Remembers the order of every call; `refuse` pods are refused (a PDB), `flaky` fail once."""

    def __init__(self, refuse: tuple[str, ...] = (), flaky: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = []
        self.refuse, self.flaky = set(refuse), set(flaky)

    def bind(self, agent_ns: str, agent_name: str, node: str, key: str) -> None:
        self.log.append(("bind", f"{agent_ns}/{agent_name}"))
        super().bind(agent_ns, agent_name, node, key)

    def evict(self, namespace: str, name: str, key: str) -> None:
        pod = f"{namespace}/{name}"
        self.log.append(("evict", pod))
        if pod in self.refuse:
            raise EvictionRefused("Cannot evict pod as it would violate the pod's disruption budget.")
        if pod in self.flaky:
            self.flaky.discard(pod)
            raise ConnectionError("connection reset")
        super().evict(namespace, name, key)


# -- outbox ---------------------------------------------------------------------------------------

def test_submit_stores_the_evictions_with_the_bindings_and_a_resubmit_changes_nothing(db_url: str) -> None:
    with Outbox(db_url) as ob:
        ob.submit(preempting_plan(), "w")
        ob.submit(preempting_plan(), "w")
        rows = ob.evictions("w")
        assert [(e.pod, e.node, e.agent, e.state) for e in rows] == [
            ("t/low-1", "n1", "t/hi", PENDING), ("t/low-2", "n1", "t/hi", PENDING)]
        assert [e.key for e in rows] == [eviction_key("w", "t/low-1"), eviction_key("w", "t/low-2")]
        # hi waits for its evictions; free does not
        assert [x.agent for x in ob.work()] == ["t/free"]
        assert [e.pod for e in ob.eviction_work()] == ["t/low-1", "t/low-2"]


def test_a_plan_evicting_a_pod_twice_is_refused_and_nothing_is_written(outbox: Outbox) -> None:
    plan = preempting_plan()
    plan.evictions.append(Eviction("t/low-1", "n1", "again", "t/hi"))
    with pytest.raises(PlanInvalidError, match="evicts a pod twice"):
        outbox.submit(plan, "w")
    assert outbox.bindings() == [] and outbox.evictions() == []


def test_no_eviction_is_issued_for_an_agent_another_plan_already_owns(outbox: Outbox) -> None:
    outbox.submit(Plan("OPTIMAL", [Placement("t/hi", "n3")], verified=True), "earlier")
    outbox.submit(preempting_plan(), "w")
    assert {e.pod: e.state for e in outbox.evictions("w")} == {"t/low-1": FAILED, "t/low-2": FAILED}
    assert "already pending under plan earlier" in (outbox.evictions("w")[0].error or "")
    assert outbox.eviction_work() == []
    assert {x.agent: x.state for x in outbox.bindings("w")} == {"t/hi": CONFLICT, "t/free": PENDING}


def test_a_binding_is_handed_out_only_once_all_its_evictions_are_done(outbox: Outbox) -> None:
    outbox.submit(preempting_plan(), "w")
    e1, e2 = outbox.eviction_work()
    assert outbox.claim_eviction(e1.id) and not outbox.claim_eviction(e1.id)  # compare-and-set
    assert outbox.mark_evicted(e1.id)
    assert "t/hi" not in {x.agent for x in outbox.work()}
    assert outbox.claim_eviction(e2.id) and outbox.mark_evicted(e2.id)
    assert {x.agent for x in outbox.work()} == {"t/hi", "t/free"}
    assert outbox.eviction_counts("w") == {PENDING: 0, ISSUING: 0, EVICTED: 2, FAILED: 0}


def test_a_failed_eviction_sends_its_agent_back_in_the_same_transaction(outbox: Outbox) -> None:
    outbox.submit(preempting_plan(), "w")
    e1, _ = outbox.eviction_work()
    assert outbox.fail_eviction(e1.id, "refused by a PDB")
    states = {x.agent: x.state for x in outbox.bindings()}
    assert states == {"t/hi": CONFLICT, "t/free": PENDING}
    [back] = outbox.requeued()
    assert back.agent == "t/hi" and "eviction of t/low-1 on n1 failed: refused by a PDB" in back.reason
    assert not outbox.fail_eviction(e1.id, "again")  # a repeat is a no-op: one requeue row
    assert len(outbox.requeued()) == 1


def test_eviction_failures_count_attempts_and_the_last_one_fails(outbox: Outbox) -> None:
    outbox.submit(preempting_plan(), "w")
    e1, _ = outbox.eviction_work()
    outbox.claim_eviction(e1.id)
    assert outbox.record_eviction_failure(e1.id, "boom", max_attempts=2) == ISSUING
    assert outbox.record_eviction_failure(e1.id, "boom", max_attempts=2) == FAILED
    [row] = [e for e in outbox.evictions() if e.id == e1.id]
    assert (row.state, row.attempts, row.error) == (FAILED, 2, "boom")
    assert [r.agent for r in outbox.requeued()] == ["t/hi"]


def test_an_outbox_created_before_evictions_existed_gains_the_table_and_keeps_its_rows(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    old = [PlanRow.__table__, BindingRow.__table__, RequeueRow.__table__]
    PlanRow.metadata.create_all(engine, tables=old)  # type: ignore[arg-type]
    with engine.begin() as conn:
        conn.execute(PlanRow.__table__.insert().values(id="old", status="OPTIMAL", verified=True,
                                                       payload={}))
        conn.execute(BindingRow.__table__.insert().values(
            plan_id="old", agent="t/a", node="n1", state=PENDING, idempotency_key="k", attempts=0))
    assert "evictions" not in inspect(engine).get_table_names()
    engine.dispose()
    with Outbox(url) as ob:
        assert "evictions" in inspect(ob.engine).get_table_names()
        assert [x.agent for x in ob.work()] == ["t/a"]
        assert Binder(ob, DryRunSink()).run().bound == 1


# -- binder ---------------------------------------------------------------------------------------

def test_the_binder_evicts_first_then_binds(db_url: str) -> None:
    sink = RecordingSink()
    with Outbox(db_url) as ob:
        ob.submit(preempting_plan(), "w")
        total = Binder(ob, sink).run(interval=0)
        assert (total.evicted, total.bound) == (2, 2)
        assert {x.agent: x.state for x in ob.bindings()} == {"t/hi": BOUND, "t/free": BOUND}
    assert sink.log.index(("bind", "t/hi")) > max(sink.log.index(("evict", "t/low-1")),
                                                   sink.log.index(("evict", "t/low-2")))
    assert sorted(sink.evictions.values()) == [("t", "low-1"), ("t", "low-2")]


def test_a_refused_eviction_requeues_its_agent_and_never_binds_it(outbox: Outbox) -> None:
    sink = RecordingSink(refuse=("t/low-2",))
    outbox.submit(preempting_plan(), "w")
    total = Binder(outbox, sink).run(interval=0)
    assert (total.evicted, total.eviction_failed, total.bound) == (1, 1, 1)
    assert ("bind", "t/hi") not in sink.log
    assert {x.agent: x.state for x in outbox.bindings()} == {"t/hi": CONFLICT, "t/free": BOUND}
    assert [r.agent for r in outbox.requeued()] == ["t/hi"]
    [failed] = outbox.evictions(state=FAILED)
    assert failed.pod == "t/low-2" and "disruption budget" in (failed.error or "")


def test_a_transient_eviction_error_is_retried_with_the_same_key(outbox: Outbox) -> None:
    sink = RecordingSink(flaky=("t/low-1",))
    outbox.submit(preempting_plan(), "w")
    total = Binder(outbox, sink).run(interval=0)
    assert (total.eviction_retry, total.evicted, total.bound) == (1, 2, 2)
    assert sink.log.count(("evict", "t/low-1")) == 2 and len(sink.evictions) == 2


def test_a_restart_reissues_an_interrupted_eviction_once(tmp_path: Path, sqlite_url: str) -> None:
    """Killed after the sink wrote the eviction but before the outbox recorded it: the restart
    re-issues it with the same key and the file still holds one line for it."""
    path = tmp_path / "out.jsonl"
    with Outbox(sqlite_url) as ob:
        ob.submit(preempting_plan(), "w")
        e1, _ = ob.eviction_work()
        ob.claim_eviction(e1.id)
        with JsonlSink(path) as sink:
            sink.evict("t", "low-1", e1.key)  # ... and the process dies here
    with Outbox(sqlite_url) as ob, JsonlSink(path) as sink:
        assert ob.eviction_work()[0].state == ISSUING  # interrupted ones first
        total = Binder(ob, sink).run(interval=0)
        assert (total.evicted, total.bound) == (2, 2)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x.get("evict") for x in lines if "evict" in x] == ["t/low-1", "t/low-2"]
    assert len(lines) == 4


# -- the fit check --------------------------------------------------------------------------------

def test_snapshot_fit_stops_counting_a_pod_once_its_eviction_is_done(outbox: Outbox) -> None:
    snap = build_snapshot(b.inventory(
        b.node("n1", cpu="4"), b.node("n2", cpu="4"),
        b.pod("low-1", cpu="2", namespace="t", node_name="n1", priority=0),
        b.pod("low-2", cpu="2", namespace="t", node_name="n1", priority=0),
        b.pod("hi", cpu="3", namespace="t", priority=100), b.pod("free", cpu="1", namespace="t")))
    outbox.submit(preempting_plan(), "w")
    fit = SnapshotFit(snap, outbox)
    assert not fit("t/hi", "n1")
    e1, e2 = outbox.eviction_work()
    for e in (e1, e2):
        outbox.claim_eviction(e.id)
        outbox.mark_evicted(e.id)
    assert fit("t/hi", "n1")


def test_an_agent_bound_and_evicted_since_no_longer_holds_its_node(outbox: Outbox) -> None:
    outbox.submit(Plan("OPTIMAL", [Placement("t/low-1", "n1")], verified=True), "w0")
    Binder(outbox, DryRunSink()).run(interval=0)
    assert set(outbox.held("n1")) == {"t/low-1"}
    outbox.submit(preempting_plan(), "w1")
    Binder(outbox, DryRunSink()).run(interval=0)
    assert set(outbox.held("n1")) == {"t/hi"}
    assert [x.state for x in outbox.bindings("w0")] == [EVICTED]
    # preempted, it is placed back on n1 by a later plan (not refused as bound under w0): it
    # holds the node again
    outbox.submit(Plan("OPTIMAL", [Placement("t/low-1", "n1")], verified=True), "w2")
    Binder(outbox, DryRunSink()).run(interval=0)
    assert set(outbox.held("n1")) == {"t/hi", "t/low-1"}


# -- sinks ----------------------------------------------------------------------------------------

def test_dry_run_and_jsonl_record_each_eviction_key_once(tmp_path: Path) -> None:
    dry = DryRunSink()
    dry.evict("t", "low", "k")
    dry.evict("t", "low", "k")
    assert dry.evictions == {"k": ("t", "low")} and dry.evict_calls == 2
    path = tmp_path / "e.jsonl"
    with JsonlSink(path) as sink:
        sink.evict("t", "low", "k")
        sink.bind("t", "hi", "n1", "kb")
    with path.open("a") as fh:
        fh.write('{"key": "k2", "evi')  # killed mid-write: never acknowledged
    with JsonlSink(path) as sink:
        assert sink.keys == {"k", "kb"}
        sink.evict("t", "low", "k")
        sink.evict("t", "low-2", "k2")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(r["key"], r.get("evict")) for r in rows] == [("k", "t/low"), ("kb", None), ("k2", "t/low-2")]


@pytest.fixture
def api() -> StandInApiServer:
    with StandInApiServer() as srv:
        yield srv


def test_kubernetes_sink_posts_a_policy_v1_eviction(api: StandInApiServer) -> None:
    api.add_pod("t/low", node="n1")
    KubernetesSink(host=api.url).evict("t", "low", "k1")
    [req] = api.evictions()
    assert (req.path, req.status) == ("/api/v1/namespaces/t/pods/low/eviction", 201)
    assert (req.body["apiVersion"], req.body["kind"]) == ("policy/v1", "Eviction")
    assert req.body["metadata"]["name"] == "low" and req.body["metadata"]["namespace"] == "t"
    assert ("t", "low") not in api.pods


def test_kubernetes_eviction_429_is_refused_404_is_done_500_is_transient(api: StandInApiServer) -> None:
    sink = KubernetesSink(host=api.url)
    api.add_pod("t/guarded", node="n1")
    api.pdb_blocked.add(("t", "guarded"))
    with pytest.raises(EvictionRefused, match="would violate the pod's disruption budget"):
        sink.evict("t", "guarded", "k1")
    assert ("t", "guarded") in api.pods
    sink.evict("t", "never-was", "k2")  # 404: gone already, which is what was wanted
    api.add_pod("t/low", node="n1")
    api.fail_next = 1
    with pytest.raises(ApiException) as e:
        sink.evict("t", "low", "k3")
    assert e.value.status == 500
    assert [r.status for r in api.evictions()] == [429, 404, 500]


def test_the_binder_through_the_kubernetes_sink_with_a_pdb(api: StandInApiServer, outbox: Outbox) -> None:
    for pod, node in (("t/low-1", "n1"), ("t/low-2", "n1"), ("t/hi", None), ("t/free", None)):
        api.add_pod(pod, node)
    api.pdb_blocked.add(("t", "low-2"))
    outbox.submit(preempting_plan(), "w")
    total = Binder(outbox, KubernetesSink(host=api.url)).run(interval=0)
    assert (total.evicted, total.eviction_failed, total.bound, total.conflict) == (1, 1, 1, 0)
    assert api.pods == {("t", "low-2"): "n1", ("t", "hi"): None, ("t", "free"): "n2"}
    assert [r.agent for r in outbox.requeued()] == ["t/hi"]
    # a second binder pass issues nothing again
    Binder(outbox, KubernetesSink(host=api.url)).run(interval=0)
    assert len(api.evictions()) == 2 and len(api.bindings()) == 1


def test_a_binding_waits_until_its_evicted_victims_are_gone_not_just_terminating(
        api: StandInApiServer, outbox: Outbox) -> None:
    for pod, node in (("t/low-1", "n1"), ("t/low-2", "n1"), ("t/hi", None), ("t/free", None)):
        api.add_pod(pod, node)
    api.grace_reads = 3
    outbox.submit(preempting_plan(), "w")
    binder = Binder(outbox, KubernetesSink(host=api.url))
    first = binder.run_once()
    assert (first.evicted, first.bound, first.waiting) == (2, 1, 1)  # free binds; hi waits
    assert api.pods[("t", "hi")] is None and ("t", "low-1") in api.terminating
    total = binder.run(interval=0)
    assert total.bound == 1 and api.pods[("t", "hi")] == "n1"
    assert ("t", "low-1") not in api.pods and ("t", "low-2") not in api.pods


def test_victims_that_never_go_send_the_agent_back_after_the_timeout(
        api: StandInApiServer, outbox: Outbox) -> None:
    for pod, node in (("t/low-1", "n1"), ("t/low-2", "n1"), ("t/hi", None), ("t/free", None)):
        api.add_pod(pod, node)
    api.grace_reads = 10**6  # a finalizer that never lets go
    outbox.submit(preempting_plan(), "w")
    total = Binder(outbox, KubernetesSink(host=api.url), victim_timeout=0.2).run(interval=0.05)
    assert (total.evicted, total.bound, total.conflict) == (2, 1, 1)
    [back] = outbox.requeued()
    assert back.agent == "t/hi" and "still on n1 after 0.2 s" in back.reason
    assert api.pods[("t", "hi")] is None
