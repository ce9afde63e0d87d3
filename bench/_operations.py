"""Shared set-up for the operations benchmarks (O1, O2): an in-process server on a simulated
clock over a temporary SQLite database, a small fleet with enrolled IPCs, people on call, and
the real worker jobs of operations run by the real ``Scheduler``."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

import fleetup.tables  # noqa: F401  (every table, so the audit registry is complete)
from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.app import build_server
from fleetup.api.deps import Server
from fleetup.core import migrate
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.notify import service as notify
from fleetup.notify.models import Notification
from fleetup.operations import scheduled
from fleetup.worker import Scheduler

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
SITES = 4
PER_SITE = 5


@dataclass
class Bench:
    parts: Server
    clock: ManualClock
    callers: dict[str, devices.DeviceCaller]
    worker: Scheduler

    def ctx(self, session: Any, actor: str = "bench") -> Ctx:
        return Ctx(session=session, actor=actor, clock=self.clock)

    def beat(self, serials: list[str]) -> None:
        with self.parts.sessions() as session:
            ctx = self.ctx(session)
            for serial in serials:
                devices.heartbeat(
                    ctx, caller=self.callers[serial], version="1.0", link="wired", health={}
                )
            session.commit()

    def step(self, seconds: int = 1) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.worker.run_due(self.parts)

    def first_notification(self, template: str) -> datetime | None:
        with self.parts.sessions() as session:
            found = session.scalar(
                select(Notification.created_at)
                .where(Notification.template == template)
                .order_by(Notification.id)
                .limit(1)
            )
        return None if found is None else found.replace(tzinfo=found.tzinfo or UTC)


@contextmanager
def bench_server(start: datetime = START, **overrides: Any) -> Iterator[Bench]:
    """A migrated server with SITES x PER_SITE enrolled machines and an on-call person."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            var_dir=Path(tmp),
            secret_key="bench-secret-key-not-for-production",
            **overrides,
        )
        clock = ManualClock(start)
        parts = build_server(settings, clock)
        migrate.upgrade(parts.engine)
        notify.use_settings(parts.engine, settings)
        callers: dict[str, devices.DeviceCaller] = {}
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="bench", clock=clock)
            accounts.create_user(
                ctx, UserIn(username="oncall", password="oncall-password-1", role=Role.on_call)
            )
            accounts.create_user(
                ctx, UserIn(username="boss", password="boss-password-1", role=Role.manager)
            )
            fleet.create_customer(ctx, CustomerIn(code="BN", name="Bench"))
            for s in range(SITES):
                fleet.create_site(ctx, SiteIn(customer_code="BN", code=f"S{s}", name=f"S{s}"))
                for m in range(PER_SITE):
                    serial = f"BN-S{s}-{m:03d}"
                    fleet.create_machine(
                        ctx,
                        MachineIn(
                            serial=serial,
                            model="CNC",
                            ipc_os="linux",
                            customer_code="BN",
                            site_code=f"S{s}",
                        ),
                    )
                    token = devices.create_enrollment_token(ctx, serial=serial)
                    caller, _ = devices.enroll(ctx, token=token, serial=serial, hardware={})
                    callers[serial] = caller
            session.commit()
        try:
            yield Bench(parts, clock, callers, Scheduler(scheduled.JOBS))
        finally:
            parts.engine.dispose()
