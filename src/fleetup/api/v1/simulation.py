"""The simulated clock: present only when the server runs on simulated time.

A server started with ``fleetup serve --simulated-clock`` (or built on a ``ManualClock`` by the
simulator, the demo and the tests) lets an admin move its clock forward. Each move then runs the
worker's due jobs at once, in the request, so gate checks, escalations and notices happen on
simulated time exactly as they would on wall time. What those jobs deliver (messages to people,
wake-ups to IPCs) goes to the server's simulated inbox, never to the outside world, and the
answer hands it to the simulator, whose people and IPCs act on it. On a wall-clock server every
route here answers 404: there is no simulated clock to read or move.
"""

from __future__ import annotations

import threading
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field

from fleetup.api.access import GuardedRoute, allow
from fleetup.api.deps import Server, server
from fleetup.core.clock import ManualClock
from fleetup.core.errors import Conflict, NotFound
from fleetup.core.security import Role
from fleetup.worker import Scheduler
from fleetup.worker.jobs import JOBS

router = APIRouter(route_class=GuardedRoute, tags=["simulation"])
admin = allow(Role.admin)

# One move at a time: two movers racing could run the same due jobs twice.
_moving = threading.Lock()


class ClockIn(BaseModel):
    now: AwareDatetime = Field(description="The new simulated time; never earlier than now.")


class MessageOut(BaseModel):
    url: str = Field(description="The channel the message was for (a person's, a role's).")
    title: str
    body: str


class ClockOut(BaseModel):
    now: datetime
    jobs: dict[str, int] = Field(
        default_factory=dict, description="What each worker job that ran handled."
    )
    messages: list[MessageOut] = Field(
        default_factory=list, description="Messages delivered since the last move."
    )
    woken: list[str] = Field(
        default_factory=list, description="Devices (``dev-<id>``) woken since the last move."
    )


def _simulated(request: Request) -> tuple[Server, ManualClock]:
    parts = server(request)
    if not isinstance(parts.clock, ManualClock):
        raise NotFound("this server runs on the wall clock; it has no simulated clock")
    return parts, parts.clock


def scheduler_of(request: Request) -> Scheduler:
    """The server's one worker scheduler, kept with the application."""
    state = request.app.state
    found: Scheduler | None = getattr(state, "simulation_scheduler", None)
    if found is None:
        found = Scheduler(JOBS)
        state.simulation_scheduler = found
    return found


@router.get("/simulation/clock", response_model=ClockOut, dependencies=[admin])
def read_clock(request: Request) -> ClockOut:
    _, clock = _simulated(request)
    return ClockOut(now=clock.now())


@router.post("/simulation/clock", response_model=ClockOut, dependencies=[admin])
def move_clock(body: ClockIn, request: Request) -> ClockOut:
    """Move the simulated clock forward to ``now``, then run the worker jobs that are due."""
    parts, clock = _simulated(request)
    with _moving:
        try:
            clock.set(body.now)
        except ValueError as error:
            raise Conflict(
                f"the simulated clock is at {clock.now().isoformat()}; time does not run backwards"
            ) from error
        handled = scheduler_of(request).run_due(parts)
        messages, woken = parts.inbox.take() if parts.inbox is not None else ([], [])
    return ClockOut(
        now=clock.now(),
        jobs=handled,
        messages=[MessageOut(url=m.url, title=m.title, body=m.body) for m in messages],
        woken=woken,
    )
