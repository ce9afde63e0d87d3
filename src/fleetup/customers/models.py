"""Tables of the customer's side: site visits and their notices, acceptances, surveys.

A ``SiteVisit`` is one planned visit of a technician to one machine; its advance notice and
its reminder are planned send times on the same row, sent by the worker when due. A survey
is one round of chart 5's question (a new round after each retest), answered once through a
signed link whose nonce lives here, so a used or expired link is refused from the database
and not only from the signature. The acceptance keeps the signature image as base64 text:
the audit trail stores its SHA-256 (``__audit_digest__``) and the row names it as well.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetup.core.audit import audited
from fleetup.core.db import Base, UTCDateTime


@audited
class SiteVisit(Base):
    """A technician's planned visit to a machine, with the customer's notice about it."""

    __tablename__ = "site_visits"
    # The worker asks at every look whether a notice or a reminder is due: found by range.
    __table_args__ = (
        Index("ix_site_visits_notice_due", "status", "notice_due_at"),
        Index("ix_site_visits_reminder_due", "status", "reminder_sent_at", "reminder_due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    technician: Mapped[str] = mapped_column(String(64), default="", index=True)
    visit_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    visit_end: Mapped[datetime] = mapped_column(UTCDateTime())
    expected_minutes: Mapped[int] = mapped_column(Integer)
    # planned -> notified (advance notice out) -> reminded; superseded when rescheduled.
    status: Mapped[str] = mapped_column(String(16), index=True)
    notice_due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    notice_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reminder_due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # "" until the customer answers: "confirmed" or "another_date".
    answer: Mapped[str] = mapped_column(String(16), default="")
    answer_note: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@audited
class Acceptance(Base):
    """The customer's signature accepting a machine's upgrade (chart 2 step T)."""

    __tablename__ = "acceptances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("sop_instances.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    signer_name: Mapped[str] = mapped_column(String(100))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signed_via: Mapped[str] = mapped_column(String(16))
    # What was accepted: each machine's serial, model, program version and test results.
    machines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    signature_b64: Mapped[str] = mapped_column(Text)
    signature_sha256: Mapped[str] = mapped_column(String(64))
    signature_bytes: Mapped[int] = mapped_column(Integer)

    __audit_digest__: ClassVar[frozenset[str]] = frozenset({"signature_b64"})


@audited
class Survey(Base):
    """One round of the satisfaction survey of a machine's chart 5 instance."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("sop_instances.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    nonce: Mapped[str] = mapped_column(String(32), unique=True)
    # open -> answered; an open survey past ``expires_at`` is refused and can be reissued.
    status: Mapped[str] = mapped_column(String(16), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")


@audited
class SurveyFollowUp(Base):
    """Work chart 5 asks for after a score: understanding, improvement, retest, follow-up."""

    __tablename__ = "survey_follow_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("sop_instances.id"), index=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    # understanding (G), improvement (H), retest (I), support (J), periodic (K).
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(64), default="")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
