"""The simulated technician's day plan: visits are worked in time order as they are booked."""

from __future__ import annotations

import random
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from fleetup.sim.faults import PROFILES, draw
from fleetup.sim.ipc import VirtualIpc
from fleetup.sim.loop import EventLoop, Wait
from fleetup.sim.result import Api, SimResult
from fleetup.sim.technician import Technician, Visit

START = datetime(2026, 5, 11, tzinfo=UTC)


def _row(visit_id: int, serial: str, starts: datetime) -> dict[str, Any]:
    return {
        "id": visit_id,
        "serial": serial,
        "status": "planned",
        "instance_id": visit_id * 10,
        "planned_start": starts.isoformat(),
        "planned_end": (starts + timedelta(minutes=65)).isoformat(),
    }


class RecordingTechnician(Technician):
    """Notes when they arrive at each machine instead of working it."""

    arrivals: list[tuple[str, datetime]]

    def _visit_machine(self, visit: Visit) -> Generator[Wait, None, None]:
        self.arrivals.append((visit.serial, self.loop.now))
        yield timedelta(minutes=65)


def test_a_visit_booked_while_waiting_for_a_later_one_is_worked_first() -> None:
    plan: list[dict[str, Any]] = [_row(1, "LATER", START + timedelta(days=5))]
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=plan)),
        base_url="http://simulator.invalid",
    )
    result = SimResult()
    api = Api(client, result, keyed=False)
    loop = EventLoop(START, lambda moment: None)
    end = START + timedelta(weeks=2)
    luck = draw(PROFILES["none"], seed=1, serial="any")
    technician = RecordingTechnician(
        "tech",
        "token",
        api,
        loop,
        result,
        random.Random(1),
        campaign_id=1,
        ipc_for=lambda serial, at: VirtualIpc(serial, luck, api, loop, result, lambda s: ""),
        luck_of=lambda serial: luck,
        existing=lambda serial: True,
        done=lambda serial, outcome: None,
        end=end,
    )
    technician.arrivals = []
    loop.spawn(technician.listen())
    loop.spawn(technician.work())

    def book_sooner() -> None:
        plan.append(_row(2, "SOONER", START + timedelta(days=2)))
        technician.messages.fire()

    loop.call_at(START, technician.messages.fire)
    loop.call_at(START + timedelta(days=1), book_sooner)
    loop.run(until=end)

    assert technician.arrivals == [
        ("SOONER", START + timedelta(days=2)),
        ("LATER", START + timedelta(days=5)),
    ]
