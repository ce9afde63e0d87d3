"""Runs a simulated campaign against a real fleetup server and returns its final counts.

The server is reached either in-process (the default: the app is built on a ``ManualClock``
and called through an in-process transport, the same code with no network) or at a URL (a
``fleetup serve --simulated-clock``). Either way the preparation (users, inventory, release,
enrollment tokens) is done on the server's database, and from then on every actor speaks
HTTP: IPCs the device protocol; the manager, technicians, on-call engineer and customers the
REST API; and the event loop moves the server's clock through ``POST /api/v1/simulation/clock``.

The campaign runs itself, as it does for real: the manager creates it from the SOP template and
starts it; the server's worker starts each wave when its week comes and its gate allows, books
the technicians' visits and queues each machine's deployment with the visit as its install
window. What the server sends (a technician's new visit, a customer's notice or survey link,
an on-call page, an IPC's wake-up) comes back with each clock move, and the simulated people
and IPCs act on it. The final counts are the server's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import httpx

from fleetup.api.app import build_server, create_app
from fleetup.core import migrate, runtime
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.notify.inbox import SimulatedInbox
from fleetup.sim.customer import Customers
from fleetup.sim.faults import FaultRates, Luck, draw
from fleetup.sim.faults import profile as named_profile
from fleetup.sim.fleet import SAMPLE_SIZE, MachineInfo, Prepared, prepare
from fleetup.sim.fleet import enrollment_token as enrollment_token_for
from fleetup.sim.inline import InlineTransport
from fleetup.sim.ipc import VirtualIpc
from fleetup.sim.loop import EventLoop
from fleetup.sim.manager import Manager, OnCall
from fleetup.sim.result import Api, SimResult, WaveCount
from fleetup.sim.technician import Technician

DEFAULT_START = date(2026, 3, 2)
# Where the server's simulated inbox says a message went (never sent anywhere).
INBOX = "json://simulator.invalid"
MAIL = "mailtos://simulator.invalid/mail"
# Simulated IPCs report every ``IDLE`` while they wait; the silence threshold matches it.
IDLE = timedelta(days=2)


def simulated(settings: Settings) -> Settings:
    """``settings`` for a server a simulated fleet runs against.

    Customers' mail and the on-call and managers' pages get a channel, and wake-ups a broker
    address, so that the server queues them as it would for real; a simulated server delivers
    them all to its inbox, never to these addresses. The heartbeat threshold matches how often
    an idle simulated IPC reports.
    """
    return settings.model_copy(
        update={
            "notify_mail_url": settings.notify_mail_url or MAIL,
            "notify_role_urls": {
                "on_call": [f"{INBOX}/on-call"],
                "manager": [f"{INBOX}/manager"],
                **settings.notify_role_urls,
            },
            "mqtt_url": settings.mqtt_url or "mqtt://simulator.invalid:1883",
            "heartbeat_missing_s": max(
                settings.heartbeat_missing_s, int((IDLE * 2.5).total_seconds())
            ),
        }
    )


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
def in_process(
    settings: Settings, start: datetime
) -> Iterator[tuple[httpx.Client, Ctx, httpx.BaseTransport | None]]:
    """A server on a ``ManualClock`` at ``start``, a client that calls it in-process, and
    the client's transport."""
    parts = build_server(settings, ManualClock(start), inbox=SimulatedInbox())
    migrate.upgrade(parts.engine)
    transport = InlineTransport(create_app(parts))
    try:
        with (
            runtime.served(),
            httpx.Client(transport=transport, base_url="http://simulator.invalid") as client,
            parts.sessions() as session,
        ):
            yield client, Ctx(session=session, actor="simulator", clock=parts.clock), transport
    finally:
        transport.close()
        parts.engine.dispose()


