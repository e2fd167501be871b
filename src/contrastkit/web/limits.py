"""Keep one slow, partial or huge request from stalling the demo server.

``BodyLimitMiddleware`` (pure ASGI, in front of FastAPI) reads every request body before the
routes see it: a ``Content-Length`` above the limit gets 413 at once, before any byte of the body
is read; a streamed (chunked) body is counted as it arrives and gets 413 as soon as it passes the
limit; a body that has not fully arrived within ``timeout_s`` gets 408. The answer carries
``Connection: close``, so uvicorn drops the connection and the rest of the body is never read.
Other connections are served meanwhile: the wait is an ``asyncio`` timeout, not a blocked thread.

``server_config`` adds uvicorn's own limits: the keep-alive timeout for idle connections and the
largest incomplete HTTP event (request line plus headers) h11 buffers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

MAX_BODY_BYTES = 1_000_000  # the largest valid request (256 negatives) is under 20 kB
BODY_TIMEOUT_S = 5.0  # a whole body must arrive within this; the page's bodies take milliseconds
KEEP_ALIVE_S = 5  # idle keep-alive connections are closed after this
MAX_HEADER_BYTES = 64 * 1024  # request line and headers
MAX_CONNECTIONS = 128  # beyond this uvicorn answers 503

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimitMiddleware:
    """Read each request body with a size cap and a deadline, then hand it to ``app``.

    Args:
        app: the ASGI application behind.
        max_bytes: the largest body accepted (413 beyond).
        timeout_s: seconds within which the whole body must arrive (408 beyond).
    """

    def __init__(
        self, app, max_bytes: int = MAX_BODY_BYTES, timeout_s: float = BODY_TIMEOUT_S
    ) -> None:
        if max_bytes < 0 or not timeout_s > 0:
            raise ValueError(f"need max_bytes >= 0 and timeout_s > 0, got {max_bytes}, {timeout_s}")
        self.app = app
        self.max_bytes = int(max_bytes)
        self.timeout_s = float(timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == "invalid":
            await _refuse(send, 400, "Content-Length must be a non-negative integer")
            return
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, self._too_large(declared))
            return
        body = bytearray()
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:  # TimeoutError from Python 3.11
                await _refuse(
                    send, 408, f"the request body did not arrive within {self.timeout_s:g} s"
                )
                return
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await _refuse(send, 413, self._too_large(len(body), streamed=True))
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    def _too_large(self, size: int, streamed: bool = False) -> str:
        what = "more than " if streamed else ""
        return f"request body of {what}{size} bytes is over the limit of {self.max_bytes} bytes"


def _content_length(scope: Scope) -> int | str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else "invalid"
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read already, then waits on the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def server_config(app, **options):
    """Return a ``uvicorn.Config`` for ``app`` with the demo's connection limits.

    Args:
        app: the ASGI app (``create_app()``).
        **options: more ``uvicorn.Config`` options (``log_level``...), overriding the limits.
    """
    import uvicorn

    limits = {
        "http": "h11",  # the pure-Python parser, whose event size limit is set here
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "limit_concurrency": MAX_CONNECTIONS,
    }
    return uvicorn.Config(app, **{**limits, **options})
