"""Looking a machine up by serial again in one session: the same row, read once, while it is
current."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from fleetup.api.deps import Server
from fleetup.core.context import Ctx
from fleetup.core.errors import NotFound
from fleetup.fleet import service as fleet


@pytest.fixture
def statements(server_parts: Server) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(server_parts.engine, "before_cursor_execute", count)
    yield seen
    event.remove(server_parts.engine, "before_cursor_execute", count)


def test_a_machine_found_again_in_a_session_is_not_read_again(
    ctx: Ctx, machine: str, statements: list[str]
) -> None:
    first = fleet.get_machine(ctx.session, serial=machine)
    statements.clear()
    again = fleet.get_machine(ctx.session, serial=machine)
    assert again is first
    assert again.site.customer.code == "YJ"
    assert statements == []


def test_after_a_rollback_the_machine_is_read_as_committed_meanwhile(
    ctx: Ctx, machine: str, server_parts: Server
) -> None:
    fleet.get_machine(ctx.session, serial=machine)
    with server_parts.sessions() as other:
        fleet.get_machine(other, serial=machine).program_version = "9.9.9"
        other.commit()
    ctx.session.rollback()
    assert fleet.get_machine(ctx.session, serial=machine).program_version == "9.9.9"


def test_a_renamed_machine_answers_to_its_new_serial_only(ctx: Ctx, machine: str) -> None:
    fleet.get_machine(ctx.session, serial=machine).serial = "YJ-TC1-CNC011"
    with pytest.raises(NotFound):
        fleet.get_machine(ctx.session, serial=machine)
    assert fleet.get_machine(ctx.session, serial="YJ-TC1-CNC011").model == "CNC-5"
