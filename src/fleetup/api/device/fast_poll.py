"""The agents' no-change poll, answered before FastAPI's routing and dependencies.

Most requests a fleet sends are ``GET /device/v1/actions/next`` with the ``If-None-Match``
of the last answer, and most answers are 304. This ASGI middleware answers exactly those:
one indexed query for the credential's ETag (in a worker thread, like a sync route), and a
304 when it matches. Anything else (no ETag, another ETag, an unknown or revoked credential)
goes on to the route, which gives the full answer or the 401/403.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from fleetup.api.deps import Server
from fleetup.devices import service as devices

PATH = "/device/v1/actions/next"


class PollFastPath:
    def __init__(self, app: Any, parts: Server) -> None:
        self.app = app
        self.parts = parts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            sent_tag = auth = None
            for name, value in scope["headers"]:
                if name == b"if-none-match":
                    sent_tag = value
                elif name == b"authorization":
                    auth = value
            if sent_tag and auth and auth[:7].lower() == b"bearer ":
                credential = auth[7:].strip().decode("latin-1")
                tag = await anyio.to_thread.run_sync(self._etag, credential)
                if tag is not None and tag.encode() == sent_tag:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 304,
                            "headers": [(b"etag", sent_tag)],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)

    def _etag(self, credential: str) -> str | None:
        with self.parts.sessions() as session:
            return devices.current_etag(session, credential=credential)
