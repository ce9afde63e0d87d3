"""Technicians' day plans: pure planning over maintenance windows and working hours.

Each machine needs a technician on site for the SOP's per-machine budget (chart 3 H, 65
minutes), inside one of its site's weekly maintenance windows (in the site's time zone),
and inside the technician's working hours, with travel time between two different sites
and a cap on a technician's minutes per day (visits plus travel). A technician is never
booked twice at once. The planner is greedy and deterministic: sites in order of their
earliest window, machines of a site one after another, each at the earliest slot any
technician can take (ties go to the technician with fewer minutes booked).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

Interval = tuple[datetime, datetime]
ALL_DAY: tuple[dict[str, object], ...] = (
    {"days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "24:00"},
)


class ScheduleRules(BaseModel):
    """A campaign's planning rules (stored as the campaign's ``schedule``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    visit_minutes: float = Field(default=65, gt=0, description="chart 3 H: 65 minutes")
    travel_minutes: float = Field(default=45, ge=0, description="between two sites")
    working_hours: tuple[dict[str, object], ...] = Field(
        default=ALL_DAY, description="weekly windows, as a site's maintenance windows"
    )
    max_day_minutes: float = Field(default=600, gt=0, description="visits plus travel")
    horizon_days: int = Field(default=56, ge=1, le=366)
    timezone: str = "Asia/Taipei"


@dataclass(frozen=True)
class MachineJob:
    serial: str
    site: str
    timezone: str
    windows: tuple[dict[str, object], ...]


@dataclass(frozen=True)
class Booking:
    technician: str
    serial: str
    site: str
    start: datetime
    end: datetime
    travel_minutes: float = 0.0


# A technician's offer for a visit: the moment, their minutes booked, their position among the
# technicians, the travel before the visit. The least offer takes the visit.
_Choice = tuple[datetime, float, int, float]


@dataclass
class Plan:
    visits: list[Booking] = field(default_factory=list)
    unplanned: list[str] = field(default_factory=list)


def _clock(text: str) -> time | None:
    """``HH:MM``; ``24:00`` is None, meaning the end of the day."""
    hours, minutes = (int(part) for part in text.split(":"))
    return None if hours == 24 else time(hours, minutes)


def window_intervals(
    windows: Iterable[dict[str, object]], timezone: str, start: datetime, end: datetime
) -> list[Interval]:
    """The weekly ``windows`` (site-local) as UTC intervals overlapping [start, end), merged."""
    zone = ZoneInfo(timezone)
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date()
    found: list[Interval] = []
    for window in windows:
        days = {int(day) for day in window["days"]}  # type: ignore[attr-defined]
        opens = _clock(str(window["start"])) or time(0, 0)
        closes = _clock(str(window["end"]))
        day = first_day
        while day <= last_day:
            if day.weekday() in days:
                begin = datetime.combine(day, opens, zone)
                if closes is None or closes <= opens:
                    finish_day = day + timedelta(days=1)
                    finish = datetime.combine(finish_day, closes or time(0, 0), zone)
                else:
                    finish = datetime.combine(day, closes, zone)
                lo, hi = max(begin, start), min(finish, end)
                if lo < hi:
                    found.append((lo, hi))
            day += timedelta(days=1)
    return merge(found)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


