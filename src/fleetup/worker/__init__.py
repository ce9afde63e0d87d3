"""The worker: periodic jobs (outbox delivery, SLA timers, heartbeat watch, gate checks).

A job is a plain function over the server's parts that does what is due at the clock's
``now`` and returns how many things it handled. Each job opens its own sessions and commits
its own work, and must be safe to run twice (a second run finds nothing due). ``Scheduler``
runs the jobs whose interval has passed on the server's clock, so the same jobs run on wall
time in ``fleetup worker`` and on simulated time in the simulator.

A job may also say when it can have anything to do: a SQL condition on the clock's ``now``
(``pending``), and the audited tables whose changes may give it work (``changes``: any audit
event appended since the job last ran makes it due, or those of them that ``changed`` picks).
The scheduler asks the conditions of all the jobs due at a tick in one query and skips the
jobs with nothing to do, so an idle worker costs one small read per tick, not a session and
a transaction per job. The audit trail's sequence numbers are handed out under the chain
head's lock, so they follow commit order: a change committed after the question was asked
has a higher number and is seen next time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, bindparam, false, or_, select

from fleetup.core.audit import AuditEvent, AuditHead
from fleetup.core.db import Prepared, UTCDateTime

if TYPE_CHECKING:
    from fleetup.api.deps import Server

log = logging.getLogger("fleetup.worker")


@dataclass(frozen=True)
class Job:
    """One periodic job: ``run(parts)`` at most once per ``every`` of the server's clock.

    ``pending(now)``, when given, is a SQL condition that is true whenever the job may have
    something to do at ``now`` (a bound parameter of the query); ``params(parts, now)`` gives
    the values of any other bound parameters it uses (named after the job, since all jobs
    are asked in one query), such as a threshold from the settings. ``changes`` names the
    audited tables whose changes may give it work. A job with either runs only when one of
    them says so; otherwise it is skipped, and counts as run.
    """

    name: str
    every: timedelta
    run: Callable[[Server], int]
    pending: Callable[[ColumnElement[datetime]], ColumnElement[bool]] | None = None
    changes: tuple[str, ...] = ()
    params: Callable[[Server, datetime], Mapping[str, Any]] | None = None
    # Narrows ``changes``: given ``now`` and the audit position the job last ran at, a SQL
    # condition saying whether the events since then give it work; by default any event of
    # the ``changes`` tables does.
    changed: Callable[[ColumnElement[datetime], ColumnElement[int]], ColumnElement[bool]] | None = (
        None
    )

    @property
    def guarded(self) -> bool:
        return self.pending is not None or bool(self.changes)


# The question of each set of jobs, built once; its parameters are the clock's ``now`` and,
# per job, the audit position it last ran at.
_questions: dict[tuple[Job, ...], Prepared] = {}


def _question(jobs: Sequence[Job]) -> Prepared:
    key = tuple(jobs)
    found = _questions.get(key)
    if found is None:
        now = bindparam("pending_now", type_=UTCDateTime())
        columns: list[ColumnElement[Any]] = [
            select(AuditHead.seq).where(AuditHead.id == 1).scalar_subquery()
        ]
        for index, job in enumerate(jobs):
            asked = [job.pending(now)] if job.pending is not None else []
            if job.changes:
                after = bindparam(f"after_{index}", type_=AuditEvent.seq.type)
                if job.changed is not None:
                    asked.append(job.changed(now, after))
                else:
                    changed = select(AuditEvent.seq).where(
                        AuditEvent.seq > after, AuditEvent.entity_type.in_(job.changes)
                    )
                    asked.append(changed.exists())
            columns.append((or_(*asked) if asked else false()).label(f"j{index}"))
        found = _questions[key] = Prepared(select(*columns))
    return found


def idle_jobs(
    parts: Server, jobs: Sequence[Job], now: datetime, seen: dict[str, int] | None = None
) -> tuple[set[str], int]:
    """Which of the guarded ``jobs`` have nothing to do at ``now``, in one query.

    Every guarded job of ``jobs`` is asked, so that a scheduler's question is always the same
    statement, compiled once.

    Args:
        seen: the audit position each job last ran at; a job with ``changes`` that has not
            run yet is never idle (it runs).

    Returns:
        The idle jobs' names, and the audit position the answer holds for.
    """
    known = seen or {}
    asked = [job for job in jobs if job.guarded]
    if not asked:
        return set(), -1
    params: dict[str, Any] = {"pending_now": now}
    for index, job in enumerate(asked):
        if job.changes:
            params[f"after_{index}"] = known.get(job.name, 0)
        if job.params is not None:
            params.update(job.params(parts, now))
    with parts.engine.connect() as connection:
        (head, *busy), *_ = _question(asked).rows(connection, params)
    idle = {
        job.name
        for job, working in zip(asked, busy, strict=True)
        if not working and (not job.changes or job.name in known)
    }
    return idle, int(head or 0)


@dataclass
class Scheduler:
    """Runs each job when its interval has passed; remembers when each last ran."""

    jobs: Sequence[Job]
    last_run: dict[str, datetime] = field(default_factory=dict)
    # The audit position at each job's last run (for the jobs with ``changes``).
    seen: dict[str, int] = field(default_factory=dict)

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

        The conditions of the guarded jobs are read in one query, and read again after
        a job that handled something (its work may be theirs). A job found idle counts as run
        at ``now``; a job that failed is asked nothing next time: it runs again.
        """
        now = parts.clock.now()
        due = self.due(now)
        handled: dict[str, int] = {}
        asked: tuple[set[str], int] | None = None
        for job in due:
            if job.guarded:
                if asked is None:
                    asked = self._idle(parts, now)
                idle, position = asked
                if position >= 0:
                    self.seen[job.name] = position
                if job.name in idle:
                    self.last_run[job.name] = now
                    continue
            count = run(job)
            self.last_run[job.name] = now
            if count is None:
                self.seen.pop(job.name, None)
            else:
                handled[job.name] = count
            if count != 0:
                asked = None
        return handled

    def _idle(self, parts: Server, now: datetime) -> tuple[set[str], int]:
        try:
            return idle_jobs(parts, self.jobs, now, self.seen)
        except Exception:
            log.exception("the jobs' pending work could not be read; every due job runs")
            return set(), -1


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
