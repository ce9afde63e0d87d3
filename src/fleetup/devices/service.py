"""Devices: enrollment, authentication, actions, step reports, heartbeats, registration.

Public ids are ``dev-N`` and ``act-N``. A device reaches only its own actions: anything else
is refused with ``PermissionDenied`` (403), whether it exists or not. Step reports are
idempotent by ``event_id``: a repeated one answers ``duplicate`` and changes nothing, so an
agent retrying over a flaky 4G link never counts a step twice.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, Update, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.db import ById, Prepared
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound, PermissionDenied
from fleetup.devices.models import (
    REMOTE_FINAL_STEP,
    Device,
    DeviceAction,
    DeviceEvent,
    EnrollmentToken,
)
from fleetup.devices.schemas import DeploymentIn, DeploymentOut, StepEventIn
from fleetup.devices.sop_bridge import StepMapper, customer_is_existing
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Machine
from fleetup.releases import service as releases
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary

TOKEN_LIFETIME = timedelta(days=7)
OPEN_STATUSES = ("queued", "running")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def public_id(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


def parse_id(prefix: str, value: str) -> int | None:
    head, _, tail = value.partition("-")
    return int(tail) if head == prefix and tail.isdigit() else None


@dataclass(frozen=True)
class DeviceCaller:
    """An authenticated device, as routes see it."""

    id: int
    machine_id: int
    serial: str
    changes: int

    @property
    def public_id(self) -> str:
        return public_id("dev", self.id)

    @property
    def actor(self) -> str:
        return f"device:{self.serial}"


# -- enrollment and authentication ---------------------------------------------------------


def create_enrollment_token(ctx: Ctx, *, serial: str) -> str:
    """A one-time token for the IPC of machine ``serial``; returned once, stored hashed.

    Raises:
        NotFound: no machine with that serial.
    """
    fleet.get_machine(ctx.session, serial=serial)
    token = "fet_" + secrets.token_urlsafe(24)
    row = EnrollmentToken(
        digest=digest(token),
        serial=serial,
        created_at=ctx.now(),
        expires_at=ctx.now() + TOKEN_LIFETIME,
    )
    ctx.session.add(row)
    ctx.audit("create", row, None)
    return token


def enroll(
    ctx: Ctx, *, token: str, serial: str, hardware: dict[str, Any]
) -> tuple[DeviceCaller, str]:
    """Exchange a one-time enrollment token for a device credential.

    Returns:
        The device and its credential (shown once; only its digest is kept).

    Raises:
        PermissionDenied: the token is unknown, used, expired or for another machine.
    """
    row = ctx.session.scalar(
        select(EnrollmentToken).where(EnrollmentToken.digest == digest(token)).with_for_update()
    )
    if row is None or row.serial != serial:
        raise PermissionDenied("the enrollment token is not valid for this machine")
    if row.used_at is not None:
        raise PermissionDenied("the enrollment token was used already; ask for a new one")
    if row.expires_at <= ctx.now():
        raise PermissionDenied("the enrollment token has expired; ask for a new one")
    before = snapshot(row)
    row.used_at = ctx.now()
    ctx.audit("use", row, before)
    machine = fleet.get_machine(ctx.session, serial=serial)
    credential = "fdc_" + secrets.token_urlsafe(32)
    device = ctx.session.scalar(select(Device).where(Device.machine_id == machine.id))
    if device is None:
        device = Device(
            machine_id=machine.id,
            credential_digest=digest(credential),
            enrolled_at=ctx.now(),
            hardware=hardware,
            changes=0,
        )
        ctx.session.add(device)
        action = "enroll"
    else:
        device.credential_digest = digest(credential)
        device.enrolled_at = ctx.now()
        device.hardware = hardware
        device.revoked = False
        device.changes += 1
        action = "re-enroll"
    ctx.audit(action, device, None)
    return _caller(device, serial), credential


def authenticate(session: Session, *, credential: str) -> DeviceCaller | None:
    """The device holding ``credential``; None when unknown.

    Raises:
        PermissionDenied: the device was revoked.
    """
    row = session.execute(_AUTHENTICATE, credential_values(credential)).one_or_none()
    return caller_from_row(row)


# Built once: every agent's every request runs it, and building the statement cost more than
# running it. Only what a caller needs, not the device's JSON columns. The row it selects is
# what ``CredentialRow`` names.
_AUTHENTICATE = (
    select(Device.id, Device.machine_id, Device.changes, Device.revoked, Machine.serial)
    .join(Machine, Device.machine_id == Machine.id)
    .where(Device.credential_digest == bindparam("digest"))
)

#: ``(device id, machine id, changes, revoked, serial)``, as ``credential_statement`` selects it.
CredentialRow = Sequence[Any]


def credential_statement() -> Select[int, int, int, bool, str]:
    """The select ``authenticate`` runs, for callers that run it without a session.

    The device API's hot paths (the no-change poll, every device route's authentication) run
    it straight on a DBAPI connection: through a session in a worker thread, the machinery
    cost ten times the indexed lookup itself. Its parameters: ``credential_values``.
    """
    return _AUTHENTICATE


def credential_values(credential: str) -> dict[str, str]:
    """The parameters of ``credential_statement`` for the holder of ``credential``."""
    return {"digest": digest(credential)}


def caller_from_row(row: CredentialRow | None) -> DeviceCaller | None:
    """The device a credential row names; None when no row (an unknown credential).

    Raises:
        PermissionDenied: the device was revoked.
    """
    if row is None:
        return None
    device_id, machine_id, changes, revoked, serial = row
    if revoked:
        raise PermissionDenied("this device's credential was revoked")
    return DeviceCaller(device_id, machine_id, serial, changes)


def etag_of_row(row: CredentialRow | None) -> str | None:
    """The ETag ``actions/next`` answers the device of a credential row; None when the
    credential is unknown or revoked (the route then answers 401, never 304)."""
    if row is None or row[3]:
        return None
    return etag(DeviceCaller(row[0], row[1], row[4], row[2]))


def _caller(device: Device, serial: str) -> DeviceCaller:
    return DeviceCaller(device.id, device.machine_id, serial, device.changes)


def revoke(ctx: Ctx, *, serial: str) -> None:
    device = _device_of(ctx.session, serial=serial)
    before = snapshot(device)
    device.revoked = True
    ctx.audit("revoke", device, before)


def _device_of(session: Session, *, serial: str) -> Device:
    machine = fleet.get_machine(session, serial=serial)
    device = session.scalar(select(Device).where(Device.machine_id == machine.id))
    if device is None:
        raise NotFound(f"machine {serial} has no enrolled IPC; make a token with enroll-token")
    return device


# -- deployments and actions ---------------------------------------------------------------


def deploy(
    ctx: Ctx, library: SopLibrary, *, serial: str, data: DeploymentIn, base_url: str
) -> DeploymentOut:
    """Queue an upgrade of machine ``serial`` to ``data.version`` for its IPC.

    The machine's running chart 2 instance is reused, or a new one started.

    Raises:
        NotFound: no such machine or release (the IPC may enroll later).
        Conflict: the IPC already has an upgrade queued or running.
    """
    release = releases.get(ctx.session, version=data.version)
    machine = fleet.get_machine(ctx.session, serial=serial)
    busy = ctx.session.scalar(
        select(DeviceAction.id).where(
            DeviceAction.machine_id == machine.id, DeviceAction.status.in_(OPEN_STATUSES)
        )
    )
    if busy is not None:
        raise Conflict(f"machine {serial} already has action {public_id('act', busy)} open")
    instance = upgrades.active_upgrade(ctx.session, machine_id=machine.id)
    if instance is None:
        instance = upgrades.start_upgrade(ctx, library, serial=serial)
    window = data.install_window
    network = (
        data.network.model_dump(exclude_none=True) if data.network else {"primary_url": base_url}
    )
    action = DeviceAction(
        machine_id=machine.id,
        instance_id=instance.id,
        release_id=release.id,
        kind="upgrade",
        status="queued",
        created_at=ctx.now(),
        updated_at=ctx.now(),
        not_before=window.not_before if window else None,
        not_after=window.not_after if window else None,
        network=network,
        platform_hint=data.platform_hint,
    )
    ctx.session.add(action)
    _bump(ctx.session, machine_id=machine.id)
    ctx.audit("create", action, None)
    return _deployment_out(action, serial, release.version)


# Every change to a device's actions moves its counter with this: compiled once.
_BUMP = Prepared(
    update(Device)
    .where(Device.machine_id == bindparam("machine_id"))
    .values(changes=Device.changes + 1)
    .returning(Device.id, Device.changes)
)


def _bump(session: Session, *, machine_id: int) -> None:
    """Move the machine's IPC's change counter, so its next poll sees a new ETag.

    One ``UPDATE``, without loading the device; a device the session holds gets the new count
    as if it had been read again.
    """
    if session.autoflush:
        session.flush()
    for device_id, changes in _BUMP.rows(session.connection(), {"machine_id": machine_id}):
        held = session.identity_map.get(identity_key(Device, device_id))
        if held is not None:
            set_committed_value(held, "changes", changes)
        from fleetup.notify import service as notify  # lazily: it loads Apprise

        notify.wake_device(session, device_id=device_id)


def etag(caller: DeviceCaller) -> str:
    """The ETag of ``actions/next``: it changes whenever one of the device's actions does."""
    return f'"{caller.id}.{caller.changes}"'


