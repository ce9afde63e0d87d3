"""Device authentication: ``Authorization: Bearer <device credential>``.

``device()`` is the access rule of every ``/device/v1`` route but enrollment (which uses
``enrollment()``): it marks itself with ``RULE_ATTR`` so ``GuardedRoute`` admits the route, and
it answers 401 for a missing or unknown credential and 403 for a revoked one. A user's API
token is not a device credential and is refused here.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from fleetup.api.access import RULE_ATTR
from fleetup.api.deps import db, server
from fleetup.core.context import Ctx
from fleetup.devices import service as devices
from fleetup.devices.service import DeviceCaller

DEVICE_RULE = frozenset({"device"})


def _caller(request: Request, session: Session = Depends(db)) -> DeviceCaller:
    cached: DeviceCaller | None = getattr(request.state, "device", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise HTTPException(401, "send the device credential", {"WWW-Authenticate": "Bearer"})
    caller = devices.authenticate(session, credential=header[7:].strip())
    session.rollback()  # end the read transaction so the route starts its own
    if caller is None:
        raise HTTPException(401, "the device credential is unknown", {"WWW-Authenticate": "Bearer"})
    request.state.device = caller
    return caller


def device() -> Any:
    """The rule for routes only an enrolled, not revoked device may call."""

    def rule(caller: DeviceCaller = Depends(_caller)) -> DeviceCaller:
        return caller

    setattr(rule, RULE_ATTR, DEVICE_RULE)
    return Depends(rule)


def enrollment() -> Any:
    """The rule of ``POST /device/v1/enroll``: anyone; the one-time token is checked inside."""

    def rule() -> None:
        return None

    setattr(rule, RULE_ATTR, frozenset({"enrolling device"}))
    return Depends(rule)


def current_device(request: Request) -> DeviceCaller:
    """The caller the rule admitted (the rule runs first and caches it on the request)."""
    caller: DeviceCaller | None = getattr(request.state, "device", None)
    if caller is None:
        raise HTTPException(401, "send the device credential", {"WWW-Authenticate": "Bearer"})
    return caller


def device_context(request: Request, session: Session = Depends(db)) -> Ctx:
    """A write context acting as ``device:SERIAL``."""
    caller = current_device(request)
    return Ctx(session=session, actor=caller.actor, clock=server(request).clock)
