"""Waves and technician visits, planned the way the SOP asks, for runs without a campaign.

Chart 1 migrates the fleet in waves: trial runs D1 (week 9) and D2 (week 10), then E1 (week 11),
E2 (weeks 12-13) and E3 (week 14). Each machine gets a technician visit of 65 minutes (chart 3)
inside its site's maintenance window (working hours, Monday to Friday 09:00-17:00, when the
site has none), with travel between sites; the machine's install window is its visit slot.
This is pure code over plain data: no clock, session or network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

VISIT = timedelta(minutes=65)
TRAVEL = timedelta(minutes=30)
WORKING_HOURS: list[dict[str, Any]] = [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}]
# (code, week it starts, share of the fleet); E3 takes the rest.
WAVES: tuple[tuple[str, int, float], ...] = (
    ("D1", 9, 0.03),
    ("D2", 10, 0.07),
    ("E1", 11, 0.15),
    ("E2", 12, 0.42),
    ("E3", 14, 1.0),
)


@dataclass(frozen=True)
class Site:
    key: str
    customer_code: str
    timezone: str
    windows: list[dict[str, Any]]


@dataclass(frozen=True)
class Visit:
    serial: str
    technician: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Wave:
    code: str
    start: datetime
    serials: list[str]


def wave_sizes(count: int) -> list[int]:
    """How many machines each wave takes; at least one each while machines last."""
    sizes: list[int] = []
    left = count
    for index, (_, _, share) in enumerate(WAVES):
        last = index == len(WAVES) - 1
        size = left if last else min(left, max(1, round(count * share)))
        sizes.append(size)
        left -= size
    return sizes


def waves(serials: list[str], *, starts_on: date) -> list[Wave]:
    """The machines of each wave, in inventory order, starting on its week's Monday 00:00 UTC."""
    result: list[Wave] = []
    at = 0
    for (code, week, _), size in zip(WAVES, wave_sizes(len(serials)), strict=True):
        start = datetime.combine(starts_on + timedelta(weeks=week - 1), time(), UTC)
        result.append(Wave(code, start, serials[at : at + size]))
        at += size
    return result


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    return time(23, 59) if hours == 24 else time(hours, minutes)


def next_slot(site: Site, after: datetime, length: timedelta = VISIT) -> datetime:
    """The earliest start at or after ``after`` with ``length`` inside one of the site's windows.

    Raises:
        ValueError: no such slot in the next four weeks (the windows are too short).
    """
    zone = ZoneInfo(site.timezone)
    windows = site.windows or WORKING_HOURS
    day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(29):
        best: datetime | None = None
        for window in windows:
            if day.weekday() not in window["days"]:
                continue
            opens = datetime.combine(day, _clock(window["start"]), zone).astimezone(UTC)
            closes = datetime.combine(day, _clock(window["end"]), zone).astimezone(UTC)
            if closes <= opens:
                closes += timedelta(days=1)
            start = max(opens, after)
            if start + length <= closes and (best is None or start < best):
                best = start
        if best is not None:
            return best
        day += timedelta(days=1)
    raise ValueError(f"site {site.key} has no {length} slot in its maintenance windows")


def _slot(site: Site, after: datetime) -> datetime:
    """A full visit slot, or, where every window is shorter, the opening of the next window
    (the technician starts the work inside the window and finishes after it)."""
    try:
        return next_slot(site, after)
    except ValueError:
        return next_slot(site, after, timedelta(minutes=30))


def visits(
    wave: Wave, *, site_of: dict[str, Site], technicians: list[str], free_at: dict[str, datetime]
) -> list[Visit]:
    """Plan the wave's visits: a site's machines one after another by the first free technician.

    ``free_at`` (technician -> when they are free) is updated, so waves plan in sequence.
    """
    by_site: dict[str, list[str]] = {}
    for serial in wave.serials:
        by_site.setdefault(site_of[serial].key, []).append(serial)
    planned: list[Visit] = []
    for serials in by_site.values():
        technician = min(technicians, key=lambda name: (free_at.get(name, wave.start), name))
        moment = max(free_at.get(technician, wave.start), wave.start)
        for serial in serials:
            start = _slot(site_of[serial], moment)
            planned.append(Visit(serial, technician, start, start + VISIT))
            moment = start + VISIT
        free_at[technician] = moment + TRAVEL
    return planned