def next_action(session: Session, *, caller: DeviceCaller) -> dict[str, Any] | None:
    """The device's next open action, as the agent reads it.

    Remote actions (diagnostics, fallback, snapshot, restore) come before an upgrade or a
    reinstall, so a spare IPC restores the machine's data before the upgrade goes on; within
    each group the oldest comes first.
    """
    action = session.scalar(_NEXT_ACTION, {"machine_id": caller.machine_id})
    if action is None:
        return None
    if action.release_id is None:
        return {
            "id": public_id("act", action.id),
            "kind": action.kind,
            "params": action.params or {},
            "install_window": None,
        }
    release = releases.get_by_id(session, release_id=action.release_id)
    window = None
    if action.not_before or action.not_after:
        window = {"not_before": _iso(action.not_before), "not_after": _iso(action.not_after)}
    return {
        "id": public_id("act", action.id),
        "kind": action.kind,
        "release": {
            "version": release.version,
            "target": release.target,
            "sha256": release.sha256,
            "length": release.length,
        },
        "install_window": window,
        "network": action.network,
        "platform_hint": action.platform_hint,
        "params": action.params or {},
    }


# Built once, like ``_AUTHENTICATE``: every IPC's first poll, and every poll after a change.
_NEXT_ACTION = (
    select(DeviceAction)
    .where(
        DeviceAction.machine_id == bindparam("machine_id"),
        DeviceAction.status.in_(OPEN_STATUSES),
    )
    .order_by(DeviceAction.kind.not_in(tuple(REMOTE_FINAL_STEP)), DeviceAction.id)
    .limit(1)
)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_ACTION = ById(DeviceAction)


