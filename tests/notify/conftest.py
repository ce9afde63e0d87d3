"""Fixtures for notification tests: server parts whose settings notify reads, and people."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.deps import Server
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.notify import delivery
from fleetup.notify import service as notify


@pytest.fixture
def parts(server_parts: Server) -> Iterator[Server]:
    notify.use_settings(server_parts.engine, server_parts.settings)
    yield server_parts
    delivery.use_channel(None)
    delivery.use_publisher(None)


@pytest.fixture
def person(parts: Server) -> Callable[..., str]:
    """``person("amy", Role.on_call, url=..., language="en")`` adds a user (and a channel)."""

    def make(
        username: str, role: Role = Role.on_call, *, url: str | None = None, language: str = "en"
    ) -> str:
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="test", clock=parts.clock)
            accounts.create_user(
                ctx, UserIn(username=username, password=f"{username}-password-1", role=role)
            )
            if url is not None:
                notify.add_subscription(ctx, username=username, url=url, language=language)
            session.commit()
        return username

    return make


def write_ctx(parts: Server) -> Ctx:
    return Ctx(session=parts.sessions(), actor="test", clock=parts.clock)
