"""A simulated server killed and started again: its clock, jobs and inbox go on where they were."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetup.api.app import build_server, create_app
from fleetup.api.deps import Server
from fleetup.cli.serve import resume_clock
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.notify import delivery
from fleetup.notify import service as notify
from fleetup.notify.inbox import SimulatedInbox
from fleetup.notify.models import Notification
from support import Account

FIRST_DAY = datetime(2026, 3, 2, tzinfo=UTC)
CLOCK = "/api/v1/simulation/clock"


@contextmanager
def simulated_server(settings: Settings, start: datetime = FIRST_DAY) -> Iterator[Server]:
    """A fresh server process, as ``fleetup serve --simulated-clock`` makes it."""
    parts = build_server(settings, ManualClock(start), inbox=SimulatedInbox())
    resume_clock(parts)
    try:
        yield parts
    finally:
        parts.engine.dispose()


def _queue_message(parts: Server, key: str) -> None:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        notify.send(
            ctx,
            template="test_message",
            key=key,
            to=["url:json://simulator.invalid/someone"],
            params={"username": "someone", "sent_at": "2026-03-02 09:00"},
        )
        session.commit()


def _move(parts: Server, admin: Account, now: str, after: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"now": now} | ({"after": after} if after is not None else {})
    with TestClient(create_app(parts)) as client:
        answer = client.post(CLOCK, json=body, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_a_server_started_again_resumes_the_clock_where_it_was(
    settings: Settings, make_account: Callable[..., Account]
) -> None:
    admin = make_account(Role.admin)
    with simulated_server(settings) as first:
        _move(first, admin, "2026-04-20T08:00:00Z")
    with simulated_server(settings) as again:
        assert again.clock.now() == datetime(2026, 4, 20, 8, tzinfo=UTC)
    later = datetime(2026, 6, 1, tzinfo=UTC)
    with simulated_server(settings, later) as told_later:
        assert told_later.clock.now() == later  # a later --simulated-clock wins


def test_a_move_sent_again_hands_over_the_same_deliveries_once_delivered(
    settings: Settings, make_account: Callable[..., Account]
) -> None:
    admin = make_account(Role.admin)
    with simulated_server(settings) as parts:
        _queue_message(parts, "restart-1")
        first = _move(parts, admin, "2026-03-02T02:00:00Z", after=0)
    with simulated_server(settings) as restarted:  # the first answer was lost with the process
        again = _move(restarted, admin, "2026-03-02T02:00:00Z", after=0)
        with restarted.sessions() as session:
            statuses = session.scalars(select(Notification.status)).all()
    assert first["messages"] == again["messages"]
    assert [m["url"] for m in again["messages"]] == ["json://simulator.invalid/someone"]
    assert again["cursor"] == first["cursor"]
    assert statuses == ["delivered"]
    assert again["jobs"] == {}  # every job had run at that moment; none runs twice


def test_a_delivery_claimed_by_a_killed_server_goes_out_at_the_same_moment(
    settings: Settings, make_account: Callable[..., Account]
) -> None:
    admin = make_account(Role.admin)
    with simulated_server(settings) as dying:
        _queue_message(dying, "restart-2")
        assert isinstance(dying.clock, ManualClock)
        dying.clock.set(datetime(2026, 3, 2, 2, tzinfo=UTC))
        assert delivery.claim(dying)  # claimed, then the process is killed before sending
    with simulated_server(settings) as restarted:
        moved = _move(restarted, admin, "2026-03-02T02:00:00Z", after=0)
        with restarted.sessions() as session:
            row = session.scalars(select(Notification)).one()
    assert [m["title"] for m in moved["messages"]] == [row.subject]
    assert (row.status, row.attempts) == ("delivered", 1)
    assert row.delivered_at == datetime(2026, 3, 2, 2, tzinfo=UTC)


def test_without_a_position_a_move_hands_over_what_came_since_the_last_answer(
    server_parts: Server, make_account: Callable[..., Account]
) -> None:
    server_parts.inbox = SimulatedInbox()
    admin = make_account(Role.admin)
    _queue_message(server_parts, "restart-3")
    with TestClient(create_app(server_parts)) as client:
        moves = [
            client.post(CLOCK, json={"now": now}, headers=admin.headers).json()
            for now in ("2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z")
        ]
        read = client.get(CLOCK, headers=admin.headers).json()
    assert len(moves[0]["messages"]) == 1 and moves[1]["messages"] == []
    assert moves[1]["cursor"] == moves[0]["cursor"] == read["cursor"] >= 1
