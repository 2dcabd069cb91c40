"""A STAND-IN for the Kubernetes API server, not the real one: a tiny http.server on 127.0.0.1
that implements just the calls the Kubernetes sink makes, with the API server's semantics for
them as kube's pod registry implements them (pkg/registry/core/pod/storage):

- `POST /api/v1/namespaces/{ns}/pods/{name}/binding`, and `POST /api/v1/namespaces/{ns}/bindings`
  (the pod named by the body's metadata.name), which the API server serves with the same
  handler and `create_namespaced_binding` calls: records the request body; 201 and a
  Success Status if the pod exists and has no node; 409 Conflict `pod {name} is already assigned
  to node "{node}"` if it has one; 404 if there is no such pod.
- `GET /api/v1/namespaces/{ns}/pods/{name}`: the pod with its `spec.nodeName`.
- `POST /api/v1/namespaces/{ns}/pods/{name}/eviction` (policy/v1 Eviction,
  `create_namespaced_pod_eviction`; storage/eviction.go): records the body; 404 if there is no
  such pod; 429 TooManyRequests "Cannot evict pod as it would violate the pod's disruption
  budget." if the test put the pod in `pdb_blocked` (the stand-in evaluates no real PDB: the
  test decides which pods one protects); else 201 with a Success Status, and the pod is
  deleted: at once, or, with `grace_reads` = N, it lingers terminating (a deletionTimestamp) for
  the next N reads of it, as a real graceful deletion lingers for its grace period (the stand-in
  counts reads, not seconds). Evicting it again meanwhile answers 201 (the stand-in's choice).

`fail_next` makes the next N binding requests answer 500, for the retry path. It checks nothing
else (no auth, no admission, no validation), which is why the sink's tests are about what the
sink sends and how it reads the answers, not about Kubernetes itself.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BINDING = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/binding$")
EVICTION = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction$")
BINDINGS = re.compile(r"^/api/v1/namespaces/([^/]+)/bindings$")
POD = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)$")


@dataclass
class Recorded:
    path: str
    query: str
    body: dict[str, Any]
    status: int


@dataclass
class StandInApiServer:
    pods: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (ns, name) -> node
    requests: list[Recorded] = field(default_factory=list)
    fail_next: int = 0
    pdb_blocked: set[tuple[str, str]] = field(default_factory=set)  # (ns, name) a PDB protects
    grace_reads: int = 0  # reads an evicted pod lingers, terminating
    terminating: dict[tuple[str, str], int] = field(default_factory=dict)  # reads left

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add_pod(self, agent: str, node: str | None = None) -> None:
        ns, name = agent.split("/", 1)
        self.pods[(ns, name)] = node

    def bindings(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(("/binding", "/bindings"))]

    def evictions(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/eviction")]

    def __enter__(self) -> StandInApiServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # keep pytest output clean
                pass

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                path, _, query = self.path.partition("?")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                m, m2, ev = BINDING.match(path), BINDINGS.match(path), EVICTION.match(path)
                if ev:
                    return self._evict(path, query, body, *ev.groups())
                if m:
                    ns, name = m.groups()
                elif m2:
                    ns, name = m2.group(1), body.get("metadata", {}).get("name", "")
                else:
                    return self._send(404, _status(404, "NotFound", f"no route {path}"))
                with server._lock:
                    if server.fail_next > 0:
                        server.fail_next -= 1
                        code, obj = 500, _status(500, "InternalError", "stand-in failure")
                    elif (ns, name) not in server.pods:
                        code, obj = 404, _status(404, "NotFound", f'pods "{name}" not found')
                    elif server.pods[(ns, name)]:
                        code, obj = 409, _status(409, "Conflict", (
                            f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} '
                            f'is already assigned to node "{server.pods[(ns, name)]}"'))
                    else:
                        server.pods[(ns, name)] = body["target"]["name"]
                        code, obj = 201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                          "status": "Success", "code": 201}
                    server.requests.append(Recorded(path, query, body, code))
                self._send(code, obj)

            def _evict(self, path: str, query: str, body: dict[str, Any], ns: str, name: str) -> None:
                with server._lock:
                    if server.fail_next > 0:
                        server.fail_next -= 1
                        code, obj = 500, _status(500, "InternalError", "stand-in failure")
                    elif (ns, name) not in server.pods:
                        code, obj = 404, _status(404, "NotFound", f'pods "{name}" not found')
                    elif (ns, name) in server.pdb_blocked:
                        code, obj = 429, _status(429, "TooManyRequests", (
                            "Cannot evict pod as it would violate the pod's disruption budget."))
                    else:
                        if server.grace_reads and (ns, name) not in server.terminating:
                            server.terminating[(ns, name)] = server.grace_reads
                        elif (ns, name) not in server.terminating:
                            del server.pods[(ns, name)]
                        code, obj = 201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                          "status": "Success", "code": 201}
                    server.requests.append(Recorded(path, query, body, code))
                self._send(code, obj)

            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                m = POD.match(path)
                if not m or (m.group(1), m.group(2)) not in server.pods:
                    return self._send(404, _status(404, "NotFound", f"no pod at {path}"))
                ns, name = m.groups()
                meta: dict[str, Any] = {"name": name, "namespace": ns}
                with server._lock:
                    node = server.pods[(ns, name)]
                    left = server.terminating.get((ns, name))
                    if left is not None:
                        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                        if left <= 1:  # this was its last read: the deletion completes
                            del server.terminating[(ns, name)], server.pods[(ns, name)]
                        else:
                            server.terminating[(ns, name)] = left - 1
                self._send(200, {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
                                 "spec": {"nodeName": node} if node else {}})

        return Handler


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
