"""Fixtures for device tests: a machine, a release, an enrolled IPC, a queued upgrade."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from device_helpers import OTHER, SERIAL, Ipc
from fastapi.testclient import TestClient

from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.releases import service as releases
from releases.release_helpers import make_package
from support import Account


@pytest.fixture
def machines(ctx: Ctx) -> list[str]:
    fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
    fleet.create_site(ctx, SiteIn(customer_code="YJ", code="TC1", name="台中廠"))
    for serial in (SERIAL, OTHER):
        fleet.create_machine(
            ctx,
            MachineIn(
                serial=serial, model="CNC-5", ipc_os="linux", customer_code="YJ", site_code="TC1"
            ),
        )
    ctx.session.commit()
    return [SERIAL, OTHER]


@pytest.fixture
def release(ctx: Ctx, settings: Settings, tmp_path: Path, machines: list[str]) -> dict[str, Any]:
    path = make_package(tmp_path / "ipc-2.tar.gz", version="2.0.0", files={"bin/run": b"x" * 5000})
    row = releases.add(ctx, settings, path=path, version="2.0.0")
    ctx.session.commit()
    return {"version": row.version, "sha256": row.sha256, "length": row.length, "path": path}


@pytest.fixture
def enroll(ctx: Ctx, client: TestClient, machines: list[str]) -> Callable[[str], Ipc]:
    def make(serial: str) -> Ipc:
        token = devices.create_enrollment_token(ctx, serial=serial)
        ctx.session.commit()
        answer = client.post(
            "/device/v1/enroll",
            json={"enrollment_token": token, "serial": serial, "hardware": {"os": "linux"}},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return Ipc(serial, body["device_id"], body["credential"])

    return make


@pytest.fixture
def manager(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.manager)


@pytest.fixture
def deploy(
    client: TestClient, manager: Account, release: dict[str, Any]
) -> Callable[[str], dict[str, Any]]:
    def make(serial: str) -> dict[str, Any]:
        answer = client.post(
            f"/api/v1/machines/{serial}/deployments",
            json={"version": release["version"]},
            headers=manager.headers,
        )
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    return make