def own_action(session: Session, *, caller: DeviceCaller, action_id: str) -> DeviceAction:
    """The device's own action ``act-N``.

    Raises:
        PermissionDenied: not an action of this device (or no such action).
    """
    number = parse_id("act", action_id)
    action = _ACTION(session, number) if number is not None else None
    if action is None or action.machine_id != caller.machine_id:
        raise PermissionDenied(f"action {action_id} is not this device's")
    return action


def deployments_of(session: Session, *, serial: str) -> list[DeploymentOut]:
    """Every action queued for the machine's IPC, oldest first."""
    machine = fleet.get_machine(session, serial=serial)
    actions = session.scalars(
        select(DeviceAction)
        .where(
            DeviceAction.machine_id == machine.id,
            DeviceAction.release_id.is_not(None),
            DeviceAction.instance_id.is_not(None),
        )
        .order_by(DeviceAction.id)
    ).all()
    return [
        _deployment_out(
            action, serial, releases.get_by_id(session, release_id=action.release_id or 0).version
        )
        for action in actions
    ]


def _deployment_out(action: DeviceAction, serial: str, version: str) -> DeploymentOut:
    return DeploymentOut(
        action_id=public_id("act", action.id),
        serial=serial,
        instance_id=action.instance_id or 0,  # deployments always have one
        version=version,
        status=action.status,
        created_at=action.created_at,
    )


# -- step reports --------------------------------------------------------------------------


# Every step report asks this: compiled once, run on the driver's cursor.
_KNOWN_EVENT = Prepared(
    select(DeviceEvent.id).where(
        DeviceEvent.device_id == bindparam("device_id"),
        DeviceEvent.event_id == bindparam("event_id"),
    )
)


def record_event(
    ctx: Ctx, library: SopLibrary, *, caller: DeviceCaller, action_id: str, event: StepEventIn
) -> bool:
    """Keep one step report and apply it to the machine's upgrade; False when a duplicate.

    Raises:
        PermissionDenied: the action is not this device's.
    """
    action = own_action(ctx.session, caller=caller, action_id=action_id)
    known = _KNOWN_EVENT.rows(
        ctx.session.connection(), {"device_id": caller.id, "event_id": event.event_id}
    )
    if known:
        return False
    if action.instance_id is None:
        note = f"{action.kind}: device evidence only, no chart 2 step"
    else:
        mapper = StepMapper(
            ctx,
            library,
            instance_id=action.instance_id,
            customer_existing=lambda: customer_is_existing(ctx, serial=caller.serial),
        )
        note = mapper.apply(
            step=event.step, status=event.status, at=event.at, evidence=event.evidence
        )
    # Written once, with its note; a report that arrived twice at once fails here, and the
    # request's transaction, with what the first part applied, rolls back.
    connection = ctx.session.connection()
    try:
        _INSERT_EVENT.run(
            connection,
            {
                "device_id": caller.id,
                "action_id": action.id,
                "event_id": event.event_id,
                "step": event.step,
                "status": event.status,
                "at": event.at,
                "received_at": ctx.now(),
                "evidence": event.evidence,
                "sop_note": note,
            },
        )
    except connection.dialect.dbapi.IntegrityError as error:  # type: ignore[union-attr]
        raise Conflict("this report is being recorded already; send it again") from error
    _follow_status(ctx, action, event)
    return True


