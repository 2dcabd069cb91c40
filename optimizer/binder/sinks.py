"""Where bindings and evictions go. A sink has two methods, `bind` and `evict`, each idempotent
per key: the binder re-issues one whose outcome a crash hid, and the sink turns the repeat into a
no-op.

- `DryRunSink`: records in memory; for tests, previews, `--dry-run`.
- `JsonlSink`: one JSON line per binding, fsynced; reads back the keys it holds when opened, so a
  re-issue after a crash writes nothing.
- `KubernetesSink`: the Binding API. `create_namespaced_binding` posts to
  `/api/v1/namespaces/{ns}/bindings`; with `subresource=True` it posts to the pod's `binding`
  subresource (`/api/v1/namespaces/{ns}/pods/{name}/binding`, what kube-scheduler calls). The API
  server serves both with the same handler, and refuses a second binding of a pod with 409
  Conflict: to the same node that is our own earlier binding and counts as success, to another
  node it is a real conflict. Evictions go through the Eviction API (policy/v1,
  `create_namespaced_pod_eviction`), which checks PodDisruptionBudgets at the API server.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger("agentplace.binder")


class SinkConflict(Exception):
    """The target refuses the binding for good: the pod is bound to another node, or gone. The
    binder marks the binding `conflict` and sends the agent back to the next window (which
    re-places it only if the cluster still shows it pending)."""

    def __init__(self, message: str, bound_to: str | None = None) -> None:
        super().__init__(message)
        self.bound_to = bound_to


class EvictionRefused(Exception):
    """The target refuses the eviction for good (for Kubernetes: 429, it would violate the pod's
    disruption budget). The binder marks it failed at once and sends its agent back."""


@runtime_checkable
class Sink(Protocol):
    def bind(self, agent_ns: str, agent_name: str, node: str, key: str) -> None:
        """Bind pod `agent_ns/agent_name` to `node`. Idempotent per `key`: a repeated call with a
        key already bound must succeed without binding again. Raises `SinkConflict` when the
        binding can never succeed; any other exception is treated as transient and retried."""
        ...

    def evict(self, namespace: str, name: str, key: str) -> None:
        """Evict running pod `namespace/name`. Idempotent per `key`, and a pod that is already
        gone counts as evicted. Raises `EvictionRefused` when it can never succeed; any other
        exception is treated as transient and retried."""
        ...


@dataclass
class DryRunSink:
    """Binds nothing; remembers what it was asked, once per key, in order."""

    bindings: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    calls: int = 0
    evictions: dict[str, tuple[str, str]] = field(default_factory=dict)
    evict_calls: int = 0

    def bind(self, agent_ns: str, agent_name: str, node: str, key: str) -> None:
        self.calls += 1
        self.bindings.setdefault(key, (agent_ns, agent_name, node))

    def evict(self, namespace: str, name: str, key: str) -> None:
        self.evict_calls += 1
        self.evictions.setdefault(key, (namespace, name))


class JsonlSink:
    """Appends `{"key", "agent", "node", "at"}` per binding (and `{"key", "evict": "ns/name",
    "at"}` per eviction) to a file and fsyncs it before returning, so a binding the outbox will
    mark bound (an eviction it will mark evicted) is on disk first.

    On open it reads the keys already in the file. A trailing line without its newline is the
    remains of a write cut short by a crash; it was never acknowledged (fsync had not returned),
    so it is cut off, and the binder's re-issue writes it whole."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keys: set[str] = set()
        self._lock = threading.Lock()
        self._recover()
        self._fh = open(self.path, "a", encoding="utf-8")  # held open for appends; close() closes it

    def _recover(self) -> None:
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o644)
            os.fsync(fd)
            os.close(fd)
            _fsync_dir(self.path.parent)
            return
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            log.warning("%s: dropping a partial last line (%d bytes) left by a crash",
                        self.path, len(data) - complete)
            with open(self.path, "r+b") as fh:
                fh.truncate(complete)
                fh.flush()
                os.fsync(fh.fileno())
        for line in data[:complete].splitlines():
            if line.strip():
                self.keys.add(json.loads(line)["key"])

    def bind(self, agent_ns: str, agent_name: str, node: str, key: str) -> None:
        self._append(key, {"agent": f"{agent_ns}/{agent_name}", "node": node})

    def evict(self, namespace: str, name: str, key: str) -> None:
        self._append(key, {"evict": f"{namespace}/{name}"})

    def _append(self, key: str, fields: dict[str, str]) -> None:
        with self._lock:
            if key in self.keys:
                return
            record = {"key": key, **fields, "at": datetime.now(UTC).isoformat()}
            self._fh.write(json.dumps(record, sort_keys=True) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.keys.add(key)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# kube's registry (pkg/registry/core/pod/storage): "pod %v is already assigned to node %q"
_ASSIGNED = re.compile(r'is already assigned to node \\?"([^"\\]+)\\?"')


class KubernetesSink:
    """The Kubernetes Binding API through the official client: `CoreV1Api.create_namespaced_binding`,
    or `create_namespaced_pod_binding` with `subresource=True`.

    Configuration, first that applies: an explicit `api`; an explicit `host` (no auth; tests and
    `kubectl proxy`); in-cluster service account when $KUBERNETES_SERVICE_HOST is set (or
    `in_cluster=True`); else the kubeconfig (`kubeconfig`, $KUBECONFIG, ~/.kube/config) and
    `context`. The idempotency key needs no storage here: the API server itself refuses a second
    binding of a pod, and the 409 handling below turns our own repeat into success."""

    def __init__(self, api: Any = None, *, host: str | None = None, kubeconfig: str | None = None,
                 context: str | None = None, in_cluster: bool | None = None,
                 request_timeout: float = 30.0, field_manager: str = "agentplace",
                 subresource: bool = False) -> None:
        from kubernetes import client  # imported here: only this sink needs the client

        if api is None:
            cfg = client.Configuration()
            if host is not None:
                cfg.host = host
            else:
                from kubernetes import config

                if in_cluster if in_cluster is not None else bool(os.environ.get("KUBERNETES_SERVICE_HOST")):
                    config.load_incluster_config(client_configuration=cfg)
                else:
                    config.load_kube_config(config_file=kubeconfig, context=context,
                                            client_configuration=cfg)
            api = client.CoreV1Api(client.ApiClient(cfg))
        self.api = api
        self.request_timeout = request_timeout
        self.field_manager = field_manager
        self.subresource = subresource
        self._client = client

    def bind(self, agent_ns: str, agent_name: str, node: str, key: str) -> None:
        c = self._client
        body = c.V1Binding(
            api_version="v1", kind="Binding",
            metadata=c.V1ObjectMeta(name=agent_name, namespace=agent_ns,
                                    annotations={"agentplace.io/idempotency-key": key}),
            target=c.V1ObjectReference(api_version="v1", kind="Node", name=node))
        try:
            # _preload_content=False: the API server answers 201 with a Status, not a Binding,
            # and the client fails deserialising it into V1Binding (target is required; seen
            # with clients 29 and 37, kubernetes-client/python #547 and #825): the pod would be
            # bound yet the call would raise
            kwargs: dict[str, Any] = {"namespace": agent_ns, "body": body,
                                      "field_manager": self.field_manager, "_preload_content": False,
                                      "_request_timeout": self.request_timeout}
            if self.subresource:
                resp = self.api.create_namespaced_pod_binding(name=agent_name, **kwargs)
            else:
                resp = self.api.create_namespaced_binding(**kwargs)
        except c.exceptions.ApiException as e:
            self._refused(e, agent_ns, agent_name, node)
            return
        _release(resp)

    def evict(self, namespace: str, name: str, key: str) -> None:
        """POST an Eviction (policy/v1) to the pod's `eviction` subresource. The API server checks
        the pod's PodDisruptionBudgets and answers 429 when evicting would violate one: refused
        for good (`EvictionRefused`, with the server's message). 404: the pod is gone already,
        which is what the eviction wanted (and what a re-issue after a crash sees)."""
        c = self._client
        body = c.V1Eviction(api_version="policy/v1", kind="Eviction",
                            metadata=c.V1ObjectMeta(name=name, namespace=namespace,
                                                    annotations={"agentplace.io/idempotency-key": key}))
        try:
            # _preload_content=False: the API server answers 201 with a Status, not an Eviction
            resp = self.api.create_namespaced_pod_eviction(
                name=name, namespace=namespace, body=body, field_manager=self.field_manager,
                _preload_content=False, _request_timeout=self.request_timeout)
        except c.exceptions.ApiException as e:
            if e.status == 404:
                log.info("pod %s/%s not found: already gone, the eviction is done", namespace, name)
                return
            if e.status == 429:
                raise EvictionRefused(f"eviction of {namespace}/{name} refused: "
                                      f"{_message(e.body) or e.reason}") from e
            raise
        _release(resp)

    def gone(self, namespace: str, name: str) -> bool:
        """True once the pod is deleted (404). An evicted pod is deleted gracefully: it stays,
        terminating, for up to its grace period, and its node still counts it (the scheduler's
        cache and the kubelet's admission) until it is gone; kube-scheduler therefore nominates
        the preemptor and waits. The binder asks this before binding into the room, and waits."""
        c = self._client
        try:
            resp = self.api.read_namespaced_pod(name=name, namespace=namespace, _preload_content=False,
                                                _request_timeout=self.request_timeout)
        except c.exceptions.ApiException as e:
            if e.status == 404:
                return True
            raise
        _release(resp)
        return False

    def _refused(self, e: Any, ns: str, name: str, node: str) -> None:
        if e.status == 404:
            raise SinkConflict(f"pod {ns}/{name} not found: it was deleted") from e
        if e.status != 409:
            raise e
        bound_to = self._bound_node(ns, name) or _assigned_in(e.body)
        if bound_to == node:
            log.info("pod %s/%s already bound to %s: our earlier binding", ns, name, node)
            return
        if bound_to:
            raise SinkConflict(f"pod {ns}/{name} is already bound to {bound_to}", bound_to) from e
        raise e  # a 409 that says nothing about the node: transient, retried

    def _bound_node(self, ns: str, name: str) -> str | None:
        """spec.nodeName as the API server has it now; None if it cannot be read."""
        try:
            resp = self.api.read_namespaced_pod(name=name, namespace=ns, _preload_content=False,
                                                _request_timeout=self.request_timeout)
            data = json.loads(resp.data)
        except Exception as e:  # the 409 body is the fallback, so any failure here is fine
            log.debug("reading pod %s/%s after a 409 failed: %s", ns, name, e)
            return None
        node = (data.get("spec") or {}).get("nodeName")
        return str(node) if node else None


def _assigned_in(body: Any) -> str | None:
    if not body:
        return None
    text = body.decode() if isinstance(body, bytes) else str(body)
    m = _ASSIGNED.search(text)
    return m.group(1) if m else None


def _message(body: Any) -> str | None:
    """The `message` of a Status body, if it is one."""
    if not body:
        return None
    try:
        data = json.loads(body.decode() if isinstance(body, bytes) else str(body))
    except (ValueError, UnicodeDecodeError):
        return None
    msg = data.get("message") if isinstance(data, dict) else None
    return str(msg) if msg else None


def _release(resp: Any) -> None:
    release = getattr(resp, "release_conn", None)
    if callable(release):
        release()
