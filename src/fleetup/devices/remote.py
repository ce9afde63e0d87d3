"""Remote actions on a machine's IPC: diagnostics, 4G fallback, snapshot, restore, reinstall,
and the swap to a spare IPC.

Each request queues one ``device_actions`` row (``act-N``) for the machine, audited, and moves
the IPC's change counter so its next ``actions/next`` poll sees it. Remote actions carry no
release and no chart 2 instance, only ``params``; the agent reports them as step events
(``diagnose``, ``switch_network``, ``snapshot``, ``restore``) and the action keeps the evidence
of each step in ``evidence``. A machine has at most one open action of each kind.

A restore names the machine's latest verified backup (by machine, not by device: a spare IPC
restores what the one it replaces uploaded), so a spare swap is: revoke the old credential,
issue a one-time enrollment token, queue a data restore; the spare enrolls, its first poll
gets the restore (remote actions come before an upgrade), then the open upgrade goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.core.audit import snapshot as audit_snapshot
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, NotFound
from fleetup.devices import service as devices
from fleetup.devices.models import REMOTE_FINAL_STEP, BackupUpload, DeviceAction
from fleetup.fleet import service as fleet
from fleetup.releases import service as releases
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary


@dataclass(frozen=True)
class RemoteState:
    """Where a remote action stands, and what the IPC reported for it (by step)."""

    action_id: str
    kind: str
    status: str
    evidence: dict[str, Any]


def request_diagnostics(ctx: Ctx, *, serial: str) -> str:
    """Ask the IPC to check DNS, route and reachability of its primary and fallback URLs.

    Returns:
        The action id ``act-N``.

    Raises:
        NotFound: no such machine, or it has no enrolled IPC.
        Conflict: a diagnostics action is already open.
    """
    return _queue(ctx, serial=serial, kind="diagnose", params={})


def request_fallback(ctx: Ctx, *, serial: str) -> str:
    """Ask the IPC to move its server traffic to its 4G fallback URL and say which link it uses.

    Raises:
        NotFound: no such machine, or it has no enrolled IPC.
        Conflict: a fallback action is already open.
    """
    return _queue(ctx, serial=serial, kind="fallback", params={})


def request_snapshot(ctx: Ctx, *, serial: str, reason: str) -> str:
    """Ask the IPC for an immediate verified backup, uploaded like an upgrade's backup.

    Raises:
        NotFound: no such machine, or it has no enrolled IPC.
        Conflict: a snapshot is already open.
    """
    return _queue(ctx, serial=serial, kind="snapshot", params={"reason": reason})


def request_restore(ctx: Ctx, *, serial: str, reason: str) -> str:
    """System restore: the pre-upgrade program (``previous``) and the latest verified backup.

    Raises:
        NotFound: no such machine, no enrolled IPC, or no verified backup of the machine.
        Conflict: a restore is already open.
    """
    machine = fleet.get_machine(ctx.session, serial=serial)
    params = {
        "reason": reason,
        "program": "previous",
        "backup": _latest_backup(ctx.session, machine_id=machine.id, serial=serial),
    }
    return _queue(ctx, serial=serial, kind="restore", params=params)


def request_reinstall(ctx: Ctx, library: SopLibrary, *, serial: str) -> str:
    """Install the machine's last deployed release again (fresh unpack, same version).

    The action runs the upgrade's steps; when the machine's chart 2 instance is still
    running, the steps are reported to it, otherwise the reinstall is device evidence only
    (``library`` is the SOP library chart 2 runs on).

    Raises:
        NotFound: no such machine, no enrolled IPC, or no release was ever deployed to it.
        Conflict: a reinstall is already open.
    """
    del library  # the instance is reused, never started, by a reinstall
    machine = fleet.get_machine(ctx.session, serial=serial)
    devices._device_of(ctx.session, serial=serial)
    last = ctx.session.scalar(
        select(DeviceAction)
        .where(
            DeviceAction.machine_id == machine.id,
            DeviceAction.kind.in_(("upgrade", "reinstall")),
            DeviceAction.release_id.is_not(None),
        )
        .order_by(DeviceAction.status != "succeeded", DeviceAction.id.desc())
        .limit(1)
    )
    if last is None or last.release_id is None:
        raise NotFound(f"machine {serial} has no deployed release to reinstall; deploy one")
    release = releases.get_by_id(ctx.session, release_id=last.release_id)
    instance = upgrades.active_upgrade(ctx.session, machine_id=machine.id)
    return _queue(
        ctx,
        serial=serial,
        kind="reinstall",
        params={"reinstall": True, "version": release.version},
        release_id=release.id,
        instance_id=instance.id if instance is not None else None,
        network=dict(last.network),
        platform_hint=last.platform_hint,
    )


def swap_spare(ctx: Ctx, *, serial: str, reason: str) -> str:
    """Move the machine to a spare IPC: old credential revoked, data restored on the spare.

    Returns:
        A one-time enrollment token for the spare (shown once).

    Raises:
        NotFound: no such machine, no enrolled IPC, or no verified backup of the machine.
        Conflict: a restore is already open.
    """
    machine = fleet.get_machine(ctx.session, serial=serial)
    backup = _latest_backup(ctx.session, machine_id=machine.id, serial=serial)
    device = devices._device_of(ctx.session, serial=serial)
    _refuse_open(ctx.session, machine_id=machine.id, kind="restore", serial=serial)
    before = audit_snapshot(device)
    device.revoked = True
    ctx.audit("revoke", device, before, note=f"spare swap: {reason}")
    token = devices.create_enrollment_token(ctx, serial=serial)
    _queue(
        ctx,
        serial=serial,
        kind="restore",
        params={"reason": reason, "program": "keep", "spare": True, "backup": backup},
    )
    return token


def action_state(session: Session, *, action_id: str) -> RemoteState:
    """The status and reported evidence of action ``act-N``.

    Raises:
        NotFound: no such action.
    """
    number = devices.parse_id("act", action_id)
    action = session.get(DeviceAction, number) if number is not None else None
    if action is None:
        raise NotFound(f"no action {action_id}")
    return RemoteState(
        action_id=devices.public_id("act", action.id),
        kind=action.kind,
        status=action.status,
        evidence=dict(action.evidence or {}),
    )


def machine_backup_blob(session: Session, *, caller: devices.DeviceCaller, sha256: str) -> bool:
    """Whether ``sha256`` is a verified backup of the caller's machine (any IPC it had)."""
    found = session.scalar(
        select(BackupUpload.id)
        .join(DeviceAction, BackupUpload.action_id == DeviceAction.id)
        .where(
            DeviceAction.machine_id == caller.machine_id,
            BackupUpload.blob_sha256 == sha256,
            BackupUpload.complete.is_(True),
        )
        .limit(1)
    )
    return found is not None


