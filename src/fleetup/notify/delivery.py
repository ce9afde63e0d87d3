"""The worker's side of notify: deliver due notifications and publish device wake-ups.

Claiming is a short transaction that moves each claimed row's ``next_attempt_at`` a lease
ahead and counts the attempt (on PostgreSQL with ``FOR UPDATE SKIP LOCKED``; SQLite serialises
writers anyway), so several workers never take the same row and no lock is held while a slow
channel answers. Sending happens outside any transaction; its outcome is written in another
short one. A worker that dies mid-send leaves the row to be claimed again when the lease runs
out, so a message is delivered at least once and, short of such a crash, exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Integer, bindparam, delete, select, update

from fleetup.core.config import Settings
from fleetup.core.db import ById, UTCDateTime, transaction
from fleetup.notify import service
from fleetup.notify.channels import (
    AppriseChannel,
    Channel,
    ChannelError,
    MqttPublisher,
    PermanentChannelError,
    WakePublisher,
)
from fleetup.notify.models import DELIVERED, FAILED, QUEUED, DeviceWakeup, Notification

if TYPE_CHECKING:
    from fleetup.api.deps import Server

log = logging.getLogger(__name__)

BATCH = 20

_channel_override: list[Channel] = []
_publisher_override: list[WakePublisher] = []


def use_channel(channel: Channel | None) -> None:
    """Send through ``channel`` instead of Apprise (None restores Apprise)."""
    _channel_override[:] = [channel] if channel is not None else []


def use_publisher(publisher: WakePublisher | None) -> None:
    """Publish wake-ups through ``publisher`` instead of MQTT (None restores MQTT)."""
    _publisher_override[:] = [publisher] if publisher is not None else []


def lease(settings: Settings) -> timedelta:
    """How long a claim holds a notification (``notify_lease_s``): longer than any one send
    can take (Apprise's timeouts), so a lease never runs out mid-send."""
    return timedelta(seconds=settings.notify_lease_s)


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2x base, 4x base ... capped."""
    seconds = settings.notify_retry_base_s * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.notify_retry_max_s))


def deliveries_pending(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """True when a notification is due at ``now`` (``deliver_due`` has work)."""
    return (
        select(Notification.id)
        .where(Notification.status == QUEUED, Notification.next_attempt_at <= now)
        .exists()
    )


def wakeups_pending(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """True when a wake-up waits to be published (``publish_wakeups`` has work)."""
    return select(DeviceWakeup.id).exists()


@dataclass(frozen=True)
class Claimed:
    """A notification taken for delivery: where it goes and what it says."""

    id: int
    url: str
    subject: str
    body: str


def claim(parts: Server, *, limit: int = BATCH) -> list[Claimed]:
    """Take up to ``limit`` due notifications for this worker, in id order."""
    now = parts.clock.now()
    with transaction(parts.sessions) as session:
        claimed = session.execute(
            _CLAIM, {"now": now, "lease_until": now + lease(parts.settings), "limit": limit}
        ).all()
    return sorted((Claimed(*row) for row in claimed), key=lambda taken: taken.id)


# Every look for due notifications claims with this: built once.
_NOW = bindparam("now", type_=UTCDateTime())
_CLAIM = (
    update(Notification)
    .where(
        Notification.id.in_(
            select(Notification.id)
            .where(Notification.status == QUEUED, Notification.next_attempt_at <= _NOW)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(bindparam("limit", type_=Integer))
            .with_for_update(skip_locked=True)
        )
    )
    .values(
        next_attempt_at=bindparam("lease_until", type_=UTCDateTime()),
        attempts=Notification.attempts + 1,
        last_attempt_at=_NOW,
    )
    .returning(Notification.id, Notification.channel_url, Notification.subject, Notification.body)
    .execution_options(synchronize_session=False)
)


def deliver_due(parts: Server, channel: Channel | None = None) -> int:
    """Send every due notification once; returns how many were delivered.

    A failed send is retried after ``backoff``; a notification still undelivered
    ``notify_max_age_s`` after it was queued, or whose URL can never work, fails for good.
    """
    sender = channel or (
        _channel_override[0] if _channel_override else parts.inbox or AppriseChannel()
    )
    delivered = 0
    while True:
        taken = claim(parts)
        for notification in taken:
            delivered += _deliver_one(parts, sender, notification)
        if len(taken) < BATCH:
            return delivered


def _deliver_one(parts: Server, sender: Channel, notification: Claimed) -> int:
    notification_id = notification.id
    error: ChannelError | None = None
    try:
        sender.send(notification.url, notification.subject, notification.body)
    except ChannelError as failure:
        error = failure
    except Exception as failure:  # a channel bug must not stop the other deliveries
        log.exception("notification %s: the channel raised", notification_id)
        error = ChannelError(f"unexpected {type(failure).__name__}")
    now = parts.clock.now()
    with transaction(parts.sessions) as session:
        row = _NOTIFICATION(session, notification_id)
        if row is None:
            return 0
        if error is None:
            row.status, row.delivered_at, row.last_error = DELIVERED, now, ""
            log.info("notification %s delivered to %s", row.id, row.channel_label)
            return 1
        row.last_error = str(error)[:500]
        too_old = now - row.created_at >= timedelta(seconds=parts.settings.notify_max_age_s)
        if isinstance(error, PermanentChannelError) or too_old:
            row.status = FAILED
            log.warning("notification %s to %s failed for good", row.id, row.channel_label)
        else:
            row.next_attempt_at = now + backoff(parts.settings, row.attempts)
            log.info("notification %s to %s: retry at %s", row.id, row.channel_label, now)
        return 0


_NOTIFICATION = ById(Notification)


def publish_wakeups(parts: Server, publisher: WakePublisher | None = None) -> int:
    """Publish every pending wake-up once (QoS 1); returns how many devices were woken.

    Wake-ups are hints: one that cannot be published is dropped with a log line, because the
    agent's own poll picks up the change anyway.
    """
    with transaction(parts.sessions) as session:
        pending = select(DeviceWakeup.id).with_for_update(skip_locked=True)
        device_ids = set(
            session.scalars(
                delete(DeviceWakeup)
                .where(DeviceWakeup.id.in_(pending))
                .returning(DeviceWakeup.device_id)
                .execution_options(synchronize_session=False)
            ).all()
        )
    if not device_ids:
        return 0
    topics = [service.wake_topic(device_id) for device_id in sorted(device_ids)]
    try:
        chosen = publisher or (_publisher_override[0] if _publisher_override else parts.inbox)
        if chosen is None:
            if not parts.settings.mqtt_url:
                return 0
            chosen = MqttPublisher(parts.settings.mqtt_url)
        chosen.publish(topics)
    except (ChannelError, ValueError) as error:
        log.warning("%d wake-ups not published: %s", len(topics), error)
        return 0
    return len(topics)
