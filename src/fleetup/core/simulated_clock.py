"""Where a server's simulated clock stands, kept in the database so a restart resumes there.

A server on simulated time (``fleetup serve --simulated-clock``) keeps its clock in memory, and
it runs the worker's jobs whenever the clock moves. If the process dies, the next one must not
go back to the moment on its command line, and must not run a job again at a moment it already
ran at: so each move stores the new time, and each job the moment it last ran, one small row
apiece (``simulated_clock``: a name, a moment). Only servers on simulated time write here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, String, bindparam, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from fleetup.core.db import Base, Prepared, UTCDateTime

NOW = "now"
JOB_PREFIX = "job:"


class SimulatedMoment(Base):
    """One remembered moment: the clock's (``now``) or a job's last run (``job:<name>``)."""

    __tablename__ = "simulated_clock"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


_MOVE = Prepared(
    update(SimulatedMoment)
    .where(SimulatedMoment.name == bindparam("moment_name"))
    .values(at=bindparam("moment_at"))
)
_FIRST = Prepared(
    insert(SimulatedMoment).values(name=bindparam("moment_name"), at=bindparam("moment_at"))
)


def _save(engine: Engine, name: str, at: datetime) -> None:
    """One statement, in its own transaction: every clock move stores a handful of these."""
    values = {"moment_name": name, "moment_at": at}
    with engine.begin() as connection:
        if _MOVE.run(connection, values) == 0:
            _FIRST.run(connection, values)


def stored_now(session: Session) -> datetime | None:
    """The last moment the clock was moved to, or None on a server that never moved it."""
    row = session.get(SimulatedMoment, NOW)
    return row.at if row is not None else None


def save_now(engine: Engine, at: datetime) -> None:
    """Remember that the clock moved to ``at`` (before the jobs of that move run)."""
    _save(engine, NOW, at)


def job_runs(session: Session, *, until: datetime) -> dict[str, datetime]:
    """When each job last ran, leaving out runs later than ``until``.

    A server started again earlier than its database's runs (a demo started anew on this
    week's Monday) must run its jobs, not wait for a moment it has already passed.
    """
    rows = session.scalars(
        select(SimulatedMoment).where(SimulatedMoment.name.startswith(JOB_PREFIX))
    )
    return {row.name.removeprefix(JOB_PREFIX): row.at for row in rows if row.at <= until}


def save_job_run(engine: Engine, name: str, at: datetime) -> None:
    """Remember that job ``name`` ran at ``at`` (after its own transactions committed)."""
    _save(engine, JOB_PREFIX + name, at)
