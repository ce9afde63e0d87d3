"""The device API's hot paths (the no-change poll before routing, authentication and the
heartbeat straight on the database) answer exactly what the session's way answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from device_helpers import SERIAL, Ipc
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from fleetup.api.deps import Server
from fleetup.api.device import device_db as device_db_module
from fleetup.api.device.device_db import DirectUnavailable, device_db
from fleetup.core.clock import ManualClock, SystemClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.db import make_engine, session_factory
from fleetup.devices import service as devices
from fleetup.devices.models import Device
from fleetup.devices.schemas import DeploymentIn
from fleetup.upgrades.library import SopLibrary

POLL = "/device/v1/actions/next"
BEAT = {"version": "1.2.0", "link": "4g", "health": {"disk_free": 7, "problem": "fan noise"}}


@pytest.fixture
def elsewhere(settings: Settings) -> Iterator[Engine]:
    """An engine of its own on the same database: what another server process would hold."""
    engine = make_engine(settings.effective_database_url)
    yield engine
    engine.dispose()


def _last_etag(client: TestClient, ipc: Ipc) -> str:
    first = client.get(POLL, headers=ipc.headers)
    assert first.status_code == 200, first.text
    etag: str = first.headers["etag"]
    assert client.get(POLL, headers=ipc.headers | {"If-None-Match": etag}).status_code == 304
    return etag


def test_a_credential_revoked_elsewhere_gets_401_not_304_with_its_last_etag(
    client: TestClient, enroll: Callable[[str], Ipc], elsewhere: Engine
) -> None:
    ipc = enroll(SERIAL)
    etag = _last_etag(client, ipc)
    with session_factory(elsewhere)() as session:
        devices.revoke(Ctx(session=session, actor="test", clock=SystemClock()), serial=SERIAL)
        session.commit()
    refused = client.get(POLL, headers=ipc.headers | {"If-None-Match": etag})
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    beat = client.post("/device/v1/heartbeat", json=BEAT, headers=ipc.headers)
    assert beat.status_code == 401


def test_an_unknown_credential_with_a_current_etag_gets_401(
    client: TestClient, enroll: Callable[[str], Ipc]
) -> None:
    etag = _last_etag(client, enroll(SERIAL))
    stranger = {"Authorization": "Bearer fdc_not-a-credential", "If-None-Match": etag}
    refused = client.get(POLL, headers=stranger)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_an_action_queued_by_another_process_moves_the_etag_at_once(
    client: TestClient,
    enroll: Callable[[str], Ipc],
    release: dict[str, Any],
    elsewhere: Engine,
    settings: Settings,
) -> None:
    ipc = enroll(SERIAL)
    etag = _last_etag(client, ipc)
    with session_factory(elsewhere)() as session:
        ctx = Ctx(session=session, actor="test", clock=SystemClock())
        queued = devices.deploy(
            ctx,
            SopLibrary(settings.sop_definitions),
            serial=SERIAL,
            data=DeploymentIn(version=release["version"]),
            base_url="http://fleetup.test",
        )
        session.commit()
    changed = client.get(POLL, headers=ipc.headers | {"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["action"]["id"] == queued.action_id
    new_etag = changed.headers["etag"]
    assert client.get(POLL, headers=ipc.headers | {"If-None-Match": new_etag}).status_code == 304


def test_a_heartbeat_is_what_another_process_reads_next(
    client: TestClient,
    enroll: Callable[[str], Ipc],
    elsewhere: Engine,
    clock: ManualClock,
) -> None:
    ipc = enroll(SERIAL)
    clock.advance(timedelta(minutes=42))
    beat = client.post("/device/v1/heartbeat", json=BEAT, headers=ipc.headers)
    assert beat.status_code == 200 and beat.json() == {"ok": True}
    with session_factory(elsewhere)() as session:
        device = session.scalars(select(Device)).one()
    # What monitoring reads: when it was last heard (the server's clock, as an aware UTC
    # time on either database), and what it said of itself.
    assert device.last_seen == clock.now()
    assert (device.version, device.link, device.health) == (
        "1.2.0",
        "4g",
        {"disk_free": 7, "problem": "fan noise"},
    )


def test_the_session_way_answers_the_same_when_the_direct_way_cannot(
    client: TestClient,
    enroll: Callable[[str], Ipc],
    server_parts: Server,
    monkeypatch: pytest.MonkeyPatch,
    elsewhere: Engine,
) -> None:
    ipc = enroll(SERIAL)
    etag = _last_etag(client, ipc)
    direct = device_db(server_parts.engine)

    async def unavailable(*_args: Any) -> Any:
        raise DirectUnavailable("for the test")

    monkeypatch.setattr(direct, "find", unavailable)
    monkeypatch.setattr(direct, "heartbeat", unavailable)
    assert client.get(POLL, headers=ipc.headers | {"If-None-Match": etag}).status_code == 304
    beat = client.post("/device/v1/heartbeat", json=BEAT, headers=ipc.headers)
    assert beat.status_code == 200
    with session_factory(elsewhere)() as session:
        assert session.scalars(select(Device.version)).one() == "1.2.0"
    wrong = {"Authorization": "Bearer fdc_not-a-credential"}
    assert client.get(POLL, headers=wrong).status_code == 401


def test_the_direct_way_serves_one_event_loop_after_another(
    server_parts: Server, enroll: Callable[[str], Ipc]
) -> None:
    ipc = enroll(SERIAL)
    direct = device_db(server_parts.engine)

    async def lookup() -> Any:
        return await direct.find(ipc.credential)

    # Each asyncio.run is a new loop, as each test client or simulator run has its own.
    callers = [devices.caller_from_row(asyncio.run(lookup())) for _ in range(3)]
    assert [caller.public_id if caller else None for caller in callers] == [ipc.device_id] * 3
    assert asyncio.run(direct.find("fdc_unknown")) is None
    asyncio.run(direct.close())


def test_postgres_lookups_share_a_few_connections_under_concurrency(
    server_parts: Server, enroll: Callable[[str], Ipc]
) -> None:
    direct = device_db(server_parts.engine)
    if not isinstance(direct, device_db_module.PostgresDb):
        pytest.skip("the asynchronous connections are PostgreSQL's")
    ipc = enroll(SERIAL)

    async def many() -> tuple[list[Any], int]:
        found = await asyncio.gather(*(direct.find(ipc.credential) for _ in range(50)))
        opened = direct._reads.opened
        await direct.close()
        return found, opened

    rows, opened = asyncio.run(many())
    assert {row[0] for row in rows} == {int(ipc.device_id.removeprefix("dev-"))}
    assert 1 <= opened <= device_db_module.POSTGRES_CONNECTIONS


def test_the_direct_sqlite_connection_commits_as_the_engines_own_do(
    server_parts: Server, enroll: Callable[[str], Ipc]
) -> None:
    direct = device_db(server_parts.engine)
    if not isinstance(direct, device_db_module.SqliteDb):
        pytest.skip("the direct connection is SQLite's only on SQLite")
    ipc = enroll(SERIAL)
    values = devices.heartbeat_values(
        caller=devices.caller_from_row(asyncio.run(direct.find(ipc.credential))),
        now=server_parts.clock.now(),
        version="1.2.0",
        link="lan",
        health={},
    )
    assert asyncio.run(direct.heartbeat(values)) == 1
    with server_parts.engine.connect() as engine_connection:
        engine_sync = engine_connection.exec_driver_sql("PRAGMA synchronous").scalar()
    # Every direct connection is opened the same way, whichever thread asks for one.
    opened = direct._connection(device_db_module.SQLITE_WRITE_BUSY_MS)
    direct_sync = opened.execute("PRAGMA synchronous").fetchone()[0]
    assert direct_sync == engine_sync == 1  # NORMAL: a WAL commit does not wait for the disk
    asyncio.run(direct.close())
