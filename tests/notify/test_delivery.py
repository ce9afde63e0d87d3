"""Delivery through real Apprise to a real HTTP receiver, with retries on a manual clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from notify_helpers import Receiver, free_port
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.notify import delivery
from fleetup.notify import service as notify
from fleetup.notify.models import Notification


def _send(parts: Server, key: str, to: list[str], **params: str) -> int:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        queued = notify.send(
            ctx,
            template="test_message",
            key=key,
            to=to,
            params={"username": "amy", "sent_at": "now", **params},
        )
        session.commit()
    return queued


def _rows(parts: Server) -> list[Notification]:
    with parts.sessions() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def test_messages_reach_a_webhook_exactly_once_after_it_was_down(
    parts: Server, clock: ManualClock, person: Callable[..., str]
) -> None:
    receiver = Receiver(free_port())
    person("amy", url=receiver.url, language="en")
    for n in range(3):
        assert _send(parts, f"event-{n}", ["user:amy"]) == 1

    assert delivery.deliver_due(parts) == 0  # connection refused
    rows = _rows(parts)
    assert [(r.status, r.attempts) for r in rows] == [("queued", 1)] * 3
    assert all(r.next_attempt_at == clock.now() + timedelta(seconds=10) for r in rows)
    assert all(r.last_error for r in rows)
    assert all(receiver.url not in r.last_error for r in rows)

    clock.advance(timedelta(seconds=9))
    assert delivery.deliver_due(parts) == 0
    assert [r.attempts for r in _rows(parts)] == [1, 1, 1]  # not due yet

    clock.advance(timedelta(seconds=1))
    assert delivery.deliver_due(parts) == 0
    rows = _rows(parts)
    assert [r.attempts for r in rows] == [2, 2, 2]
    assert all(r.next_attempt_at == clock.now() + timedelta(seconds=20) for r in rows)

    receiver.start()
    try:
        clock.advance(timedelta(seconds=20))
        assert delivery.deliver_due(parts) == 3
        clock.advance(timedelta(minutes=30))
        assert delivery.deliver_due(parts) == 0
        assert receiver.titles() == ["[fleetup] Test message"] * 3
        rows = _rows(parts)
        assert [(r.status, r.attempts, r.last_error) for r in rows] == [("delivered", 3, "")] * 3
        assert all(r.delivered_at == clock.now() - timedelta(minutes=30) for r in rows)
    finally:
        receiver.stop()


def test_backoff_doubles_up_to_the_cap(parts: Server) -> None:
    waits = [delivery.backoff(parts.settings, n).total_seconds() for n in range(1, 9)]
    assert waits == [10, 20, 40, 80, 160, 320, 600, 600]


def test_a_message_undelivered_for_a_day_fails_for_good(
    parts: Server, clock: ManualClock, person: Callable[..., str]
) -> None:
    receiver = Receiver(free_port())  # never started
    person("amy", url=receiver.url)
    _send(parts, "event-1", ["user:amy"])
    attempts = 0
    while _rows(parts)[0].status == "queued":
        delivery.deliver_due(parts)
        attempts += 1
        clock.advance(timedelta(minutes=10))
    row = _rows(parts)[0]
    assert row.status == "failed"
    assert row.attempts == attempts
    assert 140 <= attempts <= 150  # every 10 minutes, after the first few, for 24 hours
    assert row.delivered_at is None


def test_each_subscriber_reads_their_own_language(
    parts: Server, person: Callable[..., str]
) -> None:
    receiver = Receiver(free_port())
    person("amy", url=receiver.url + "?lang=en", language="en")
    person("bo", url=receiver.url + "?lang=zh", language="zh-TW")
    assert _send(parts, "event-1", ["role:on_call"]) == 2
    receiver.start()
    try:
        assert delivery.deliver_due(parts) == 2
    finally:
        receiver.stop()
    assert receiver.titles() == ["[fleetup] Test message", "[fleetup] 測試訊息"]
