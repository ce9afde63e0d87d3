"""A simulated field technician: the manual half of chart 2 at each visit the campaign books.

The technician learns of a visit the way the real one does: the ``visit_assigned`` message
lands on their phone, and they read their planned visits from the campaign (``GET
/api/v1/campaigns/{id}/visits?technician=&status=planned``). The machine's IPC has its agent
running from then on (it enrolls a day and a half ahead, or at once when the visit is sooner).
They arrive at the visit's start (or later, when the previous one ran long). A machine whose
IPC is off the network gets chart 2's network branch (E "no", G fault handling, H repaired) and
a chart 4 network problem, and is then back online. The technician waits while the IPC works;
when its function test fails (a hardware fault) they open a chart 4 hardware problem, swap the
part, do R (troubleshooting) and let the IPC test again. Then Q (training; a user who struggles
gets a chart 4 user-operation problem), S, T (the customer signs the acceptance on the
technician's phone: ``POST /api/v1/machines/{serial}/acceptances``) and U, which completes the
machine's upgrade. A visit whose IPC never got to work is left: the campaign books a new one.
"""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from PIL import Image, ImageDraw

from fleetup.sim.faults import Luck
from fleetup.sim.ipc import VirtualIpc
from fleetup.sim.loop import EventLoop, Signal, Until, Wait
from fleetup.sim.result import Api, SimResult, moment
from fleetup.sim.walk import Instance, read, start, walk

# Minutes per manual node, around chart 3's budgets where it gives one.
MANUAL_MINUTES = {"Q": 10.0, "S": 3.0, "T": 4.0, "U": 2.0, "G": 25.0, "H": 10.0, "R": 20.0}
PROBLEM_TYPES = {"network": "network", "hardware": "hardware", "user": "user"}
# The agent is started at least this long before the visit (at once when the visit is sooner).
AGENT_LEAD = timedelta(days=1, hours=12)


def _midnight_before(moment: datetime) -> datetime:
    """Agents are started at midnight UTC, so the IPCs enrolling that day share a clock move."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@cache
def signature() -> str:
    """A customer's signature, drawn once, as the phone's signature pad sends it."""
    image = Image.new("RGB", (300, 120), "white")
    ImageDraw.Draw(image).line([(10, 100), (80, 20), (150, 90), (290, 15)], fill="black", width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Visit:
    """One booked visit, as the technician's phone shows it."""

    id: int
    serial: str
    start: datetime
    end: datetime
    instance_id: int
    ipc: VirtualIpc
    luck: Luck
    customer_existing: bool