# Every step report is kept with this: compiled once, run on the driver's cursor.
_EVENTS = cast(Table, DeviceEvent.__table__)
_INSERT_EVENT = Prepared(
    insert(_EVENTS).values(
        {
            name: bindparam(name)
            for name in (
                "device_id",
                "action_id",
                "event_id",
                "step",
                "status",
                "at",
                "received_at",
                "evidence",
                "sop_note",
            )
        }
    )
)


def _follow_status(ctx: Ctx, action: DeviceAction, event: StepEventIn) -> None:
    before = snapshot(action)
    status = action.status
    if status == "queued":
        status = "running"
    final_step = REMOTE_FINAL_STEP.get(action.kind)
    if final_step is not None and event.status != "started":
        # The action keeps each step's last report, so its state reads without the events.
        action.evidence = {**(action.evidence or {}), event.step: event.evidence}
    ends = (
        event.step in (final_step, "function_test") if final_step else event.step == "function_test"
    )
    if ends and event.status == "succeeded":
        status = "succeeded"
    elif event.step == "rollback" and event.status != "started":
        status = "rolled_back" if event.status == "succeeded" else "failed"
    elif event.status == "failed" and not event.evidence.get("will_retry", False):
        status = "failed"
    if status == action.status:
        if action.evidence != before.get("evidence"):
            ctx.audit("update", action, before, note=f"{event.step} {event.status}")
        return
    action.status = status
    action.updated_at = ctx.now()
    _bump(ctx.session, machine_id=action.machine_id)
    ctx.audit("update", action, before, note=f"{event.step} {event.status}")


def events_of(session: Session, *, action_id: int) -> Sequence[DeviceEvent]:
    return session.scalars(
        select(DeviceEvent).where(DeviceEvent.action_id == action_id).order_by(DeviceEvent.id)
    ).all()


# -- heartbeat and registration -------------------------------------------------------------


def heartbeat(session: Session, values: Mapping[str, Any]) -> bool:
    """Keep what an IPC says of itself (``heartbeat_values``); False when its row is gone.

    One UPDATE, without loading the row; the device API runs the same statement without a
    session too (``heartbeat_statement``). Not audited: a heartbeat is telemetry the device
    reports, not a change anyone made. ``Device`` is kept out of the audit registry for that
    reason, and a fleet's heartbeats, one per IPC a minute, would otherwise all queue on the
    audit chain's head row.
    """
    changed: int = session.execute(_HEARTBEAT, values).rowcount  # type: ignore[attr-defined]
    return changed == 1


_DEVICES = cast(Table, Device.__table__)
# Core, not ORM-enabled: no identity map to keep in step, and a third of the cost.
_HEARTBEAT = (
    update(_DEVICES)
    .where(_DEVICES.c.id == bindparam("device_id"))
    .values(
        last_seen=bindparam("seen_at"),
        version=bindparam("new_version"),
        link=bindparam("new_link"),
        health=bindparam("new_health"),
        reporting=bindparam("new_reporting"),
    )
)


def heartbeat_statement() -> Update:
    """The UPDATE ``heartbeat`` runs; it changes one row, or none when the device is gone."""
    return _HEARTBEAT


def heartbeat_values(
    *, caller: DeviceCaller, now: datetime, version: str, link: str, health: dict[str, Any]
) -> dict[str, Any]:
    """One heartbeat of ``caller``, received at ``now``: the parameters of ``heartbeat``."""
    return {
        "device_id": caller.id,
        "seen_at": now,
        "new_version": version,
        "new_link": link,
        "new_health": health,
        "new_reporting": reports_something(health),
    }


def reports_something(health: Mapping[str, Any]) -> bool:
    """Whether a health report names anomalies or a problem: the agent sends those keys
    only when it has found something, and monitoring reads them."""
    return bool(health.get("anomalies")) or bool(health.get("problem"))


def register(ctx: Ctx, *, caller: DeviceCaller, device_id: str, platform_hint: str) -> str:
    """Issue the credential for the new cloud platform; only its digest is kept.

    Raises:
        InvalidInput: ``device_id`` is not the caller's.
    """
    if device_id != caller.public_id:
        raise InvalidInput(
            f"device_id {device_id} is not this device ({caller.public_id})",
            [FieldProblem("device_id", "must be the caller's own id")],
        )
    device = _DEVICE(ctx.session, caller.id)
    if device is None:
        raise NotFound("the device is gone")
    credential = "fpc_" + secrets.token_urlsafe(32)
    device.platform_credential_digest = digest(credential)
    ctx.audit("register", device, None, note=f"platform {platform_hint}")
    return credential


_DEVICE = ById(Device)
