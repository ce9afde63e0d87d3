"""An httpx transport that calls an ASGI application in the caller's thread.

The simulator's in-process mode sends tens of thousands of requests, one at a time.
Starlette's test client hands every message of every request across threads through a
blocking portal; this transport instead keeps one event loop of its own and runs each request
on it to completion. Nothing else runs while a request does, so a thread pool would have
nothing to overlap: the synchronous dependencies and routes that a server runs in its pool
run here in the caller's thread (``anyio.to_thread.run_sync`` is wrapped to do so, only for
requests this transport runs), which saves two thread switches per dependency. The request
is the same HTTP request, routed, authenticated and validated by the same app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
import httpx

Message = MutableMapping[str, Any]
Asgi = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


# Set while this transport runs a request; tasks it starts inherit it, other threads do not.
_INLINE: ContextVar[bool] = ContextVar("fleetup_inline_request", default=False)
_pooled = anyio.to_thread.run_sync


async def _run_sync(func: Callable[..., Any], *args: Any, **options: Any) -> Any:
    """``anyio.to_thread.run_sync``, in the calling thread for this transport's requests."""
    if _INLINE.get():
        return func(*args)
    return await _pooled(func, *args, **options)


def _install() -> None:
    if anyio.to_thread.run_sync is not _run_sync:
        anyio.to_thread.run_sync = _run_sync  # type: ignore[assignment]


class InlineTransport(httpx.BaseTransport):
    """Runs ``app`` for each request on a private event loop; close() closes the loop."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        _install()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "client": ("127.0.0.1", 50000),
            "server": (request.url.host, request.url.port or 80),
        }
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        token = _INLINE.set(True)
        try:
            self.loop.run_until_complete(self.app(scope, receive, send))
        finally:
            _INLINE.reset(token)
        return httpx.Response(status, headers=headers, content=b"".join(chunks), request=request)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()