class _Calendar:
    """One technician's bookings, sorted, with minutes per local day."""

    def __init__(self, name: str, zone: ZoneInfo, bookings: Iterable[Booking]) -> None:
        self.name = name
        self.zone = zone
        self.bookings: list[Booking] = []
        self.starts: list[datetime] = []
        self.day_minutes: dict[date, float] = defaultdict(float)
        self.total = 0.0
        # Bumped by every booking: what was found about this calendar before holds while the
        # version does.
        self.version = 0
        self._free: tuple[datetime, Booking | None] | None = None
        self._ready: datetime | None = None
        for booking in sorted(bookings, key=lambda b: b.start):
            self.add(booking)

    def add(self, booking: Booking) -> None:
        self.version += 1
        self._free = self._ready = None
        at = bisect.bisect(self.starts, booking.start)
        self.starts.insert(at, booking.start)
        self.bookings.insert(at, booking)
        minutes = (booking.end - booking.start).total_seconds() / 60 + booking.travel_minutes
        self.day_minutes[booking.start.astimezone(self.zone).date()] += minutes
        self.total += minutes

    def free_from(self, start: datetime, length: timedelta) -> tuple[datetime, Booking | None]:
        """The first moment from ``start`` with ``length`` free of bookings, and the booking
        that ends there (None when that moment is ``start`` itself). No visit of this
        calendar can start earlier, whatever its site, windows and travel."""
        if self._free is None:
            moment, ending = start, None
            for booking in self.bookings:
                if booking.end <= moment:
                    continue
                if booking.start >= moment + length:
                    break
                moment, ending = booking.end, booking
            self._free = (moment, ending)
        return self._free

    def ready(
        self, start: datetime, length: timedelta, hours: Sequence[Interval], cap: float
    ) -> datetime:
        """A moment before which this calendar can take no visit at all, whatever its site:
        the first free moment (``free_from``), moved on to the first working hours with room
        for a visit and then to the first local day with ``cap`` minutes left for one, until
        neither moves it. Past the last working hours, the end of the last (nothing fits).

        With many technicians, most have no room left on the day the next visit could be:
        their first free moment is that evening, but this moment is the next morning.
        """
        if self._ready is None:
            moment = self.free_from(start, length)[0]
            minutes = length.total_seconds() / 60
            while True:
                at = bisect.bisect_left(hours, moment, key=lambda span: span[1] - length)
                while at < len(hours) and hours[at][1] - max(hours[at][0], moment) < length:
                    at += 1
                if at == len(hours):
                    moment = hours[-1][1] if hours else moment
                    break
                moment = max(moment, hours[at][0])
                day = moment.astimezone(self.zone).date()
                if self.day_minutes.get(day, 0.0) + minutes <= cap:
                    break
                moment = datetime.combine(day + timedelta(days=1), time(0, 0), self.zone)
            self._ready = moment
        return self._ready

    def neighbours(self, moment: datetime) -> tuple[Booking | None, Booking | None]:
        at = bisect.bisect(self.starts, moment)
        before = self.bookings[at - 1] if at else None
        after = self.bookings[at] if at < len(self.bookings) else None
        return before, after

    def ends_within(self, lo: datetime, hi: datetime) -> list[Booking]:
        # Bookings never overlap, so sorting by start sorts by end too; one that ends by
        # ``hi`` started before it.
        at = bisect.bisect_left(self.starts, lo - timedelta(days=1))
        stop = bisect.bisect_right(self.starts, hi)
        return [b for b in self.bookings[at:stop] if lo <= b.end <= hi]


def plan_visits(
    jobs: Sequence[MachineJob],
    technicians: Sequence[str],
    *,
    rules: ScheduleRules,
    start: datetime,
    booked: Iterable[Booking] = (),
    travel: Callable[[str, str], float] | None = None,
) -> Plan:
    """Book a visit for every machine of ``jobs``, from ``start`` on.

    Args:
        jobs: The machines to visit.
        technicians: Who may be booked.
        rules: Visit length, travel, working hours, day cap, horizon.
        start: The earliest moment a visit may begin.
        booked: Visits already planned (other waves), which stay as they are.
        travel: Minutes between two sites; default ``rules.travel_minutes`` between two
            different sites and 0 within a site.

    Returns:
        The new visits, and the serials no slot within the horizon could take.
    """

    def default_travel(a: str, b: str) -> float:
        return 0.0 if a == b else rules.travel_minutes

    minutes_between = travel_to = travel or default_travel
    zone = ZoneInfo(rules.timezone)
    end = start + timedelta(days=rules.horizon_days)
    length = timedelta(minutes=rules.visit_minutes)
    hours = window_intervals(rules.working_hours, rules.timezone, start, end)
    by_name: dict[str, list[Booking]] = defaultdict(list)
    for booking in booked:
        by_name[booking.technician].append(booking)
    calendars = [_Calendar(name, zone, by_name[name]) for name in technicians]
    site_windows: dict[str, list[Interval]] = {}
    for job in jobs:
        if job.site not in site_windows:
            windows = window_intervals(job.windows, job.timezone, start, end)
            site_windows[job.site] = intersect(windows, hours)

    def first_window(job: MachineJob) -> datetime:
        spans = site_windows[job.site]
        return spans[0][0] if spans else end

    plan = Plan()
    # Per technician and site, the first window that may still take a visit: bookings are
    # only ever added, so a window with no room for a site's visit never gets any.
    first_open: dict[tuple[str, str], int] = {}
    # Per technician and site, what the search found and the calendar's version then.
    searched: dict[tuple[int, str], tuple[int, tuple[datetime, float] | None]] = {}
    cap = rules.max_day_minutes

    def ready(index: int) -> datetime:
        return calendars[index].ready(start, length, hours, cap)

    # The technicians in two orders: by the moment before which they can take no visit
    # (``ready``), and by the minutes they have booked.
    by_ready = sorted(
        (ready(index), calendar.total, index) for index, calendar in enumerate(calendars)
    )
    by_total = sorted((calendar.total, index) for index, calendar in enumerate(calendars))

    def ask(
        job: MachineJob,
        windows: Sequence[Interval],
        best: _Choice | None,
        index: int,
        earliest: datetime,
        total: float,
    ) -> _Choice | None:
        """``best``, or the technician at ``index`` when they beat it; ``earliest`` is a moment
        before which they cannot take the visit."""
        calendar = calendars[index]
        key = (calendar.name, job.site)
        first = first_open.get(key, 0)
        if first >= len(windows):
            return best
        if best is not None:
            bound = max(
                earliest, windows[first][0], _not_before(calendar, job, start, length, travel_to)
            )
            if (bound, total, index) >= best[:3]:
                return best
        known = searched.get((index, job.site))
        if known is not None and known[0] == calendar.version:
            found = known[1]
        else:
            found, first_open[key] = _earliest(
                calendar, job, windows, first, length, rules, minutes_between
            )
            searched[index, job.site] = (calendar.version, found)
        if found is not None and (best is None or (found[0], total, index) < best[:3]):
            return (found[0], total, index, found[1])
        return best

    for job in sorted(jobs, key=lambda j: (first_window(j), j.site, j.serial)):
        windows = site_windows[job.site]
        # The technician booked is the one free earliest, then the least busy, then the first
        # named: the least of every technician's (moment, minutes booked, position). A
        # technician is asked only when a lower bound on their moment could still beat the
        # best found: the window they may still take, their ``ready``, the travel from the
        # visit before. With many technicians, most are never asked about a machine, and who
        # is asked changes only the time the choice takes.
        best: _Choice | None = None

        opens = windows[0][0] if windows else end
        # Those ready by the site's first window can all start there at the earliest: the
        # least busy first, until the next could not beat the best even at that window.
        for total, index in by_total:
            if best is not None and (opens, total, index) >= best[:3]:
                break
            if ready(index) <= opens:
                best = ask(job, windows, best, index, opens, total)
        # Those ready later, the earliest ready first, until the next could not beat the best.
        after = bisect.bisect_right(by_ready, (opens, math.inf, len(calendars)))
        for earliest, total, index in itertools.islice(by_ready, after, None):
            if best is not None and (earliest, total, index) >= best[:3]:
                break
            best = ask(job, windows, best, index, earliest, total)
        if best is None:
            plan.unplanned.append(job.serial)
            continue
        moment, total, chosen, travel_before = best
        calendar = calendars[chosen]
        booking = Booking(
            calendar.name, job.serial, job.site, moment, moment + length, travel_before
        )
        del by_ready[bisect.bisect_left(by_ready, (ready(chosen), total, chosen))]
        del by_total[bisect.bisect_left(by_total, (total, chosen))]
        calendar.add(booking)
        bisect.insort(by_ready, (ready(chosen), calendar.total, chosen))
        bisect.insort(by_total, (calendar.total, chosen))
        plan.visits.append(booking)
    return plan


