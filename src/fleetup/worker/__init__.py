"""The worker: periodic jobs (outbox delivery, SLA timers, heartbeat watch, gate checks).

A job is a plain function over the server's parts that does what is due at the clock's
``now`` and returns how many things it handled. Each job opens its own sessions and commits
its own work, and must be safe to run twice (a second run finds nothing due). ``Scheduler``
runs the jobs whose interval has passed on the server's clock, so the same jobs run on wall
time in ``fleetup worker`` and on simulated time in the simulator.

A job may also say, as a SQL condition, when it can have anything to do (``pending``). The
scheduler asks the conditions of all the jobs due at a tick in one query and skips the jobs
whose condition is false, so an idle worker costs one small read per tick, not a session and
a transaction per job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, bindparam, select

from fleetup.core.db import UTCDateTime

if TYPE_CHECKING:
    from fleetup.api.deps import Server

log = logging.getLogger("fleetup.worker")


@dataclass(frozen=True)
class Job:
    """One periodic job: ``run(parts)`` at most once per ``every`` of the server's clock.

    ``pending(now)``, when given, is a SQL condition that is true whenever the job may have
    something to do at ``now`` (a bound parameter of the query); while it is false the job is
    skipped, and counts as run.
    """

    name: str
    every: timedelta
    run: Callable[[Server], int]
    pending: Callable[[ColumnElement[datetime]], ColumnElement[bool]] | None = None


# The pending-work query of each set of jobs, built once: ``now`` is its one parameter.
_pending_queries: dict[tuple[str, ...], Select[*tuple[Any, ...]]] = {}


def idle_jobs(parts: Server, jobs: Sequence[Job], now: datetime) -> set[str]:
    """The names of the ``jobs`` whose ``pending`` condition is false at ``now``: one query."""
    asked = [(job.name, job.pending) for job in jobs if job.pending is not None]
    if not asked:
        return set()
    names = tuple(name for name, _ in asked)
    query = _pending_queries.get(names)
    if query is None:
        at = bindparam("pending_now", type_=UTCDateTime())
        query = select(*(pending(at).label(f"j{i}") for i, (_, pending) in enumerate(asked)))
        _pending_queries[names] = query
    with parts.sessions() as session:
        row = session.connection().execute(query, {"pending_now": now}).one()
    return {name for name, busy in zip(names, row, strict=True) if not busy}


@dataclass
class Scheduler:
    """Runs each job when its interval has passed; remembers when each last ran."""

    jobs: Sequence[Job]
    last_run: dict[str, datetime] = field(default_factory=dict)

    def due(self, now: datetime) -> list[Job]:
        return [
            job
            for job in self.jobs
            if job.name not in self.last_run or now - self.last_run[job.name] >= job.every
        ]

    def run_due(self, parts: Server) -> dict[str, int]:
        """Run every due job once, in registration order; returns handled counts by name."""
        return self.each_due(parts, lambda job: job.run(parts))

    def run_due_safely(self, parts: Server) -> dict[str, int]:
        """``run_due`` for a long-running worker: a job that raises is logged and waits its
        interval, and the jobs after it still run."""

        def run(job: Job) -> int | None:
            try:
                return job.run(parts)
            except Exception:
                log.exception("job %s failed; it runs again in %s", job.name, job.every)
                return None

        return self.each_due(parts, run)

    def each_due(self, parts: Server, run: Callable[[Job], int | None]) -> dict[str, int]:
        """``run`` every due job that may have something to do; returns handled counts (a job
        whose ``run`` gives None, having failed, has none).

        The ``pending`` conditions of the jobs still to come are read in one query, and read
        again after a job that handled something (its work may be theirs). A job found idle
        counts as run at ``now``.
        """
        now = parts.clock.now()
        due = self.due(now)
        handled: dict[str, int] = {}
        idle: set[str] | None = None
        for index, job in enumerate(due):
            if job.pending is not None:
                if idle is None:
                    idle = self._idle(parts, due[index:], now)
                if job.name in idle:
                    self.last_run[job.name] = now
                    continue
            count = run(job)
            self.last_run[job.name] = now
            if count is not None:
                handled[job.name] = count
            if count != 0:
                idle = None
        return handled

    @staticmethod
    def _idle(parts: Server, jobs: Sequence[Job], now: datetime) -> set[str]:
        try:
            return idle_jobs(parts, jobs, now)
        except Exception:
            log.exception("the jobs' pending work could not be read; every due job runs")
            return set()


def run_until(
    parts: Server, stop: threading.Event, jobs: Sequence[Job], *, tick_s: float = 0.5
) -> None:
    """Run due jobs on the server's clock every ``tick_s`` until ``stop`` is set."""
    scheduler = Scheduler(jobs)
    log.info("worker started with %d jobs", len(jobs))
    while not stop.is_set():
        scheduler.run_due_safely(parts)
        stop.wait(tick_s)
    log.info("worker stopped")


def start_thread(
    parts: Server, jobs: Sequence[Job], *, tick_s: float = 0.5
) -> tuple[threading.Thread, threading.Event]:
    """``run_until`` in a daemon thread; set the returned event and join the thread to stop."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_until,
        args=(parts, stop, jobs),
        kwargs={"tick_s": tick_s},
        name="fleetup-worker",
        daemon=True,
    )
    thread.start()
    return thread, stop
