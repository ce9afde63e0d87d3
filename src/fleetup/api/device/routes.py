"""``/device/v1``: what the agent calls (docs/agent.md, "Device protocol").

Every route but enrollment takes the device credential (``auth.device()``); a device reaches
only its own actions and backups, and anything else answers 403.

The routes every IPC calls all day cost little: the no-change poll is answered before routing
(``fast_poll.py``), the heartbeat is one statement from the event loop (``device_db.py``), and
the full poll and step reports run in one worker thread each, their rule and session
dependencies running on the loop (``auth.py``). They answer with a ``Response`` already built,
since FastAPI would validate a returned model in another worker thread (the
``response_model`` still documents the answer).
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fleetup.api.access import GuardedRoute
from fleetup.api.deps import Server, server
from fleetup.api.device.auth import (
    current_device,
    device,
    device_context,
    device_session,
    enrollment,
)
from fleetup.api.device.device_db import DirectUnavailable, device_db
from fleetup.api.device.ranges import blob_response
from fleetup.api.problems import MEDIA_TYPE
from fleetup.core import idempotency
from fleetup.core.context import Ctx
from fleetup.core.errors import InvalidInput, NotFound
from fleetup.devices import backups, remote
from fleetup.devices import service as devices
from fleetup.devices.schemas import (
    BackupIn,
    BackupStatus,
    EnrollIn,
    EnrollOut,
    EventAnswer,
    HeartbeatIn,
    RegisterIn,
    StepEventIn,
)
from fleetup.releases import service as releases
from fleetup.releases.blobs import is_sha256

router = APIRouter(prefix="/device/v1", route_class=GuardedRoute, tags=["device"])
guarded = [device()]


def _upload_dir(request: Request) -> Any:
    return server(request).settings.effective_blob_dir / "uploads"


@router.post("/enroll", response_model=EnrollOut, dependencies=[enrollment()])
def enroll(
    body: EnrollIn, request: Request, session: Session = Depends(device_session)
) -> EnrollOut:
    ctx = Ctx(session=session, actor=f"device:{body.serial}", clock=server(request).clock)
    caller, credential = devices.enroll(
        ctx, token=body.enrollment_token, serial=body.serial, hardware=body.hardware
    )
    session.commit()
    return EnrollOut(device_id=caller.public_id, credential=credential)


@router.get("/actions/next", dependencies=guarded)
def next_action(request: Request, session: Session = Depends(device_session)) -> Response:
    caller = current_device(request)
    tag = devices.etag(caller)
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag})
    action = devices.next_action(session, caller=caller)
    session.rollback()  # end the read here, in this thread: the session then closes on the loop
    return JSONResponse({"action": action}, headers={"ETag": tag})


@router.post("/actions/{action_id}/events", response_model=EventAnswer, dependencies=guarded)
def post_event(
    action_id: str, body: StepEventIn, request: Request, ctx: Ctx = Depends(device_context)
) -> Response:
    accepted = devices.record_event(
        ctx,
        server(request).library,
        caller=current_device(request),
        action_id=action_id,
        event=body,
    )
    ctx.session.commit()
    return JSONResponse(EventAnswer(accepted=accepted, duplicate=not accepted).model_dump())


@router.post("/heartbeat", response_model=dict[str, bool], dependencies=guarded)
async def heartbeat(body: HeartbeatIn, request: Request) -> Response:
    # Every IPC's every minute: one UPDATE straight on device_db (on PostgreSQL one round trip
    # from the event loop). A request with an Idempotency-Key runs in that key's transaction
    # instead, through a session, and so does one the direct way cannot serve just now.
    parts = server(request)
    values = devices.heartbeat_values(
        caller=current_device(request),
        now=parts.clock.now(),
        version=body.version,
        link=body.link,
        health=body.health,
    )
    changed = None
    if idempotency.joined.get() is None:
        with contextlib.suppress(DirectUnavailable):
            changed = await device_db(parts.engine).heartbeat(values)
    if changed is None:
        changed = await run_in_threadpool(_heartbeat_in_session, parts, values)
    if changed != 1:
        raise NotFound("the device is gone")
    return JSONResponse({"ok": True})


def _heartbeat_in_session(parts: Server, values: dict[str, Any]) -> int:
    with parts.sessions() as session:
        changed = devices.heartbeat(session, values)
        session.commit()
    return int(changed)


@router.post("/register", dependencies=guarded)
def register(
    body: RegisterIn, request: Request, ctx: Ctx = Depends(device_context)
) -> dict[str, str]:
    credential = devices.register(
        ctx,
        caller=current_device(request),
        device_id=body.device_id,
        platform_hint=body.platform_hint,
    )
    ctx.session.commit()
    return {"platform_credential": credential}


@router.post("/backups", dependencies=guarded)
def create_backup(
    body: BackupIn, request: Request, ctx: Ctx = Depends(device_context)
) -> dict[str, Any]:
    status = backups.create(ctx, caller=current_device(request), data=body)
    ctx.session.commit()
    return {"backup_id": status.backup_id, "received": status.received}


@router.get("/backups/{backup_id}", response_model=BackupStatus, dependencies=guarded)
def backup_status(
    backup_id: str, request: Request, session: Session = Depends(device_session)
) -> BackupStatus:
    return backups.status(session, caller=current_device(request), backup_id=backup_id)


@router.put("/backups/{backup_id}", dependencies=guarded)
async def put_chunk(
    backup_id: str, request: Request, offset: int = Query(ge=0), ctx: Ctx = Depends(device_context)
) -> Response:
    chunk = await request.body()
    try:
        status = backups.append(
            ctx,
            caller=current_device(request),
            backup_id=backup_id,
            offset=offset,
            chunk=chunk,
            upload_dir=_upload_dir(request),
        )
    except backups.OffsetMismatch as error:
        ctx.session.rollback()
        body = {
            "type": "about:blank",
            "title": error.title,
            "status": 409,
            "detail": error.message,
            "received": error.received,
        }
        return JSONResponse(body, status_code=409, media_type=MEDIA_TYPE)
    ctx.session.commit()
    return JSONResponse({"received": status.received})


@router.post("/backups/{backup_id}/complete", dependencies=guarded)
def complete_backup(
    backup_id: str, request: Request, ctx: Ctx = Depends(device_context)
) -> dict[str, Any]:
    store = releases.blob_store(server(request).settings)
    try:
        status = backups.complete(
            ctx,
            caller=current_device(request),
            backup_id=backup_id,
            store=store,
            upload_dir=_upload_dir(request),
        )
    except InvalidInput:
        ctx.session.commit()  # keep the reset of a mismatched upload
        raise
    ctx.session.commit()
    return {"complete": status.complete, "received": status.received}


@router.get("/blobs/{sha256}", dependencies=guarded)
def blob(sha256: str, request: Request, session: Session = Depends(device_session)) -> Response:
    """A release package, or one of this device's own backups, with ``Range`` support."""
    caller = current_device(request)
    if not is_sha256(sha256):
        raise NotFound(f"no blob {sha256}")
    allowed = releases.is_release_blob(session, sha256=sha256) or remote.machine_backup_blob(
        session, caller=caller, sha256=sha256
    )
    session.rollback()
    store = releases.blob_store(server(request).settings)
    if not allowed or not store.exists(sha256):
        raise NotFound(f"no blob {sha256} for this device")
    return blob_response(
        store, sha256, request.headers.get("range"), media_type="application/octet-stream"
    )
