"""Backups arriving from devices in chunks, resumable, verified before they are kept.

Bytes are appended to ``<blob_dir>/uploads/bk-N.part``; a chunk must start exactly where the
server's copy ends (else ``OffsetMismatch`` with what it holds, so the agent continues from
there and no byte is sent twice). ``complete`` hashes the whole file and, when it is what the
device announced, moves it into the blob store under its sha256.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, PermissionDenied
from fleetup.devices.models import BackupUpload
from fleetup.devices.schemas import BackupIn, BackupStatus
from fleetup.devices.service import DeviceCaller, own_action, parse_id, public_id
from fleetup.releases.blobs import BlobStore, file_sha256

MAX_BACKUP_BYTES = 64 * 1024**3


class OffsetMismatch(Conflict):
    """A chunk that does not start where the server's copy ends; carries ``received``."""

    def __init__(self, received: int) -> None:
        super().__init__(f"the server holds {received} bytes; send from there")
        self.received = received


def _status(upload: BackupUpload) -> BackupStatus:
    return BackupStatus(
        backup_id=public_id("bk", upload.id), received=upload.received, complete=upload.complete
    )


def _part(upload_dir: Path, upload: BackupUpload) -> Path:
    return upload_dir / f"bk-{upload.id}.part"


def create(ctx: Ctx, *, caller: DeviceCaller, data: BackupIn) -> BackupStatus:
    """Start (or find again) the upload of one archive for one of the device's actions."""
    action = own_action(ctx.session, caller=caller, action_id=data.action_id)
    if data.size > MAX_BACKUP_BYTES:
        raise InvalidInput(
            "the backup is too large", [FieldProblem("size", f"at most {MAX_BACKUP_BYTES}")]
        )
    found = ctx.session.scalar(
        select(BackupUpload).where(
            BackupUpload.action_id == action.id, BackupUpload.sha256 == data.sha256
        )
    )
    if found is not None:
        return _status(found)
    upload = BackupUpload(
        device_id=caller.id,
        action_id=action.id,
        sha256=data.sha256,
        size=data.size,
        received=0,
        complete=False,
        manifest=data.manifest,
        created_at=ctx.now(),
    )
    ctx.session.add(upload)
    ctx.audit("create", upload, None)
    return _status(upload)


def own(
    session: Session, *, caller: DeviceCaller, backup_id: str, lock: bool = False
) -> BackupUpload:
    """The device's own backup upload ``bk-N``.

    Raises:
        PermissionDenied: not this device's (or no such upload).
    """
    number = parse_id("bk", backup_id)
    query = select(BackupUpload).where(BackupUpload.id == (number or 0))
    upload = session.scalar(query.with_for_update() if lock else query)
    if upload is None or upload.device_id != caller.id:
        raise PermissionDenied(f"backup {backup_id} is not this device's")
    return upload


def status(session: Session, *, caller: DeviceCaller, backup_id: str) -> BackupStatus:
    return _status(own(session, caller=caller, backup_id=backup_id))


def append(
    ctx: Ctx, *, caller: DeviceCaller, backup_id: str, offset: int, chunk: bytes, upload_dir: Path
) -> BackupStatus:
    """Append ``chunk`` at ``offset``.

    Raises:
        OffsetMismatch: ``offset`` is not what the server holds (HTTP 409 with ``received``).
        InvalidInput: the chunk would pass the announced size.
    """
    upload = own(ctx.session, caller=caller, backup_id=backup_id, lock=True)
    if upload.complete or offset != upload.received:
        raise OffsetMismatch(upload.received)
    if upload.received + len(chunk) > upload.size:
        raise InvalidInput(
            "the chunk goes past the announced size",
            [FieldProblem("offset", f"the backup is {upload.size} bytes")],
        )
    upload_dir.mkdir(parents=True, exist_ok=True)
    part = _part(upload_dir, upload)
    with part.open("ab") as handle:
        # A chunk written before a crash that never reached the database is cut off again.
        handle.truncate(upload.received)
        handle.seek(upload.received)
        handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    upload.received += len(chunk)
    return _status(upload)


def complete(
    ctx: Ctx, *, caller: DeviceCaller, backup_id: str, store: BlobStore, upload_dir: Path
) -> BackupStatus:
    """Verify the received archive's sha256 and keep it in the blob store.

    Raises:
        InvalidInput: incomplete, or the bytes do not hash to the announced sha256 (422).
    """
    upload = own(ctx.session, caller=caller, backup_id=backup_id, lock=True)
    if upload.complete:
        return _status(upload)
    part = _part(upload_dir, upload)
    if upload.received != upload.size or not part.is_file():
        raise InvalidInput(
            f"the backup has {upload.received} of {upload.size} bytes",
            [FieldProblem("received", "send the rest first")],
        )
    info = file_sha256(part)
    if info.sha256 != upload.sha256:
        part.unlink()
        upload.received = 0
        raise InvalidInput(
            "the received backup does not match its sha256; upload it again",
            [FieldProblem("sha256", f"received bytes hash to {info.sha256}")],
        )
    store.add_file(part, move=True)
    upload.complete = True
    upload.blob_sha256 = info.sha256
    ctx.audit("complete", upload, None)
    return _status(upload)
