"""Who may call, and how much they may send.

- `require_token`: a FastAPI dependency; when a token is configured, the request must carry
  `Authorization: Bearer <token>` (compared in constant time), else 401 with `WWW-Authenticate`.
  With no token configured it admits everyone: `serve` only allows that on a loopback address.
- `BodyLimit`: ASGI middleware refusing a body larger than the limit with 413, by its
  Content-Length when declared and by counting the bytes as they arrive when not (chunked), so
  an oversized body is never read into memory whole.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def require_token(request: Request) -> None:
    """The bearer check; the expected token is `app.state.settings.api_token`."""
    expected = request.app.state.settings.api_token
    if not expected:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


class _TooLarge(HTTPException):
    """Raised from `receive`: an HTTPException, so FastAPI's body parsing passes it on as is
    (it turns other exceptions into 400) and the exception middleware answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {max_bytes} bytes")


class BodyLimit:
    """413 for request bodies over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        headers: list[Any] = [(b"content-type", b"application/json"),
                              (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
