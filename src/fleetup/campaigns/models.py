"""Tables of the campaign: chart 1 made concrete for one fleet.

A campaign is created from chart 1 of the SOP: its phases (B-F) and their activities become
tracked rows with planned weeks; the migration activities that move machines (D1, D2, E1-E3)
also become waves, whose members are machines; E4 is the old system's shutdown. Gate events
keep every decision about a wave (opened, paused, approved, resumed, aborted, retried), and
visits are the technicians' planned and actual time at each machine.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import UniqueConstraint as Unique
from sqlalchemy.orm import Mapped, mapped_column

from fleetup.core.audit import audited
from fleetup.core.db import Base, UTCDateTime


@audited
class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    release_version: Mapped[str] = mapped_column(String(64))
    starts_on: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Taipei")
    # draft -> running -> completed (or aborted)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # The planning rules for technicians' days (see campaigns/schedule.py).
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    shutdown_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    shutdown_by: Mapped[str] = mapped_column(String(100), default="")
    shutdown_archive: Mapped[str] = mapped_column(String(500), default="")
    shutdown_note: Mapped[str] = mapped_column(Text, default="")


@audited
class Phase(Base):
    __tablename__ = "campaign_phases"
    __table_args__ = (Unique("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    code: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    title_zh_tw: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    first_week: Mapped[int] = mapped_column(Integer)
    last_week: Mapped[int] = mapped_column(Integer)
    actual_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    actual_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@audited
class Activity(Base):
    __tablename__ = "campaign_activities"
    __table_args__ = (Unique("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("campaign_phases.id"), index=True)
    code: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    title_zh_tw: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    performer: Mapped[str] = mapped_column(String(32), default="manager")
    owner: Mapped[str] = mapped_column(String(100), default="")
    # todo -> doing -> done
    status: Mapped[str] = mapped_column(String(8), default="todo")
    first_week: Mapped[int] = mapped_column(Integer)
    last_week: Mapped[int] = mapped_column(Integer)
    actual_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    actual_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


@audited
class Wave(Base):
    """A batch of machines upgraded together, behind a gate.

    ``selection`` says which machines it takes (``{"kind": "count", "count": 20}``, a
    ``percent`` of the fleet, a ``filter`` on customer, site and model, or the ``rest``).
    ``gate`` holds the thresholds (see campaigns/gates.py). ``gate_state`` is ``closed``
    until the wave's results let the next wave go (``open``) or wait for a manager
    (``awaiting_approval``). ``accepted_failures`` is the failure count a manager resumed
    with: the error threshold counts only failures after it.
    """

    __tablename__ = "campaign_waves"
    __table_args__ = (Unique("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    code: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    title_zh_tw: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    selection: Mapped[dict[str, Any]] = mapped_column(JSON)
    planned_start: Mapped[datetime] = mapped_column(UTCDateTime())
    # planned -> running <-> paused -> completed | aborted
    status: Mapped[str] = mapped_column(String(16), default="planned", index=True)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON)
    gate_state: Mapped[str] = mapped_column(String(24), default="closed")
    accepted_failures: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")


class WaveMember(Base):
    """A machine in a wave. Not audited row by row: its status follows the machine's device
    action and upgrade (both audited); joining and retrying are audited as gate events."""

    __tablename__ = "campaign_wave_members"
    # A wave's counts (the gate, the dashboard, the watch) read the second index alone.
    __table_args__ = (
        Unique("wave_id", "machine_id"),
        Index("ix_campaign_wave_members_wave_id_status", "wave_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("campaign_waves.id"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    # pending -> scheduled -> running -> succeeded | failed; held while the wave is paused;
    # cancelled when the wave is aborted; unplanned when no visit fits the windows.
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Indexed: the worker finds the members whose action or upgrade changed by these.
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_actions.id"), nullable=True, index=True
    )
    instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("sop_instances.id"), nullable=True, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


@audited
class GateEvent(Base):
    __tablename__ = "campaign_gate_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("campaign_waves.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(100))
    # started, opened, awaiting_approval, approved, paused, resumed, aborted, retried,
    # joined, completed
    kind: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@audited
class Visit(Base):
    """A technician's planned time at one machine, and what really happened."""

    __tablename__ = "campaign_visits"
    # A technician's plan (their visits of a campaign, by start) read without the others'.
    __table_args__ = (
        Index("ix_campaign_visits_technician_plan", "campaign_id", "technician", "planned_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("campaign_waves.id"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    technician: Mapped[str] = mapped_column(String(100), index=True)
    planned_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    planned_end: Mapped[datetime] = mapped_column(UTCDateTime())
    travel_minutes: Mapped[float] = mapped_column(Float, default=0)
    actual_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    actual_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # planned -> in_progress -> done; cancelled when the wave is aborted
    status: Mapped[str] = mapped_column(String(16), default="planned")
