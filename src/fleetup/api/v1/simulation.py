"""The simulated clock: present only when the server runs on simulated time.

A server started with ``fleetup serve --simulated-clock`` (or built on a ``ManualClock`` by the
simulator, the demo and the tests) lets an admin move its clock forward. Each move then runs the
worker's due jobs at once, in the request, so gate checks, escalations and notices happen on
simulated time exactly as they would on wall time. What those jobs deliver (messages to people,
wake-ups to IPCs) goes to the server's simulated inbox, never to the outside world, and the
answer hands it to the simulator, whose people and IPCs act on it. On a wall-clock server every
route here answers 404: there is no simulated clock to read or move.

A move may be cut off by the server's death and sent again, so each step of it is durable:
the new time is stored before the jobs run, each job's run is stored when it ends (a move sent
again runs only the jobs that had not run), and the answer is everything the inbox received
after the position the caller names (``after``), which the caller advances only when it got
an answer.
"""

from __future__ import annotations

import threading
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field

from fleetup.api.access import GuardedRoute, allow
from fleetup.api.deps import Server, server
from fleetup.api.schemas import MAX_ROW_ID
from fleetup.core import simulated_clock
from fleetup.core.clock import ManualClock
from fleetup.core.errors import Conflict, NotFound
from fleetup.core.security import Role
from fleetup.notify import delivery
from fleetup.notify import inbox as simulated_inbox
from fleetup.notify.inbox import Handover, SimulatedInbox
from fleetup.worker import Job, Scheduler
from fleetup.worker.jobs import JOBS

router = APIRouter(route_class=GuardedRoute, tags=["simulation"])
admin = allow(Role.admin)

# One move at a time: two movers racing could run the same due jobs twice.
_moving = threading.Lock()


class ClockIn(BaseModel):
    now: AwareDatetime = Field(description="The new simulated time; never earlier than now.")
    after: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ROW_ID,
        description="Hand over what the inbox received after this position (the ``cursor`` "
        "of the last answer the caller got); omitted: after the last answer this server gave.",
    )


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
        default_factory=list, description="Messages delivered after the position asked for."
    )
    woken: list[str] = Field(
        default_factory=list, description="Devices (``dev-<id>``) woken after that position."
    )
    cursor: int = Field(
        default=0, description="The inbox's position after this answer: send it as ``after``."
    )


def _simulated(request: Request) -> tuple[Server, ManualClock]:
    parts = server(request)
    if not isinstance(parts.clock, ManualClock):
        raise NotFound("this server runs on the wall clock; it has no simulated clock")
    if parts.inbox is not None:
        parts.inbox.attach(parts.sessions, parts.clock)
    return parts, parts.clock


def scheduler_of(request: Request) -> Scheduler:
    """The server's one worker scheduler, kept with the application.

    Made on the first move after the server starts: it remembers the job runs stored by the
    process before, and takes back the deliveries that process had claimed and not finished.
    """
    state = request.app.state
    found: Scheduler | None = getattr(state, "simulation_scheduler", None)
    if found is None:
        parts = server(request)
        simulated_inbox.release_claims(parts.sessions, delivery.lease(parts.settings))
        with parts.sessions() as session:
            runs = simulated_clock.job_runs(session, until=parts.clock.now())
        found = Scheduler(JOBS, last_run=runs)
        state.simulation_scheduler = found
    return found


def _handed(request: Request, inbox: SimulatedInbox, parts: Server) -> int:
    """The position of the last answer this process gave (at first: the inbox's end)."""
    found: int | None = getattr(request.app.state, "simulation_handed", None)
    if found is None:
        with parts.sessions() as session:
            found = inbox.latest(session)
    return found


def _handover(inbox: SimulatedInbox | None, parts: Server, after: int) -> Handover:
    if inbox is None:
        return Handover(messages=[], woken=[], cursor=after)
    with parts.engine.connect() as connection:
        return inbox.handover(connection, after=after)


def _run_due(scheduler: Scheduler, parts: Server) -> dict[str, int]:
    """``Scheduler.run_due``, storing each job's run as soon as its own work is committed.

    A job skipped as idle is not stored: a move sent again asks it again, with the same answer.
    """
    now = parts.clock.now()

    def run(job: Job) -> int:
        handled = job.run(parts)
        simulated_clock.save_job_run(parts.engine, job.name, now)
        return handled

    return scheduler.each_due(parts, run)


@router.get("/simulation/clock", response_model=ClockOut, dependencies=[admin])
def read_clock(request: Request) -> ClockOut:
    parts, clock = _simulated(request)
    cursor = 0
    if parts.inbox is not None:
        with parts.sessions() as session:
            cursor = parts.inbox.latest(session)
    return ClockOut(now=clock.now(), cursor=cursor)


@router.post("/simulation/clock", response_model=ClockOut, dependencies=[admin])
def move_clock(body: ClockIn, request: Request) -> ClockOut:
    """Move the simulated clock forward to ``now``, then run the worker jobs that are due."""
    parts, clock = _simulated(request)
    inbox = parts.inbox
    with _moving:
        try:
            clock.set(body.now)
        except ValueError as error:
            raise Conflict(
                f"the simulated clock is at {clock.now().isoformat()}; time does not run backwards"
            ) from error
        simulated_clock.save_now(parts.engine, clock.now())
        after = body.after
        if after is None:
            after = _handed(request, inbox, parts) if inbox is not None else 0
        handled = _run_due(scheduler_of(request), parts)
        delivered = _handover(inbox, parts, after)
        request.app.state.simulation_handed = delivered.cursor
    return ClockOut(
        now=clock.now(),
        jobs=handled,
        messages=[MessageOut(url=m.url, title=m.title, body=m.body) for m in delivered.messages],
        woken=delivered.woken,
        cursor=delivered.cursor,
    )
