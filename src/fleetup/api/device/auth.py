"""Device authentication: ``Authorization: Bearer <device credential>``.

``device()`` is the access rule of every ``/device/v1`` route but enrollment (which uses
``enrollment()``): it marks itself with ``RULE_ATTR`` so ``GuardedRoute`` admits the route, and
it answers 401 for a missing credential, and 401 with ``error="invalid_token"`` for an
unknown or revoked one (RFC 6750, section 3.1). A user's API token is not a device credential
and is refused here.

Agents call these routes all day, so the rule and the session they get cost little: the
credential is looked up on the event loop (``device_db``, no session and no worker
thread), and ``device_session`` opens its session on the loop too, since opening one
does no I/O; only the route itself then runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from fleetup.api.access import RULE_ATTR
from fleetup.api.deps import Server, server
from fleetup.api.device.device_db import DirectUnavailable, device_db
from fleetup.core.context import Ctx
from fleetup.core.errors import PermissionDenied
from fleetup.devices import service as devices
from fleetup.devices.service import DeviceCaller

DEVICE_RULE = frozenset({"device"})


async def _caller(request: Request) -> DeviceCaller:
    cached: DeviceCaller | None = getattr(request.state, "device", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise HTTPException(401, "send the device credential", {"WWW-Authenticate": "Bearer"})
    credential = header[7:].strip()
    parts = server(request)
    try:
        try:
            caller = devices.caller_from_row(await device_db(parts.engine).find(credential))
        except DirectUnavailable:
            caller = await run_in_threadpool(_authenticate_in_session, parts, credential)
    except PermissionDenied as error:
        raise _invalid_token(str(error)) from error
    if caller is None:
        raise _invalid_token("the device credential is unknown")
    request.state.device = caller
    return caller


def _invalid_token(detail: str) -> HTTPException:
    """A 401 for a credential that was sent but is not (or no longer) valid: the device must
    enroll again, so the challenge names the error (RFC 6750, section 3.1)."""
    challenge = f'Bearer error="invalid_token", error_description="{detail}"'
    return HTTPException(401, detail, {"WWW-Authenticate": challenge})


def _authenticate_in_session(parts: Server, credential: str) -> DeviceCaller | None:
    with parts.sessions() as session:
        return devices.authenticate(session, credential=credential)


def device() -> Any:
    """The rule for routes only an enrolled, not revoked device may call."""

    async def rule(caller: DeviceCaller = Depends(_caller)) -> DeviceCaller:
        return caller

    setattr(rule, RULE_ATTR, DEVICE_RULE)
    return Depends(rule)


def enrollment() -> Any:
    """The rule of ``POST /device/v1/enroll``: anyone; the one-time token is checked inside."""

    async def rule() -> None:
        return None

    setattr(rule, RULE_ATTR, frozenset({"enrolling device"}))
    return Depends(rule)


def current_device(request: Request) -> DeviceCaller:
    """The caller the rule admitted (the rule runs first and caches it on the request)."""
    caller: DeviceCaller | None = getattr(request.state, "device", None)
    if caller is None:
        raise HTTPException(401, "send the device credential", {"WWW-Authenticate": "Bearer"})
    return caller


async def device_session(request: Request) -> AsyncIterator[Session]:
    """A database session for a device route, opened and closed on the event loop.

    Opening a session does no I/O, and neither does closing one whose route committed or
    never touched the database; only a session left in a transaction (the route raised) is
    rolled back in a worker thread, since that goes to the database.
    """
    session = server(request).sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


async def device_context(request: Request, session: Session = Depends(device_session)) -> Ctx:
    """A write context acting as ``device:SERIAL``."""
    caller = current_device(request)
    return Ctx(session=session, actor=caller.actor, clock=server(request).clock)
