"""Tables of notify: the outbox (one row per notification, recipient and channel), the
channels users subscribe with, and the device wake-ups waiting to be published.

Channel URLs carry secrets (bot tokens, webhook keys, mail passwords). They are kept, because
delivery needs them, but the audit trail stores only their SHA-256 and every screen, API answer
and log line shows ``channel_label``, a redacted form.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleetup.core.audit import audited
from fleetup.core.db import Base, UTCDateTime

QUEUED = "queued"
DELIVERED = "delivered"
FAILED = "failed"
NO_CHANNEL = "no_channel"
STATUSES = (QUEUED, DELIVERED, FAILED, NO_CHANNEL)


class Notification(Base):
    """One message to one recipient over one channel; the worker delivers it.

    Not ``@audited``: the worker updates attempts and outcome many times, and the row itself is
    the delivery log. Its creation is audited in the caller's transaction, with the URL and the
    body digested (a customer's message carries their signed link).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("key", "recipient", "channel", name="uq_notifications_key_recipient"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
    )
    __audit_digest__ = frozenset({"channel_url", "body"})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template: Mapped[str] = mapped_column(String(100), index=True)
    key: Mapped[str] = mapped_column(String(200))
    recipient: Mapped[str] = mapped_column(String(200), index=True)
    language: Mapped[str] = mapped_column(String(8))
    # SHA-256 of the channel URL ("" when the recipient has none): part of the unique key.
    channel: Mapped[str] = mapped_column(String(64))
    channel_label: Mapped[str] = mapped_column(String(200), default="")
    channel_url: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@audited
class Subscription(Base):
    """A channel a user receives notifications on, and the language they read them in."""

    __tablename__ = "notify_subscriptions"
    __table_args__ = (
        UniqueConstraint("user_id", "url_digest", name="uq_notify_subscriptions_url"),
    )
    __audit_digest__ = frozenset({"url"})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_digest: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeviceWakeup(Base):
    """A device whose actions changed; the worker publishes its MQTT wake-up and drops the row.

    Not audited: like the device's change counter, it is a hint, not a record. The agent polls
    on its own schedule anyway, so a wake-up lost in a crash only costs one poll interval.
    """

    __tablename__ = "device_wakeups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
