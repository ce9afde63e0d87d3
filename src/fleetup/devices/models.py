"""The IPCs the server talks to, what it asks them to do, and what they report.

Credentials and enrollment tokens are stored as SHA-256 digests only. ``Device.changes``
grows whenever one of the device's actions is queued or changes status; the ETag of
``actions/next`` is derived from it, so a poll that finds nothing new reads one row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleetup.core.audit import audited
from fleetup.core.db import Base, UTCDateTime

#: Remote action kinds (devices/remote.py) and the step whose ``succeeded`` report ends each.
REMOTE_FINAL_STEP: dict[str, str] = {
    "diagnose": "diagnose",
    "fallback": "switch_network",
    "snapshot": "snapshot",
    "restore": "restore",
}


class Device(Base):
    """One enrolled IPC. Not in the audit registry: heartbeats change it every minute;
    enrollment, revocation and registration are audited as events."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), unique=True)
    credential_digest: Mapped[str] = mapped_column(String(64), unique=True)
    platform_credential_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    link: Mapped[str] = mapped_column(String(16), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    hardware: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    health: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The last health report names anomalies or a problem (``reports_something``): the
    # heartbeat watch finds such devices through this index, not by reading every report.
    reporting: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), index=True
    )
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    changes: Mapped[int] = mapped_column(Integer, default=0)


@audited
class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@audited
class DeviceAction(Base):
    """Something the machine's IPC is asked to do.

    ``upgrade`` and ``reinstall`` carry a release and their chart 2 instance; the remote
    actions of devices/remote.py (``diagnose``, ``fallback``, ``snapshot``, ``restore``) carry
    neither, only ``params``, and keep what the agent reported in ``evidence``.

    Held by machine, not by device: a deployment may be queued before the IPC enrolls, and
    a re-enrolled IPC (a replaced one) finds it all the same.
    """

    __tablename__ = "device_actions"
    # The campaign worker finds the queued actions whose install window closed in the second
    # index alone, however many actions are queued.
    __table_args__ = (Index("ix_device_actions_status_not_after", "status", "not_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("sop_instances.id"), index=True, nullable=True
    )
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="upgrade")
    # queued -> running -> succeeded | failed | rolled_back
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    network: Mapped[dict[str, Any]] = mapped_column(JSON)
    platform_hint: Mapped[str] = mapped_column(String(64), default="default")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")


class DeviceEvent(Base):
    """One step report, kept as sent; ``event_id`` makes a repeated report a no-op."""

    __tablename__ = "device_events"
    __table_args__ = (UniqueConstraint("device_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("device_actions.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the SOP instance made of it: the events posted, or why none could be.
    sop_note: Mapped[str] = mapped_column(Text, default="")


class BackupUpload(Base):
    """A backup archive arriving in chunks; ``blob_sha256`` is set once it is verified."""

    __tablename__ = "backup_uploads"
    __table_args__ = (UniqueConstraint("action_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("device_actions.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    blob_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