def _not_before(
    calendar: _Calendar,
    job: MachineJob,
    start: datetime,
    length: timedelta,
    travel: Callable[[str, str], float],
) -> datetime:
    """A moment before which the calendar cannot take ``job``'s visit.

    The visit starts at the calendar's first free moment at the earliest, after the travel
    from the visit ending there; or, in a later gap, after a booking that ends at least
    ``length`` after that moment.
    """
    moment, ending = calendar.free_from(start, length)
    if ending is None:
        return moment
    return moment + min(timedelta(minutes=travel(ending.site, job.site)), length)


def _earliest(
    calendar: _Calendar,
    job: MachineJob,
    windows: Sequence[Interval],
    first: int,
    length: timedelta,
    rules: ScheduleRules,
    travel: Callable[[str, str], float],
) -> tuple[tuple[datetime, float] | None, int]:
    """The earliest moment from ``windows[first:]`` the visit fits the calendar, with the
    travel before it, and the index of the window it is in (or of the end, when none)."""
    for index in range(first, len(windows)):
        lo, hi = windows[index]
        if hi - lo < length:
            continue
        candidates = {lo}
        for booking in calendar.ends_within(lo - timedelta(hours=24), hi):
            candidates.add(booking.end + timedelta(minutes=travel(booking.site, job.site)))
        for moment in sorted(candidates):
            if moment < lo or moment + length > hi:
                continue
            fits = _fits(calendar, job, moment, length, rules, travel)
            if fits is not None:
                return (moment, fits), index
    return None, len(windows)


def _fits(
    calendar: _Calendar,
    job: MachineJob,
    moment: datetime,
    length: timedelta,
    rules: ScheduleRules,
    travel: Callable[[str, str], float],
) -> float | None:
    """The travel minutes before the visit when it fits the calendar there, else None."""
    before, after = calendar.neighbours(moment)
    travel_before = 0.0
    if before is not None:
        travel_before = travel(before.site, job.site)
        if before.end + timedelta(minutes=travel_before) > moment:
            return None
    if after is not None:
        back = travel(job.site, after.site)
        if moment + length + timedelta(minutes=back) > after.start:
            return None
    day = moment.astimezone(calendar.zone).date()
    used = calendar.day_minutes.get(day, 0.0)
    if used + length.total_seconds() / 60 + travel_before > rules.max_day_minutes:
        return None
    return travel_before
