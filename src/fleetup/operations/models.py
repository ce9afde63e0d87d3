"""Tables of operations: problems and their playbook steps, alerts and silences, incidents with
their timelines and post-incident tasks.

A problem runs as a chart 4 instance and an incident as a chart 6 instance (the system path
from A, or the data-anomaly runbook from I); these rows keep what the chart does not: who was
told, when the promise falls due, what the monitoring saw.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetup.core.audit import audited
from fleetup.core.db import Base, UTCDateTime


@audited
class Problem(Base):
    """A problem found on a machine (chart 4), linked to the upgrade step where it arose."""

    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    # network | hardware | software | user (chart 4's decision B)
    type: Mapped[str] = mapped_column(String(16))
    # open -> solved (G) -> closed (H confirmed, I)
    status: Mapped[str] = mapped_column(String(16), index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="technician")
    instance_id: Mapped[int] = mapped_column(ForeignKey("sop_instances.id"), index=True)
    upgrade_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("sop_instances.id"), nullable=True
    )
    upgrade_node: Mapped[str] = mapped_column(String(64), default="")
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@audited
class ProblemStep(Base):
    """One playbook step of a problem: what was asked of the device or person, and its evidence."""

    __tablename__ = "problem_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_id: Mapped[int] = mapped_column(
        ForeignKey("problems.id", ondelete="CASCADE"), index=True
    )
    node: Mapped[str] = mapped_column(String(8))
    # requested (a device action is running) | done | failed | skipped
    status: Mapped[str] = mapped_column(String(16))
    action_id: Mapped[str] = mapped_column(String(32), default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


@audited
class Alert(Base):
    """What a monitoring rule found about a subject; the same rule and subject stay one alert."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # heartbeat_missing | site_offline | wave_failure_spike | data_anomaly
    rule: Mapped[str] = mapped_column(String(32), index=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    site: Mapped[str] = mapped_column(String(80), default="")
    # open | muted | resolved
    status: Mapped[str] = mapped_column(String(16), index=True)
    # why a muted alert is muted: "site:<alert id>" or "silence:<id>"
    muted_by: Mapped[str] = mapped_column(String(32), default="")
    count: Mapped[int] = mapped_column(Integer, default=1)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)


@audited
class Silence(Base):
    """Mutes alerts of one rule and/or subject until a time (empty fields match anything)."""

    __tablename__ = "alert_silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(32), default="")
    subject_ref: Mapped[str] = mapped_column(String(64), default="")
    until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@audited
class Incident(Base):
    """An emergency (chart 6): the system path (kind ``system``) or the data runbook (``data``)."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    site: Mapped[str] = mapped_column(String(80), default="", index=True)
    # detected, acknowledged, diagnosing, fixing, recovered, review, closed
    state: Mapped[str] = mapped_column(String(16), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("sop_instances.id"), nullable=True)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(200), default="")
    # how many escalations went out; the next one is due at next_escalation_at
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True, index=True
    )
    root_cause: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@audited
class IncidentEntry(Base):
    """One line of an incident's timeline: an alert, a notification, an action, a state."""

    __tablename__ = "incident_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # alert, notified, escalated, acknowledged, state, action, runbook, review, note
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@audited
class ReviewTask(Base):
    """A prevention task from a post-incident review, with its owner and due date."""

    __tablename__ = "incident_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    owner: Mapped[str] = mapped_column(String(64))
    due_on: Mapped[date] = mapped_column(Date)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
