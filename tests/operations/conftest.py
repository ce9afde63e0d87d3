"""Fixtures for operations: two sites of machines with enrolled IPCs, people on call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ops_helpers import Fleet, Ipc, enroll

from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import ContactIn, CustomerIn, MachineIn, SiteIn
from support import Account

SITES = {"TC1": ["YJ-TC1-001", "YJ-TC1-002"], "TC2": ["YJ-TC2-001"]}


@pytest.fixture
def ops_fleet(
    ctx: Ctx, client: TestClient, clock: ManualClock, make_account: Callable[..., Account]
) -> Fleet:
    fleet.create_customer(
        ctx,
        CustomerIn(
            code="YJ",
            name="永捷精機",
            contacts=[ContactIn(name="林小姐", email="lin@example.com")],
        ),
    )
    for site, serials in SITES.items():
        fleet.create_site(ctx, SiteIn(customer_code="YJ", code=site, name=site))
        for serial in serials:
            fleet.create_machine(
                ctx,
                MachineIn(
                    serial=serial, model="CNC-5", ipc_os="linux", customer_code="YJ", site_code=site
                ),
            )
    ctx.session.commit()
    ipcs: dict[str, Ipc] = {}
    for serials in SITES.values():
        for serial in serials:
            ipcs[serial] = enroll(ctx, client, serial)
    people = {
        "on_call": make_account(Role.on_call, "oncall-amy"),
        "second": make_account(Role.on_call, "oncall-ben"),
        "manager": make_account(Role.manager, "manager-mei"),
        "technician": make_account(Role.technician, "tech-tom"),
        "viewer": make_account(Role.viewer, "viewer-vic"),
    }
    return Fleet(client=client, clock=clock, ipcs=ipcs, people=people)


@pytest.fixture
def beat(ops_fleet: Fleet) -> Callable[..., None]:
    """``beat(serial, health={...})``: the IPC sends a heartbeat now."""

    def send(serial: str, health: dict[str, Any] | None = None) -> None:
        ipc = ops_fleet.ipcs[serial]
        answer = ops_fleet.client.post(
            "/device/v1/heartbeat",
            json={"version": "1.0", "link": "wired", "health": health or {}},
            headers=ipc.headers,
        )
        assert answer.status_code == 200, answer.text

    return send


@pytest.fixture
def all_beat(ops_fleet: Fleet, beat: Callable[..., None]) -> Callable[[], None]:
    def send() -> None:
        for serial in ops_fleet.ipcs:
            beat(serial)

    return send


@pytest.fixture
def tick(server_parts: Server, clock: ManualClock) -> Callable[[timedelta], None]:
    """Advance the clock and nothing else."""

    def move(delta: timedelta) -> None:
        clock.advance(delta)

    return move


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The suite's settings, with an escalation chain of one person before the managers."""
    return Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        secret_key="test-secret-key-not-for-production",
        escalation_chain=["oncall-ben"],
    )
