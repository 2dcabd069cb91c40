"""Durable, idempotent binding of verified plans: an outbox in a database, a binder that drains
it into a sink (Kubernetes Binding API, a JSONL file, or a dry run), and a requeue for agents
that must go back to the next window. A plan's evictions are issued first, durably and once, and
a binding waits for the evictions that make room for it. A plan the verifier did not pass is
never bound."""

from optimizer.binder.binder import NODE_LOCAL_RULES, Binder, Fits, PassResult, SnapshotFit
from optimizer.binder.outbox import (
    BOUND,
    CONFLICT,
    EVICTED,
    EVICTION_STATES,
    FAILED,
    ISSUING,
    PENDING,
    STATES,
    Binding,
    Outbox,
    PodEviction,
    Requeued,
    default_url,
    eviction_key,
    idempotency_key,
    split_agent,
)
from optimizer.binder.sinks import (
    DryRunSink,
    EvictionRefused,
    JsonlSink,
    KubernetesSink,
    Sink,
    SinkConflict,
)

__all__ = [
    "BOUND",
    "CONFLICT",
    "EVICTED",
    "EVICTION_STATES",
    "FAILED",
    "ISSUING",
    "NODE_LOCAL_RULES",
    "PENDING",
    "STATES",
    "Binder",
    "Binding",
    "DryRunSink",
    "EvictionRefused",
    "Fits",
    "JsonlSink",
    "KubernetesSink",
    "Outbox",
    "PassResult",
    "PodEviction",
    "Requeued",
    "Sink",
    "SinkConflict",
    "SnapshotFit",
    "default_url",
    "eviction_key",
    "idempotency_key",
    "split_agent",
]