@contextmanager
def remote(
    settings: Settings, url: str, start: datetime
) -> Iterator[tuple[httpx.Client, Ctx, httpx.BaseTransport | None]]:
    """A client of the server at ``url`` and a context on its database, stamped ``start``;
    requests go through the client (no transport of its own)."""
    from fleetup.core.db import make_engine, session_factory

    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    try:
        with httpx.Client(base_url=url, timeout=60) as client, session_factory(engine)() as session:
            yield (
                client,
                Ctx(session=session, actor="simulator", clock=ManualClock(datetime.now(UTC))),
                None,
            )
    finally:
        engine.dispose()


class Fleet:
    """The wiring of one run: the people and the IPCs on one event loop, and the inbox."""

    def __init__(
        self,
        api: Api,
        loop: EventLoop,
        prepared: Prepared,
        options: Options,
        enrollment_token: Callable[[str], str],
        end: datetime,
    ) -> None:
        self.api = api
        self.loop = loop
        self.prepared = prepared
        self.options = options
        self.enrollment_token = enrollment_token
        self.end = end
        self.result = api.result
        rates = (
            named_profile(options.profile) if isinstance(options.profile, str) else options.profile
        )
        self.luck: dict[str, Luck] = {
            m.serial: draw(rates, seed=options.seed, serial=m.serial) for m in prepared.machines
        }
        self.info: dict[str, MachineInfo] = {m.serial: m for m in prepared.machines}
        self.ipcs: dict[str, VirtualIpc] = {}
        self.by_device: dict[str, VirtualIpc] = {}
        self.customers = Customers(
            api, loop, self.result, random.Random(f"{options.seed}:customers"), self.luck_of
        )
        self.manager = Manager(api, loop, self.result, prepared.manager_token, self.customers, end)
        self.on_call = OnCall(
            api, loop, self.result, prepared.on_call_token, random.Random(f"{options.seed}:oc"), end
        )
        self.technicians: dict[str, Technician] = {}

    def luck_of(self, serial: str) -> Luck:
        found = self.luck.get(serial)
        if found is None:  # a machine outside the prepared list (another inventory)
            rates = named_profile("realistic")
            found = self.luck[serial] = draw(rates, seed=self.options.seed, serial=serial)
        return found

    def start(self) -> None:
        campaign_id = self.manager.set_up(
            release=self.prepared.release,
            starts_on=self.options.starts_on,
            machines=len(self.prepared.machines),
            sample=len(self.prepared.machines) == SAMPLE_SIZE,
        )
        for name in sorted(self.prepared.technicians):
            technician = Technician(
                name,
                self.prepared.technicians[name],
                self.api,
                self.loop,
                self.result,
                random.Random(f"{self.options.seed}:{name}"),
                campaign_id,
                self.ipc_for,
                self.luck_of,
                lambda serial: self.info[serial].customer_existing if serial in self.info else True,
                self.visit_done,
                self.end,
            )
            self.technicians[name] = technician
            self._subscribe(technician.token, f"{INBOX}/technician/{name}")
            self.loop.spawn(technician.listen())
            self.loop.spawn(technician.work())
        self.loop.spawn(self.manager.work())
        self.loop.spawn(self.on_call.work())

    def _subscribe(self, token: str, url: str) -> None:
        self.api.call(
            "POST", "/api/v1/me/subscriptions", token=token, json={"url": url, "language": "en"}
        )

    def ipc_for(self, serial: str, enroll_at: datetime) -> VirtualIpc:
        """The machine's IPC, its agent started at ``enroll_at`` the first time it is asked."""
        found = self.ipcs.get(serial)
        if found is not None:
            return found
        ipc = VirtualIpc(
            serial,
            self.luck_of(serial),
            self.api,
            self.loop,
            self.result,
            self.enrollment_token,
            end=self.end,
            idle=IDLE,
        )
        self.ipcs[serial] = ipc
        self.loop.spawn(self._enrolled(ipc, enroll_at), enroll_at)
        return ipc

    def _enrolled(self, ipc: VirtualIpc, enroll_at: datetime) -> Any:
        life = ipc.life(enroll_at)
        yield next(life)  # the enrollment moment
        wait = next(life, None)  # enrolls, reports, polls the first time
        if ipc.device_id:
            self.by_device[ipc.device_id] = ipc
        while wait is not None:
            yield wait
            wait = next(life, None)

    def visit_done(self, serial: str, outcome: str) -> None:
        self.result.outcomes[outcome] += 1

    def delivered(self, answer: dict[str, Any]) -> None:
        """Hand what the server sent during a clock move to whoever it was for."""
        for device_id in answer.get("woken", []):
            ipc = self.by_device.get(device_id)
            if ipc is not None:
                self.result.wakeups += 1
                ipc.wake.fire()
        for message in answer.get("messages", []):
            url: str = message["url"]
            if url.startswith(f"{INBOX}/technician/"):
                technician = self.technicians.get(url.rsplit("/", 1)[-1])
                if technician is not None:
                    technician.messages.fire()
            elif url.startswith(f"{INBOX}/on-call"):
                self.on_call.paged.fire()  # the on-call looks at every open incident
            elif url.startswith(MAIL):
                self.customers.receive(message["body"])

    def close(self) -> None:
        """The server's final counts per wave, incidents, and the shutdown gate."""
        campaign_id = self.manager.campaign_id
        campaign = self.api.call(
            "GET", f"/api/v1/campaigns/{campaign_id}", token=self.prepared.manager_token
        ).json()
        for wave in campaign["waves"]:
            counts = wave["counts"]
            self.result.waves[wave["code"]] = WaveCount(
                planned=counts["total"],
                succeeded=counts["succeeded"],
                failed=counts["failed"],
                unfinished=counts["total"] - counts["succeeded"] - counts["failed"],
                status=wave["status"],
            )
        incidents = self.api.call(
            "GET", "/api/v1/incidents", token=self.prepared.manager_token
        ).json()
        self.result.incidents["opened"] = len(incidents)
        if self.result.shutdown_blockers is None:
            self.manager.ask_shutdown()


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
    connect = remote(settings, url, start) if url else in_process(simulated(settings), start)
    with connect as (client, ctx, transport):
        prepared = prepare(
            ctx,
            settings,
            count=options.machines,
            seed=options.seed,
            technicians=list(options.technicians) or None,
            load_inventory=options.load_inventory,
        )
        ctx.session.commit()
        api = Api(client, result, keyed=url is not None, transport=transport)

        fleet: list[Fleet] = []
        # The inbox position of the last answer received: a move whose answer was lost (the
        # server died) is sent again with the same position and hands over the same messages.
        inbox: dict[str, int] = {}

        def advance(moment: datetime) -> None:
            answer = api.call(
                "POST",
                "/api/v1/simulation/clock",
                token=prepared.admin_token,
                json={"now": _iso(moment), **inbox},
                replayable=False,
            )
            if answer.status_code == 200 and fleet:
                body = answer.json()
                inbox["after"] = body.get("cursor", 0)
                fleet[0].delivered(body)

        if url:
            clock_now = api.call(
                "GET", "/api/v1/simulation/clock", token=prepared.admin_token
            ).json()
            start = max(start, datetime.fromisoformat(clock_now["now"].replace("Z", "+00:00")))
            inbox["after"] = clock_now.get("cursor", 0)
        loop = EventLoop(start, advance, speed=options.speed)
        if stopper is not None:
            stopper(loop)

        def enrollment_token(serial: str) -> str:
            clock = ctx.clock
            if isinstance(clock, ManualClock) and clock.now() < loop.now:
                clock.set(loop.now)
            return enrollment_token_for(ctx, serial=serial)

        end = datetime.combine(options.starts_on, clock_time(), UTC) + timedelta(
            weeks=options.weeks
        )
        fleet.append(Fleet(api, loop, prepared, options, enrollment_token, end))
        fleet[0].start()
        loop.run(until=end, progress=(lambda now: progress(now, end)) if progress else None)
        fleet[0].close()
        result.clock_moves = loop.clock_moves
        result.simulated_days = round((loop.now - loop.start).total_seconds() / 86400, 2)
    result.wall_seconds = round(time.monotonic() - wall, 2)
    return result
