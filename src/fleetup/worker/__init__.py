"""The worker: periodic jobs (outbox delivery, SLA timers, heartbeat watch, gate checks).

A job is a plain function over the server's parts that does what is due at the clock's
``now`` and returns how many things it handled. Each job opens its own sessions and commits
its own work, and must be safe to run twice (a second run finds nothing due). ``Scheduler``
runs the jobs whose interval has passed on the server's clock, so the same jobs run on wall
time in ``fleetup worker`` and on simulated time in the simulator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetup.api.deps import Server

log = logging.getLogger("fleetup.worker")


@dataclass(frozen=True)
class Job:
    """One periodic job: ``run(parts)`` at most once per ``every`` of the server's clock."""

    name: str
    every: timedelta
    run: Callable[[Server], int]


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
        now = parts.clock.now()
        handled: dict[str, int] = {}
        for job in self.due(now):
            handled[job.name] = job.run(parts)
            self.last_run[job.name] = now
        return handled

    def run_due_safely(self, parts: Server) -> dict[str, int]:
        """``run_due`` for a long-running worker: a job that raises is logged and waits its
        interval, and the jobs after it still run."""
        now = parts.clock.now()
        handled: dict[str, int] = {}
        for job in self.due(now):
            try:
                handled[job.name] = job.run(parts)
            except Exception:
                log.exception("job %s failed; it runs again in %s", job.name, job.every)
            self.last_run[job.name] = now
        return handled


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