def _queue(
    ctx: Ctx,
    *,
    serial: str,
    kind: str,
    params: dict[str, Any],
    release_id: int | None = None,
    instance_id: int | None = None,
    network: dict[str, Any] | None = None,
    platform_hint: str = "default",
) -> str:
    machine = fleet.get_machine(ctx.session, serial=serial)
    devices._device_of(ctx.session, serial=serial)
    _refuse_open(ctx.session, machine_id=machine.id, kind=kind, serial=serial)
    action = DeviceAction(
        machine_id=machine.id,
        instance_id=instance_id,
        release_id=release_id,
        kind=kind,
        status="queued",
        created_at=ctx.now(),
        updated_at=ctx.now(),
        network=network or {},
        platform_hint=platform_hint,
        params=params,
        evidence={},
    )
    ctx.session.add(action)
    ctx.session.flush()
    devices._bump(ctx.session, machine_id=machine.id)
    ctx.audit("create", action, None, note=f"{kind} for {serial}")
    return devices.public_id("act", action.id)


def _refuse_open(session: Session, *, machine_id: int, kind: str, serial: str) -> None:
    busy = session.scalar(
        select(DeviceAction.id).where(
            DeviceAction.machine_id == machine_id,
            DeviceAction.kind == kind,
            DeviceAction.status.in_(devices.OPEN_STATUSES),
        )
    )
    if busy is not None:
        raise Conflict(
            f"machine {serial} already has a {kind} action open ({devices.public_id('act', busy)})"
        )


def _latest_backup(session: Session, *, machine_id: int, serial: str) -> dict[str, Any]:
    upload = session.scalar(
        select(BackupUpload)
        .join(DeviceAction, BackupUpload.action_id == DeviceAction.id)
        .where(
            DeviceAction.machine_id == machine_id,
            BackupUpload.complete.is_(True),
            BackupUpload.blob_sha256.is_not(None),
        )
        .order_by(BackupUpload.id.desc())
        .limit(1)
    )
    if upload is None:
        raise NotFound(
            f"machine {serial} has no verified backup to restore from; take a snapshot first"
        )
    return {
        "backup_id": devices.public_id("bk", upload.id),
        "sha256": upload.blob_sha256,
        "size": upload.size,
        "manifest": upload.manifest,
    }


def is_remote(action: DeviceAction) -> bool:
    """Whether the action is one of the remote kinds (no release, no chart 2 steps)."""
    return action.kind in REMOTE_FINAL_STEP