@dataclass
class Technician:
    username: str
    token: str
    api: Api
    loop: EventLoop
    result: SimResult
    rng: random.Random
    campaign_id: int
    ipc_for: Callable[[str, datetime], VirtualIpc]
    luck_of: Callable[[str], Luck]
    existing: Callable[[str], bool]
    done: Callable[[str, str], None]
    end: datetime
    messages: Signal = field(default_factory=Signal)
    known: set[int] = field(default_factory=set)
    queue: list[Visit] = field(default_factory=list)
    queued: Signal = field(default_factory=Signal)

    def minutes(self, node: str) -> float:
        return round(MANUAL_MINUTES.get(node, 5.0) * self.rng.uniform(0.7, 1.3), 1)

    # -- the day plan ----------------------------------------------------------------------

    def listen(self) -> Generator[Wait, None, None]:
        """Read the visits again each time a ``visit_assigned`` message arrives."""
        while self.loop.now < self.end:
            self.messages.reset()
            yield Until(self.messages, self.end)
            if self.messages.fired:
                self.read_plan()

    def read_plan(self) -> None:
        answer = self.api.call(
            "GET",
            f"/api/v1/campaigns/{self.campaign_id}/visits"
            f"?technician={self.username}&status=planned",
            token=self.token,
        )
        if answer.status_code != 200:
            return
        for row in answer.json():
            visit = self._visit(row)
            if visit is not None:
                self.queue.append(visit)
                self.queued.fire()

    def _visit(self, row: dict[str, Any]) -> Visit | None:
        if row["id"] in self.known or row["status"] != "planned" or row["instance_id"] is None:
            return None
        self.known.add(row["id"])
        starts, ends = moment(row["planned_start"]), moment(row["planned_end"])
        if ends <= self.loop.now:
            return None
        serial = row["serial"]
        return Visit(
            row["id"],
            serial,
            starts,
            ends,
            int(row["instance_id"]),
            self.ipc_for(serial, max(self.loop.now, _midnight_before(starts - AGENT_LEAD))),
            self.luck_of(serial),
            self.existing(serial),
        )

    def work(self) -> Generator[Wait, None, None]:
        while self.loop.now < self.end:
            if not self.queue:
                self.queued.reset()
                yield Until(self.queued, self.end)
                continue
            self.queue.sort(key=lambda v: (v.start, v.serial))
            visit = self.queue[0]
            if self.loop.now < visit.start:
                # A visit booked while they wait may come first: look at the plan again.
                self.queued.reset()
                yield Until(self.queued, visit.start)
                continue
            self.queue.pop(0)
            if self.loop.now >= visit.end + timedelta(hours=2):
                continue  # the day ran long; the campaign books this machine again
            yield from self._visit_machine(visit)

    # -- one visit -------------------------------------------------------------------------

    def problem(self, serial: str, kind: str) -> Generator[Wait, None, None]:
        """Open a chart 4 problem about the machine and handle it to the end."""
        self.result.problems[kind] += 1
        opened = start(self.api, self.token, "chart4", "machine", serial)
        if opened is None:
            return
        yield from walk(
            self.api,
            self.loop,
            self.token,
            opened,
            choose=lambda node, outcomes: PROBLEM_TYPES[kind] if node == "B" else outcomes[0],
            minutes=lambda node: self.minutes(node),
        )

    def _visit_machine(self, visit: Visit) -> Generator[Wait, None, None]:
        ipc = visit.ipc
        if ipc.offline:
            yield from self._network_branch(visit)
            ipc.reconnected.fire()
        deadline = max(visit.end, self.loop.now) + timedelta(hours=3)
        yield Until(ipc.tests_done, deadline)
        if ipc.outcome == "tests_failed":
            yield from self.problem(visit.serial, "hardware")
            state = read(self.api, self.token, visit.instance_id)
            yield from walk(
                self.api,
                self.loop,
                self.token,
                state,
                choose=lambda node, outcomes: outcomes[0],
                minutes=lambda node: self.minutes(node),
                stop_at=lambda node: node == "O",
            )
            ipc.tests_done.reset()
            ipc.outcome = "retesting"
            ipc.retest.fire()
            yield Until(ipc.tests_done, self.loop.now + timedelta(hours=2))
        if ipc.outcome != "tests_passed":
            self.done(visit.serial, ipc.outcome)
            return
        state = read(self.api, self.token, visit.instance_id)

        def on_task(node: str) -> Generator[Wait, None, Instance | None] | None:
            if node == "Q" and visit.luck.user_problem:
                return self._user_problem(visit.serial)
            if node == "T":
                return self._acceptance(visit)
            return None

        final = yield from walk(
            self.api,
            self.loop,
            self.token,
            state,
            choose=lambda node, outcomes: "yes" if "yes" in outcomes else outcomes[0],
            minutes=lambda node: self.minutes(node),
            on_task=on_task,
        )
        self.done(visit.serial, "completed" if final["status"] == "completed" else final["status"])

    def _user_problem(self, serial: str) -> Generator[Wait, None, Instance | None]:
        yield from self.problem(serial, "user")
        return None

    def _acceptance(self, visit: Visit) -> Generator[Wait, None, Instance | None]:
        """The customer reads the results and signs on the technician's phone (T)."""
        yield timedelta(minutes=self.minutes("T"))
        signed = self.api.call(
            "POST",
            f"/api/v1/machines/{visit.serial}/acceptances",
            token=self.token,
            json={"signer_name": f"{visit.serial} 客戶代表", "signature": signature()},
        )
        if signed.status_code != 201:
            return None
        self.result.acceptances += 1
        return read(self.api, self.token, visit.instance_id)

    def _network_branch(self, visit: Visit) -> Generator[Wait, None, None]:
        state = read(self.api, self.token, visit.instance_id)

        def choose(node: str, outcomes: list[str]) -> str:
            if node == "B":
                return "yes" if visit.customer_existing else "no"
            return "no" if node == "E" else outcomes[0]

        yield from walk(
            self.api,
            self.loop,
            self.token,
            state,
            choose=choose,
            minutes=lambda node: self.minutes(node),
            stop_at=lambda node: node == "F",
        )
        yield from self.problem(visit.serial, "network")
