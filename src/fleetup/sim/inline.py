"""An httpx transport that calls an ASGI application in the caller's thread.

The simulator's in-process mode sends tens of thousands of requests, one at a time.
Starlette's test client hands every message of every request across threads through a
blocking portal; this transport instead keeps one event loop of its own and runs each request
on it to completion. Nothing else runs while a request does, so a thread pool would have
nothing to overlap: the synchronous dependencies and routes that a server runs in its pool
run here in the caller's thread (``anyio.to_thread.run_sync`` is wrapped to do so, only for
requests this transport runs), which saves two thread switches per dependency. The request
is the same HTTP request, routed, authenticated and validated by the same app.

The simulator's own calls skip httpx's request and client (``InlineTransport.call``): what
they send is a method, a path and a few headers, and building an ``httpx.Request`` only to
take it apart again cost about as much as a heartbeat's route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote, unquote

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
# How ``call`` names the server and itself, as an httpx client would.
HOST = b"simulator.invalid"
AGENT = f"python-httpx/{httpx.__version__}".encode()
# What a path and a query string may hold as written (RFC 3986), ``%`` for what is encoded.
PATH_SAFE = "/:@!$&'()*+,;=-._~%"
QUERY_SAFE = PATH_SAFE + "?"


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
        return self._exchange(
            request.method,
            request.url.path,
            request.url.raw_path.split(b"?")[0],
            request.url.query,
            [(key.lower(), value) for key, value in request.headers.raw],
            request.read(),
            request.url.scheme,
            (request.url.host, request.url.port or 80),
        )

    def call(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> httpx.Response:
        """One request given as its parts, without an ``httpx.Request`` to build and take
        apart again: ``target`` is the path and query string as the simulated actors write
        them (what a URL cannot hold is percent-encoded, as httpx does), and the headers are
        the caller's besides a client's usual ones."""
        path, _, query = target.partition("?")
        raw = [(b"host", HOST), (b"accept", b"*/*"), (b"user-agent", AGENT)]
        if body:
            raw.append((b"content-length", str(len(body)).encode()))
        raw += [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        raw_path = quote(path, safe=PATH_SAFE).encode()
        return self._exchange(
            method,
            unquote(path),
            raw_path,
            quote(query, safe=QUERY_SAFE).encode(),
            raw,
            body,
            "http",
            (HOST.decode(), 80),
        )

    def _exchange(
        self,
        method: str,
        path: str,
        raw_path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        scheme: str,
        server: tuple[str, int | None],
    ) -> httpx.Response:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": server,
        }
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        status = 500
        sent: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                sent = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        token = _INLINE.set(True)
        try:
            self.loop.run_until_complete(self.app(scope, receive, send))
        finally:
            _INLINE.reset(token)
        return httpx.Response(status, headers=sent, content=b"".join(chunks))

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()
