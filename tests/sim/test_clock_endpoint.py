"""The simulated clock: only on a simulated-clock server, only for admins, only forwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetup.api.app import build_server, create_app
from fleetup.api.deps import Server
from fleetup.core.clock import SystemClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.notify import service as notify
from fleetup.notify.inbox import SimulatedInbox
from fleetup.notify.models import Notification
from support import Account


def test_clock_moves_forward_for_an_admin(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    admin = make_account(Role.admin)
    answer = client.post(
        "/api/v1/simulation/clock", json={"now": "2026-03-09T08:00:00Z"}, headers=admin.headers
    )
    assert answer.status_code == 200, answer.text
    read = client.get("/api/v1/simulation/clock", headers=admin.headers)
    assert read.json()["now"].startswith("2026-03-09T08:00:00")


def test_clock_never_goes_back(client: TestClient, make_account: Callable[..., Account]) -> None:
    admin = make_account(Role.admin)
    client.post(
        "/api/v1/simulation/clock", json={"now": "2026-03-09T08:00:00Z"}, headers=admin.headers
    )
    answer = client.post(
        "/api/v1/simulation/clock", json={"now": "2026-03-05T08:00:00Z"}, headers=admin.headers
    )
    assert answer.status_code == 409
    read = client.get("/api/v1/simulation/clock", headers=admin.headers)
    assert read.json()["now"].startswith("2026-03-09T08:00:00")


@pytest.mark.parametrize("role", [Role.manager, Role.technician, Role.viewer])
def test_clock_is_for_admins_only(
    client: TestClient, make_account: Callable[..., Account], role: Role
) -> None:
    caller = make_account(role)
    answer = client.post(
        "/api/v1/simulation/clock", json={"now": "2026-03-09T08:00:00Z"}, headers=caller.headers
    )
    assert answer.status_code == 403
    assert client.get("/api/v1/simulation/clock").status_code == 401


@pytest.fixture
def wall_clock_client(settings: Settings) -> Iterator[TestClient]:
    parts = build_server(settings, SystemClock())
    with TestClient(create_app(parts)) as test_client:
        yield test_client
    parts.engine.dispose()


def test_clock_is_absent_on_a_wall_clock_server(
    wall_clock_client: TestClient, make_account: Callable[..., Account]
) -> None:
    admin = make_account(Role.admin)
    now = datetime(2030, 1, 1, tzinfo=UTC).isoformat()
    moved = wall_clock_client.post(
        "/api/v1/simulation/clock", json={"now": now}, headers=admin.headers
    )
    assert moved.status_code == 404
    assert (
        wall_clock_client.get("/api/v1/simulation/clock", headers=admin.headers).status_code == 404
    )


def test_a_move_hands_over_what_the_simulated_server_delivered(
    server_parts: Server, client: TestClient, make_account: Callable[..., Account]
) -> None:
    server_parts.inbox = SimulatedInbox()
    admin = make_account(Role.admin)
    with server_parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=server_parts.clock)
        notify.send(
            ctx,
            template="test_message",
            key="inbox-1",
            to=["url:json://simulator.invalid/someone"],
            params={"username": admin.username, "sent_at": "2026-03-02 09:00"},
        )
        session.commit()
    moved = client.post(
        "/api/v1/simulation/clock", json={"now": "2026-03-02T02:00:00Z"}, headers=admin.headers
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert [m["url"] for m in body["messages"]] == ["json://simulator.invalid/someone"]
    assert body["woken"] == []
    with server_parts.sessions() as session:
        statuses = session.scalars(select(Notification.status)).all()
    assert statuses == ["delivered"]  # delivered to the inbox, not sent anywhere
    again = client.post(
        "/api/v1/simulation/clock", json={"now": "2026-03-02T03:00:00Z"}, headers=admin.headers
    )
    assert again.json()["messages"] == [] and again.json()["woken"] == []
