"""Refuses a request whose values hold a NUL character, naming each field that does.

PostgreSQL cannot store NUL (0x00) in text and answers with an error that would reach the
caller as a server error; SQLite would store it silently. No value fleetup keeps may hold
one, so every route checks its query, path and JSON or form body once, before the handler
runs, and refuses with the same problem details as any other invalid input.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request

from fleetup.core.errors import FieldProblem, InvalidInput

NUL = "\x00"
_MESSAGE = "holds a NUL character, which cannot be stored; remove it"


def _nul_locations(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, str):
        if NUL in value:
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if NUL in str(key):
                yield inner
            else:
                yield from _nul_locations(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_locations(item, f"{where}.{index}" if where else str(index))


async def refuse_nul(request: Request) -> None:
    """The app-wide dependency: raise ``InvalidInput`` naming every value with a NUL."""
    fields = [
        f"{source}.{name}"
        for source, items in (
            ("query", request.query_params.multi_items()),
            ("path", list(request.path_params.items())),
        )
        for name, value in items
        if NUL in name or NUL in str(value)
    ]
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "application/json":
        body = await request.body()  # Starlette keeps it for the route to read again
        if b"\\u0000" in body or b"\x00" in body:
            # Not JSON at all: the route's own validation says so.
            with contextlib.suppress(ValueError):
                fields += _nul_locations(json.loads(body), "")
    elif media_type == "application/x-www-form-urlencoded":
        form = await request.form()
        fields += [name for name, value in form.multi_items() if NUL in name or NUL in str(value)]
    if fields:
        raise InvalidInput(
            f"check these fields: {', '.join(sorted(set(fields)))}",
            [FieldProblem(field=field, message=_MESSAGE) for field in sorted(set(fields))],
        )
