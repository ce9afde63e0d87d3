"""The agents' no-change poll, answered before FastAPI's routing and dependencies.

Most requests a fleet sends are ``GET /device/v1/actions/next`` with the ``If-None-Match``
of the last answer, and most answers are 304. This ASGI middleware answers exactly those:
one indexed select for the credential's device (``device_db``: on the event loop, no session,
no worker thread), and a bare 304 when its ETag matches. Anything else (no ETag,
another ETag, an unknown or revoked credential, a lookup that could not run) goes on to the
route, which gives the full answer or the 401.

No answer is cached: the ETag is read from the committed row on every poll, so an action
queued by another process, or a credential revoked there, shows on the next poll.
"""

from __future__ import annotations

from typing import Any

from fleetup.api.deps import Server
from fleetup.api.device.device_db import DirectUnavailable, device_db
from fleetup.devices import service as devices

PATH = "/device/v1/actions/next"


class PollFastPath:
    """ASGI middleware: the 304 of an unchanged poll; it also closes ``device_db``'s
    connections when the server shuts down."""

    def __init__(self, app: Any, parts: Server) -> None:
        self.app = app
        self.database = device_db(parts.engine)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["path"] == PATH and scope["method"] == "GET":
                tag = await self._unchanged_etag(scope["headers"])
                if tag is not None:
                    await send({"type": "http.response.start", "status": 304, "headers": tag})
                    await send({"type": "http.response.body", "body": b""})
                    return
        elif scope["type"] == "lifespan":
            send = self._closing_database_on_shutdown(send)
        await self.app(scope, receive, send)

    async def _unchanged_etag(self, headers: list[tuple[bytes, bytes]]) -> Any:
        """The 304's headers when the poll's ``If-None-Match`` is the current ETag, else None."""
        sent_tag = auth = None
        for name, value in headers:
            if name == b"if-none-match":
                sent_tag = value
            elif name == b"authorization":
                auth = value
        if not sent_tag or not auth or auth[:7].lower() != b"bearer ":
            return None
        try:
            row = await self.database.find(auth[7:].strip().decode("latin-1"))
        except DirectUnavailable:
            return None  # the route answers, through its own session
        tag = devices.etag_of_row(row)
        if tag is None or tag.encode("latin-1") != sent_tag:
            return None
        return [(b"etag", sent_tag)]

    def _closing_database_on_shutdown(self, send: Any) -> Any:
        async def closing(message: Any) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.database.close()
            await send(message)

        return closing
