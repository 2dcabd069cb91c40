"""Durable, idempotent binding of verified plans: an outbox in a database, a binder that drains
it into a sink (Kubernetes Binding API, a JSONL file, or a dry run), and a requeue for agents
that must go back to the next window. A plan the verifier did not pass is never bound."""

from optimizer.binder.binder import NODE_LOCAL_RULES, Binder, Fits, PassResult, SnapshotFit
from optimizer.binder.outbox import (
    BOUND,
    CONFLICT,
    FAILED,
    ISSUING,
    PENDING,
    STATES,
    Binding,
    Outbox,
    Requeued,
    default_url,
    idempotency_key,
    split_agent,
)
from optimizer.binder.sinks import DryRunSink, JsonlSink, KubernetesSink, Sink, SinkConflict

__all__ = [
    "BOUND",
    "CONFLICT",
    "FAILED",
    "ISSUING",
    "NODE_LOCAL_RULES",
    "PENDING",
    "STATES",
    "Binder",
    "Binding",
    "DryRunSink",
    "Fits",
    "JsonlSink",
    "KubernetesSink",
    "Outbox",
    "PassResult",
    "Requeued",
    "Sink",
    "SinkConflict",
    "SnapshotFit",
    "default_url",
    "idempotency_key",
    "split_agent",
]
