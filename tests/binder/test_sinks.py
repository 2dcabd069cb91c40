"""Sinks: each is idempotent per key; the Kubernetes one is exercised against a stand-in for the
API server (tests/binder/apiserver.py), not a real cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from optimizer.binder import (
    BOUND,
    CONFLICT,
    Binder,
    DryRunSink,
    JsonlSink,
    KubernetesSink,
    Outbox,
    Sink,
    SinkConflict,
)
from optimizer.plan import Placement, Plan
from tests.binder.apiserver import StandInApiServer


@pytest.fixture
def api() -> StandInApiServer:
    with StandInApiServer() as srv:
        yield srv


def test_every_sink_implements_the_protocol(tmp_path: Path, api: StandInApiServer) -> None:
    with JsonlSink(tmp_path / "b.jsonl") as jsonl:
        for sink in (DryRunSink(), jsonl, KubernetesSink(host=api.url)):
            assert isinstance(sink, Sink)


def test_the_dry_run_sink_records_each_key_once() -> None:
    sink = DryRunSink()
    sink.bind("a", "p", "n1", "k")
    sink.bind("a", "p", "n1", "k")
    assert sink.bindings == {"k": ("a", "p", "n1")} and sink.calls == 2


# -- JSONL ----------------------------------------------------------------------------------------

def test_jsonl_writes_one_line_per_key_even_when_reissued(tmp_path: Path) -> None:
    path = tmp_path / "out" / "b.jsonl"
    with JsonlSink(path) as sink:
        sink.bind("a", "p1", "n1", "k1")
        sink.bind("a", "p1", "n1", "k1")
        sink.bind("a", "p2", "n2", "k2")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(r["key"], r["agent"], r["node"]) for r in rows] == [("k1", "a/p1", "n1"), ("k2", "a/p2", "n2")]


def test_jsonl_reads_back_its_keys_so_a_reissue_after_a_crash_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    with JsonlSink(path) as sink:
        sink.bind("a", "p1", "n1", "k1")
    with JsonlSink(path) as sink:
        assert sink.keys == {"k1"}
        sink.bind("a", "p1", "n1", "k1")
    assert len(path.read_text().splitlines()) == 1


def test_jsonl_cuts_a_partial_last_line_left_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    with JsonlSink(path) as sink:
        sink.bind("a", "p1", "n1", "k1")
    with path.open("a") as fh:
        fh.write('{"key": "k2", "agent": "a/p')  # killed mid-write: never acknowledged
    with JsonlSink(path) as sink:
        assert sink.keys == {"k1"}
        sink.bind("a", "p2", "n1", "k2")
    assert [json.loads(x)["key"] for x in path.read_text().splitlines()] == ["k1", "k2"]


# -- Kubernetes (against the stand-in) ------------------------------------------------------------

@pytest.mark.parametrize("subresource", [False, True], ids=["namespaced bindings", "pod subresource"])
def test_kubernetes_sink_posts_a_binding_to_the_node(api: StandInApiServer, subresource: bool) -> None:
    api.add_pod("team-a/agent-1")
    KubernetesSink(host=api.url, subresource=subresource).bind("team-a", "agent-1", "node-3", "k1")
    [req] = api.bindings()
    want = ("/api/v1/namespaces/team-a/pods/agent-1/binding" if subresource
            else "/api/v1/namespaces/team-a/bindings")
    assert (req.path, req.status) == (want, 201)
    assert req.body["kind"] == "Binding"
    assert req.body["metadata"]["name"] == "agent-1"
    assert req.body["metadata"]["annotations"] == {"agentplace.io/idempotency-key": "k1"}
    assert req.body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "node-3"}
    assert api.pods[("team-a", "agent-1")] == "node-3"


def test_a_409_for_the_same_node_is_our_earlier_binding_and_succeeds(api: StandInApiServer) -> None:
    api.add_pod("team-a/agent-1")
    sink = KubernetesSink(host=api.url)
    sink.bind("team-a", "agent-1", "node-3", "k1")
    sink.bind("team-a", "agent-1", "node-3", "k1")  # re-issue after a crash
    assert [r.status for r in api.bindings()] == [201, 409]


def test_a_409_for_another_node_is_a_conflict(api: StandInApiServer) -> None:
    api.add_pod("team-a/agent-1", node="node-7")
    with pytest.raises(SinkConflict, match="already bound to node-7") as e:
        KubernetesSink(host=api.url).bind("team-a", "agent-1", "node-3", "k1")
    assert e.value.bound_to == "node-7"


def test_the_409_message_names_the_node_when_the_pod_cannot_be_read(api: StandInApiServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    api.add_pod("team-a/agent-1", node="node-7")
    sink = KubernetesSink(host=api.url)
    monkeypatch.setattr(sink, "_bound_node", lambda ns, name: None)
    with pytest.raises(SinkConflict) as e:
        sink.bind("team-a", "agent-1", "node-3", "k1")
    assert e.value.bound_to == "node-7"


def test_a_missing_pod_is_a_conflict_and_a_server_error_is_transient(api: StandInApiServer) -> None:
    sink = KubernetesSink(host=api.url)
    with pytest.raises(SinkConflict, match="not found"):
        sink.bind("team-a", "gone", "node-3", "k1")
    api.add_pod("team-a/agent-1")
    api.fail_next = 1
    with pytest.raises(ApiException) as e:
        sink.bind("team-a", "agent-1", "node-3", "k2")
    assert e.value.status == 500


def test_kubernetes_sink_reads_a_kubeconfig(api: StandInApiServer, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": api.url}}],
        "users": [{"name": "u", "user": {"token": "t0k"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "u"}}]}))
    api.add_pod("team-a/agent-1")
    KubernetesSink(kubeconfig=str(kubeconfig), in_cluster=False).bind("team-a", "agent-1", "n1", "k")
    assert api.pods[("team-a", "agent-1")] == "n1"


def test_the_binder_through_the_kubernetes_sink(api: StandInApiServer, outbox: Outbox) -> None:
    """Bound where the pod was free; the pod someone else bound meanwhile comes back to the queue;
    a 500 is retried and then succeeds."""
    for i in range(4):
        api.add_pod(f"t/a{i}")
    api.pods[("t", "a3")] = "elsewhere"
    api.fail_next = 1
    outbox.submit(Plan("OPTIMAL", [Placement(f"t/a{i}", f"n{i % 2}") for i in range(4)], verified=True), "w")
    total = Binder(outbox, KubernetesSink(host=api.url)).run(interval=0)
    assert (total.bound, total.conflict, total.retry) == (3, 1, 1)
    assert {x.agent: x.state for x in outbox.bindings()} == {
        "t/a0": BOUND, "t/a1": BOUND, "t/a2": BOUND, "t/a3": CONFLICT}
    assert [r.agent for r in outbox.requeued()] == ["t/a3"]
    assert {k: v for k, v in api.pods.items() if k[1] != "a3"} == {
        ("t", "a0"): "n0", ("t", "a1"): "n1", ("t", "a2"): "n0"}
