"""Fixtures for campaign tests: a small fleet, a release, technicians, a campaign."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.campaigns.models import WaveMember
from fleetup.core.audit import snapshot
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices.models import DeviceAction
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Machine
from fleetup.fleet.schemas import CustomerIn, MachineIn, MaintenanceWindow, SiteIn
from fleetup.releases import service as releases
from fleetup.upgrades.models import SopInstance
from fleetup.worker import Scheduler
from fleetup.worker.jobs import JOBS
from releases.release_helpers import make_package
from support import Account

# The Monday the test clock (2026-03-02 01:00 UTC) falls in.
STARTS_ON = date(2026, 3, 2)
ANY_TIME = [MaintenanceWindow(days=[0, 1, 2, 3, 4, 5, 6], start="00:00", end="24:00")]


def serials_of(count: int, site: str = "S1") -> list[str]:
    return [f"{site}-M{n:03d}" for n in range(1, count + 1)]


@pytest.fixture
def small_fleet(ctx: Ctx) -> list[str]:
    """40 machines at two sites of one customer, open for work at any time."""
    fleet.create_customer(ctx, CustomerIn(code="ACME", name="艾克米精機"))
    made = []
    for site in ("S1", "S2"):
        fleet.create_site(
            ctx,
            SiteIn(
                customer_code="ACME", code=site, name=f"廠 {site}", maintenance_windows=ANY_TIME
            ),
        )
        for serial in serials_of(20, site):
            fleet.create_machine(
                ctx,
                MachineIn(
                    serial=serial,
                    model="CNC-5" if serial.endswith(("1", "3", "5", "7", "9")) else "LATHE-2",
                    ipc_os="linux",
                    customer_code="ACME",
                    site_code=site,
                ),
            )
            made.append(serial)
    ctx.session.commit()
    return made


@pytest.fixture
def release(ctx: Ctx, settings: Settings, tmp_path: Path) -> str:
    path = make_package(tmp_path / "ipc-2.tar.gz", version="2.0.0", files={"bin/run": b"x" * 500})
    releases.add(ctx, settings, path=path, version="2.0.0")
    ctx.session.commit()
    return "2.0.0"


@pytest.fixture
def manager(make_account: Callable[..., Account]) -> Account:
    return make_account(Role.manager)


@pytest.fixture
def technicians(make_account: Callable[..., Account]) -> list[Account]:
    return [make_account(Role.technician, f"tech-{n}") for n in (1, 2)]


@pytest.fixture
def campaign(
    client: TestClient,
    manager: Account,
    small_fleet: list[str],
    release: str,
    technicians: list[Account],
) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/campaigns",
        headers=manager.headers,
        json={"name": "Pilot", "release_version": release, "starts_on": STARTS_ON.isoformat()},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def settle(parts: Server, serial: str, outcome: str) -> None:
    """Arrange a member's result as its records would show it, audited as every change to
    them is: ``succeeded`` completes its upgrade, ``failed`` fails its deployment,
    ``running`` starts it."""
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        machine = session.scalar(select(Machine).where(Machine.serial == serial))
        assert machine is not None
        member = session.scalar(
            select(WaveMember)
            .where(WaveMember.machine_id == machine.id)
            .order_by(WaveMember.id.desc())
        )
        assert member is not None and member.action_id is not None
        action = session.get(DeviceAction, member.action_id)
        instance = session.get(SopInstance, member.instance_id)
        assert action is not None and instance is not None
        action_before, instance_before = snapshot(action), snapshot(instance)
        if outcome == "succeeded":
            action.status = "succeeded"
            instance.status = "completed"
            ctx.audit("update", instance, instance_before)
        elif outcome == "failed":
            action.status = "failed"
        else:
            action.status = "running"
        ctx.audit("update", action, action_before)
        session.commit()


@pytest.fixture
def look() -> Callable[[Server], dict[str, int]]:
    """The gate check as the worker runs it, at every call: skipped when neither its pending
    condition nor an audited change says it has work, so a missed condition fails the test."""
    job = next(job for job in JOBS if job.name == "campaigns.check_gates")
    scheduler = Scheduler([replace(job, every=timedelta(0))])
    return scheduler.run_due
