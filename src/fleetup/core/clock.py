"""The one seam through which fleetup learns the time.

Services never call ``datetime.now``: they are handed a clock, so the simulator can run a
16-week project in seconds and tests are deterministic.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    """Anything that can tell the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; safe to share between threads."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``, which must not be earlier than now."""
        with self._lock:
            if moment < self._now:
                raise ValueError("time does not run backwards")
            self._now = moment


def utc(moment: datetime) -> datetime:
    """Return ``moment`` as aware UTC; naive values (as SQLite returns them) are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def valid_timezone(name: str) -> str:
    """``name`` when it is an IANA time zone this machine knows (a pydantic validator).

    Raises:
        ValueError: it is not, with a message saying what is expected.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        wanted = "use an IANA name like Asia/Taipei"
        raise ValueError(f"unknown time zone {name!r}; {wanted}") from error
    return name
