"""Runs a simulated campaign against a real fleetup server and returns its final counts.

The server is reached either in-process (the default: the app is built on a ``ManualClock``
and called through an in-process transport, the same code with no network) or at a URL (a
``fleetup serve --simulated-clock``). Either way the preparation (users, inventory, release,
enrollment tokens) is done on the server's database, and from then on every actor speaks
HTTP: IPCs the device protocol, technicians, customers and the manager the REST API, and the
event loop moves the server's clock through ``POST /api/v1/simulation/clock``.

The waves and visits are planned by ``sim.plan`` and queued as deployments with the visit as
the install window; each IPC enrolls the day before its wave starts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import partial

import httpx
from fastapi.testclient import TestClient

from fleetup.api.app import build_server, create_app
from fleetup.core import migrate
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.sim import plan
from fleetup.sim.customer import survey
from fleetup.sim.faults import FaultRates, Luck, draw
from fleetup.sim.faults import profile as named_profile
from fleetup.sim.fleet import MachineInfo, Prepared, prepare
from fleetup.sim.fleet import enrollment_token as enrollment_token_for
from fleetup.sim.ipc import VirtualIpc
from fleetup.sim.loop import EventLoop, Process
from fleetup.sim.result import Api, SimResult, WaveCount
from fleetup.sim.technician import Assignment, Technician
from fleetup.sim.walk import Instance

DEFAULT_START = date(2026, 3, 2)


@dataclass(frozen=True)
class Options:
    machines: int = 90
    seed: int = 1
    profile: str | FaultRates = "realistic"
    speed: float | None = None
    weeks: int = 16
    starts_on: date = DEFAULT_START
    load_inventory: bool = True
    technicians: tuple[str, ...] = ()


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@contextmanager
def in_process(settings: Settings, start: datetime) -> Iterator[tuple[httpx.Client, Ctx]]:
    """A server on a ``ManualClock`` at ``start`` and a client that calls it in-process."""
    parts = build_server(settings, ManualClock(start))
    migrate.upgrade(parts.engine)
    try:
        with TestClient(create_app(parts)) as client, parts.sessions() as session:
            yield client, Ctx(session=session, actor="simulator", clock=parts.clock)
    finally:
        parts.engine.dispose()


@contextmanager
def remote(settings: Settings, url: str, start: datetime) -> Iterator[tuple[httpx.Client, Ctx]]:
    """A client of the server at ``url`` and a context on its database, stamped ``start``."""
    from fleetup.core.db import make_engine, session_factory

    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    try:
        with httpx.Client(base_url=url, timeout=60) as client, session_factory(engine)() as session:
            yield (
                client,
                Ctx(session=session, actor="simulator", clock=ManualClock(datetime.now(UTC))),
            )
    finally:
        engine.dispose()


class Campaign:
    """The wiring of one run: actors, plan and bookkeeping on one event loop."""

    def __init__(
        self,
        api: Api,
        loop: EventLoop,
        prepared: Prepared,
        options: Options,
        enrollment_token: Callable[[str], str],
    ) -> None:
        self.api = api
        self.enrollment_token = enrollment_token
        self.loop = loop
        self.prepared = prepared
        self.options = options
        self.result = api.result
        rates = (
            named_profile(options.profile) if isinstance(options.profile, str) else options.profile
        )
        self.luck: dict[str, Luck] = {
            m.serial: draw(rates, seed=options.seed, serial=m.serial) for m in prepared.machines
        }
        self.info = {m.serial: m for m in prepared.machines}
        self.wave_of: dict[str, str] = {}
        self.ipcs: dict[str, VirtualIpc] = {}
        self.assignments: dict[str, Assignment] = {}
        self.finished: set[str] = set()
        self.site_left: dict[tuple[str, str], int] = {}
        self.site_upgraded: dict[tuple[str, str], int] = {}

    def schedule(self) -> None:
        serials = [m.serial for m in self.prepared.machines]
        site_of = {m.serial: m.site for m in self.prepared.machines}
        names = sorted(self.prepared.technicians)
        technicians = {
            name: Technician(
                name,
                self.prepared.technicians[name],
                self.api,
                self.loop,
                self.result,
                random.Random(f"{self.options.seed}:{name}"),
            )
            for name in names
        }
        free_at: dict[str, datetime] = {}
        end = self.loop.start + timedelta(weeks=self.options.weeks)
        for wave in plan.waves(serials, starts_on=self.options.starts_on):
            if wave.start >= end or not wave.serials:
                continue
            self.result.waves[wave.code] = WaveCount(planned=len(wave.serials))
            for visit in plan.visits(wave, site_of=site_of, technicians=names, free_at=free_at):
                self._machine(wave.code, visit, technicians[visit.technician])
            self.loop.spawn(self._deploy(wave), wave.start)
        for technician in technicians.values():
            if technician.visits:
                self.loop.spawn(technician.work())

    def _machine(self, wave: str, visit: plan.Visit, technician: Technician) -> None:
        serial = visit.serial
        info = self.info[serial]
        ipc = VirtualIpc(
            serial,
            self.luck[serial],
            self.api,
            self.loop,
            self.result,
            self.enrollment_token,
        )
        self.ipcs[serial] = ipc
        self.wave_of[serial] = wave
        key = (wave, info.site.key)
        self.site_left[key] = self.site_left.get(key, 0) + 1
        assignment = Assignment(
            serial,
            visit.start,
            visit.end,
            0,
            ipc,
            self.luck[serial],
            info.customer_existing,
            partial(self._done, serial),
        )
        self.assignments[serial] = assignment
        technician.visits.append(assignment)
        enroll_at = max(self.loop.start, visit.start - timedelta(days=1, hours=12))
        self.loop.spawn(ipc.life(enroll_at), enroll_at)

    def _deploy(self, wave: plan.Wave) -> Process:
        for serial in wave.serials:
            visit = self.assignments[serial]
            answer = self.api.call(
                "POST",
                f"/api/v1/machines/{serial}/deployments",
                token=self.prepared.manager_token,
                json={
                    "version": self.prepared.release,
                    "install_window": {
                        "not_before": _iso(visit.start),
                        "not_after": _iso(visit.end),
                    },
                },
            )
            if answer.status_code == 201:
                visit.instance_id = int(answer.json()["instance_id"])
                self.ipcs[serial].wake.fire()
            else:
                self._done(serial, "not_deployed", None)
        yield timedelta(0)

    def _done(self, serial: str, outcome: str, state: Instance | None) -> None:
        if serial in self.finished:
            return
        self.finished.add(serial)
        count = self.result.waves[self.wave_of[serial]]
        if outcome == "completed":
            count.succeeded += 1
        else:
            count.failed += 1
            self.result.incidents[f"upgrade_{outcome}"] += 1
        info: MachineInfo = self.info[serial]
        key = (self.wave_of[serial], info.site.key)
        self.site_left[key] -= 1
        if outcome == "completed":
            self.site_upgraded[key] = self.site_upgraded.get(key, 0) + 1
        if self.site_left[key] == 0 and self.site_upgraded.get(key, 0):
            luck = self.luck[serial]
            self.loop.spawn(
                survey(
                    self.api,
                    self.loop,
                    self.prepared.manager_token,
                    self.result,
                    customer_code=info.customer_code,
                    score=luck.score,
                    retest_score=luck.retest_score,
                    rng=random.Random(f"{self.options.seed}:survey:{key}"),
                ),
                self.loop.now + timedelta(days=1),
            )

    def close(self) -> None:
        """Machines still unfinished when the run ends count as failed."""
        for serial in self.assignments:
            if serial not in self.finished:
                self.finished.add(serial)
                self.result.waves[self.wave_of[serial]].failed += 1
                self.result.incidents[f"upgrade_{self.ipcs[serial].outcome}"] += 1


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(
    settings: Settings,
    options: Options,
    *,
    url: str | None = None,
    progress: Callable[[datetime, datetime], None] | None = None,
    stopper: Callable[[EventLoop], None] | None = None,
) -> SimResult:
    """Run a simulated campaign; in-process unless ``url`` names a running server.

    Args:
        settings: the server's settings (its database takes the preparation).
        options: fleet size, seed, fault profile, pace, length.
        url: a ``fleetup serve --simulated-clock`` to drive over HTTP.
        progress: called with (simulated now, simulated end) as the run goes.
        stopper: handed the loop before it runs, so another thread can stop it.
    """
    wall = time.monotonic()
    start = datetime.combine(options.starts_on, clock_time(), UTC)
    result = SimResult(
        machines=options.machines,
        seed=options.seed,
        profile=options.profile if isinstance(options.profile, str) else "custom",
        mode="url" if url else "in-process",
    )
    connect = remote(settings, url, start) if url else in_process(settings, start)
    with connect as (client, ctx):
        prepared = prepare(
            ctx,
            settings,
            count=options.machines,
            seed=options.seed,
            technicians=list(options.technicians) or None,
            load_inventory=options.load_inventory,
        )
        ctx.session.commit()
        api = Api(client, result)

        def advance(moment: datetime) -> None:
            api.call(
                "POST",
                "/api/v1/simulation/clock",
                token=prepared.admin_token,
                json={"now": _iso(moment)},
            )

        if url:
            now = client.get(
                "/api/v1/simulation/clock",
                headers={"Authorization": f"Bearer {prepared.admin_token}"},
            ).json()["now"]
            start = max(start, datetime.fromisoformat(now.replace("Z", "+00:00")))
        loop = EventLoop(start, advance, speed=options.speed)
        if stopper is not None:
            stopper(loop)

        def enrollment_token(serial: str) -> str:
            clock = ctx.clock
            if isinstance(clock, ManualClock) and clock.now() < loop.now:
                clock.set(loop.now)
            return enrollment_token_for(ctx, serial=serial)

        campaign = Campaign(api, loop, prepared, options, enrollment_token)
        campaign.schedule()
        end = datetime.combine(options.starts_on, clock_time(), UTC) + timedelta(
            weeks=options.weeks
        )
        loop.run(until=end, progress=(lambda now: progress(now, end)) if progress else None)
        campaign.close()
        result.clock_moves = loop.clock_moves
        result.simulated_days = round((loop.now - loop.start).total_seconds() / 86400, 2)
    result.wall_seconds = round(time.monotonic() - wall, 2)
    return result
