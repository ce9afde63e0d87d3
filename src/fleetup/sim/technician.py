"""A simulated field technician: the manual half of chart 2 at each visit.

For each of their visits, in order, the technician arrives at the visit's start (or later,
when the previous one ran long). A machine whose IPC is off the network gets chart 2's
network branch (E "no", G fault handling, H repaired) and a chart 4 network problem, and is
then back online. The technician waits while the IPC works; when its function test fails
(a hardware fault) they open a chart 4 hardware problem, swap the part, do R
(troubleshooting) and let the IPC test again. Then Q (training; a user who struggles gets a
chart 4 user-operation problem), S, T (the customer's acceptance signature) and U, which
completes the machine's upgrade.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fleetup.sim.faults import Luck
from fleetup.sim.ipc import VirtualIpc
from fleetup.sim.loop import EventLoop, Until, Wait
from fleetup.sim.result import Api, SimResult
from fleetup.sim.walk import Instance, read, start, walk

# Minutes per manual node, around chart 3's budgets where it gives one.
MANUAL_MINUTES = {"Q": 10.0, "S": 3.0, "T": 4.0, "U": 2.0, "G": 25.0, "H": 10.0, "R": 20.0}
PROBLEM_TYPES = {"network": "network", "hardware": "hardware", "user": "user"}


@dataclass
class Assignment:
    """One machine's visit, as the technician holds it."""

    serial: str
    start: datetime
    end: datetime
    instance_id: int
    ipc: VirtualIpc
    luck: Luck
    customer_existing: bool
    done: Callable[[str, Instance | None], None]


@dataclass
class Technician:
    username: str
    token: str
    api: Api
    loop: EventLoop
    result: SimResult
    rng: random.Random
    visits: list[Assignment] = field(default_factory=list)

    def minutes(self, node: str) -> float:
        return round(MANUAL_MINUTES.get(node, 5.0) * self.rng.uniform(0.7, 1.3), 1)

    def work(self) -> Generator[Wait, None, None]:
        for visit in sorted(self.visits, key=lambda v: (v.start, v.serial)):
            if self.loop.now < visit.start:
                yield visit.start
            yield from self._visit(visit)

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

    def _visit(self, visit: Assignment) -> Generator[Wait, None, None]:
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
            visit.done(ipc.outcome, None)
            return
        state = read(self.api, self.token, visit.instance_id)

        def training(node: str) -> Generator[Wait, None, None] | None:
            if node == "Q" and visit.luck.user_problem:
                return self.problem(visit.serial, "user")
            return None

        final = yield from walk(
            self.api,
            self.loop,
            self.token,
            state,
            choose=lambda node, outcomes: "yes" if "yes" in outcomes else outcomes[0],
            minutes=lambda node: self.minutes(node),
            on_task=training,
        )
        visit.done("completed" if final["status"] == "completed" else final["status"], final)

    def _network_branch(self, visit: Assignment) -> Generator[Wait, None, None]:
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
