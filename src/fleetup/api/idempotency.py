"""``Idempotency-Key``: a client may send a changing request again and get the first answer.

A request with the header (any method but GET, HEAD and OPTIONS) runs inside one transaction
that also stores its answer (see ``fleetup.core.idempotency``); the answer leaves the server
only after that commit. The same key from the same caller then gets the stored answer again,
marked ``Idempotent-Replayed: true``, and the request does nothing more; the same key on
another route is refused (422). An answer of 5xx is not kept: the request is rolled back and
may be sent again. Requests without the header are untouched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from fleetup.api.deps import Server
from fleetup.api.problems import MEDIA_TYPE
from fleetup.core import idempotency
from fleetup.core.idempotency import StoredAnswer

HEADER = b"idempotency-key"
REPLAYED = b"idempotent-replayed"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
LONGEST_KEY = 200

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def install(app: FastAPI, parts: Server) -> None:
    """Honour ``Idempotency-Key`` on ``app``: its sessions join a keyed request's transaction.

    ``create_app`` does this for every app; a second call changes nothing.
    """
    if getattr(app.state, "idempotent_requests", False):
        return
    app.state.idempotent_requests = True
    if not isinstance(parts.sessions, idempotency.ReplayableSessions):
        parts.sessions = idempotency.replayable(parts.sessions)
    app.add_middleware(IdempotentRequests, parts=parts)


class _Answer:
    """The response the application gave, held back until it is stored."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[list[str]] = []
        self.chunks: list[bytes] = []
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [
                [name.decode("latin-1"), value.decode("latin-1")]
                for name, value in message.get("headers", [])
            ]
        elif message["type"] == "http.response.body":
            self.chunks.append(bytes(message.get("body", b"")))
            self.complete = not message.get("more_body", False)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def _respond(
    send: Send, status: int, headers: list[list[str]], body: bytes, *, replayed: bool = False
) -> None:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    if replayed:
        raw.append((REPLAYED, b"true"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    headers = [["content-type", MEDIA_TYPE], ["content-length", str(len(body))]]
    await _respond(send, status, headers, body)


class IdempotentRequests:
    """The ASGI middleware that keeps keyed requests' answers (see the module's docstring)."""

    def __init__(self, app: Any, parts: Server) -> None:
        self.app = app
        self.parts = parts

    async def __call__(self, scope: Message, receive: Any, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        sent_key = headers.get(HEADER)
        if sent_key is None:
            await self.app(scope, receive, send)
            return
        if not 0 < len(sent_key) <= LONGEST_KEY:
            await _problem(send, 400, "Bad Idempotency-Key", f"send 1 to {LONGEST_KEY} characters")
            return
        credential = headers.get(b"authorization", b"")
        key = hashlib.sha256(credential + b"\n" + sent_key).hexdigest()
        path = scope["path"] + (
            "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
        )
        method = str(scope["method"])
        opened = await anyio.to_thread.run_sync(
            partial(
                idempotency.begin,
                self.parts.engine,
                key=key,
                method=method,
                path=path,
                now=self.parts.clock.now(),
            )
        )
        if isinstance(opened, StoredAnswer):
            if (opened.method, opened.path) != (method, path):
                await _problem(
                    send,
                    422,
                    "Idempotency-Key reused",
                    f"this key was sent with {opened.method} {opened.path}; use a new key",
                )
                return
            await _respond(send, opened.status, opened.headers, opened.body, replayed=True)
            return
        answer = _Answer()
        token = idempotency.joined.set(opened)
        try:
            await self.app(scope, receive, answer.send)
        except BaseException:
            with anyio.CancelScope(shield=True):  # the transaction must end, even on shutdown
                await anyio.to_thread.run_sync(idempotency.abandon, opened)
            raise
        finally:
            idempotency.joined.reset(token)
        with anyio.CancelScope(shield=True):
            if answer.status >= 500 or not answer.complete:
                await anyio.to_thread.run_sync(idempotency.abandon, opened)
            else:
                await anyio.to_thread.run_sync(
                    partial(
                        idempotency.keep,
                        opened,
                        key=key,
                        status=answer.status,
                        headers=answer.headers,
                        body=answer.body,
                    )
                )
        await _respond(send, answer.status, answer.headers, answer.body)
