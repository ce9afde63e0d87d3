"""Technicians' day plans: windows, working hours, travel, the daily cap, no double booking."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetup.campaigns.schedule import (
    Booking,
    MachineJob,
    Plan,
    ScheduleRules,
    _Calendar,
    _earliest,
    intersect,
    plan_visits,
    window_intervals,
)

TAIPEI = ZoneInfo("Asia/Taipei")
START = datetime(2026, 3, 2, 0, 0, tzinfo=TAIPEI).astimezone(UTC)  # a Monday
EVENINGS = ({"days": [0, 1, 2, 3, 4], "start": "18:00", "end": "22:00"},)
NIGHTS = ({"days": [0, 1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00"},)
OFFICE = ({"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"},)


def _local(moment: datetime) -> datetime:
    return moment.astimezone(TAIPEI)


def test_a_window_past_midnight_runs_into_the_next_day() -> None:
    spans = window_intervals(NIGHTS, "Asia/Taipei", START, START + timedelta(days=1))
    assert [(_local(a).hour, _local(b).hour) for a, b in spans] == [(0, 6), (22, 0)]


def test_visits_fall_inside_the_site_window_and_the_working_hours() -> None:
    jobs = [MachineJob(f"M{n}", "site-1", "Asia/Taipei", EVENINGS) for n in range(6)]
    rules = ScheduleRules(
        working_hours=({"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "21:00"},)
    )
    plan = plan_visits(jobs, ["amy"], rules=rules, start=START)
    assert not plan.unplanned
    for visit in plan.visits:
        start, end = _local(visit.start), _local(visit.end)
        assert (start.hour, start.minute) >= (18, 0)
        assert (end.hour, end.minute) <= (21, 0)
    # 18:00-21:00 takes two 65-minute visits a day: three evenings for six machines.
    assert sorted({_local(v.start).date().isoformat() for v in plan.visits}) == [
        "2026-03-02", "2026-03-03", "2026-03-04"
    ]  # fmt: skip


def test_travel_separates_visits_at_two_sites() -> None:
    jobs = [
        MachineJob("A1", "site-a", "Asia/Taipei", OFFICE),
        MachineJob("B1", "site-b", "Asia/Taipei", OFFICE),
    ]
    rules = ScheduleRules(travel_minutes=40)
    plan = plan_visits(jobs, ["amy"], rules=rules, start=START + timedelta(hours=1))
    first, second = sorted(plan.visits, key=lambda v: v.start)
    assert second.start - first.end == timedelta(minutes=40)
    assert second.travel_minutes == 40


def test_a_day_is_never_longer_than_the_cap() -> None:
    jobs = [MachineJob(f"M{n}", "site-1", "Asia/Taipei", OFFICE) for n in range(12)]
    rules = ScheduleRules(max_day_minutes=200)
    plan = plan_visits(jobs, ["amy"], rules=rules, start=START)
    per_day: dict[str, int] = {}
    for visit in plan.visits:
        day = _local(visit.start).date().isoformat()
        per_day[day] = per_day.get(day, 0) + 1
    assert set(per_day.values()) == {3}  # 3 x 65 = 195 <= 200


def test_a_machine_no_window_fits_is_reported_unplanned() -> None:
    jobs = [MachineJob("M1", "site-1", "Asia/Taipei", NIGHTS)]
    rules = ScheduleRules(working_hours=OFFICE)
    plan = plan_visits(jobs, ["amy"], rules=rules, start=START)
    assert plan.unplanned == ["M1"] and plan.visits == []


def test_existing_bookings_are_kept_free() -> None:
    taken = Booking("amy", "X", "site-1", START + timedelta(hours=2), START + timedelta(hours=8))
    jobs = [MachineJob("M1", "site-1", "Asia/Taipei", OFFICE)]
    plan = plan_visits(jobs, ["amy"], rules=ScheduleRules(), start=START, booked=[taken])
    assert plan.visits[0].start >= taken.end


windows = st.sampled_from(
    [EVENINGS, NIGHTS, OFFICE, ({"days": [5], "start": "08:00", "end": "12:00"},)]
)


@given(
    sites=st.lists(windows, min_size=1, max_size=5),
    machines=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=30),
    technicians=st.integers(min_value=1, max_value=3),
    cap=st.integers(min_value=70, max_value=720),
)
def test_no_technician_is_ever_double_booked(
    sites: list[tuple[dict[str, object], ...]], machines: list[int], technicians: int, cap: int
) -> None:
    hours = ({"days": [0, 1, 2, 3, 4, 5], "start": "07:00", "end": "23:00"},)
    rules = ScheduleRules(working_hours=hours, max_day_minutes=cap, travel_minutes=30)
    jobs = [
        MachineJob(f"M{n}", f"site-{index % len(sites)}", "Asia/Taipei", sites[index % len(sites)])
        for n, index in enumerate(machines)
    ]
    names = [f"t{n}" for n in range(technicians)]
    plan = plan_visits(jobs, names, rules=rules, start=START)
    assert len(plan.visits) + len(plan.unplanned) == len(jobs)
    for name in names:
        own = sorted((v for v in plan.visits if v.technician == name), key=lambda v: v.start)
        for a, b in itertools.pairwise(own):
            gap = 0 if a.site == b.site else 30
            assert a.end + timedelta(minutes=gap) <= b.start
        per_day: dict[object, float] = {}
        for visit in own:
            day = _local(visit.start).date()
            per_day[day] = per_day.get(day, 0) + 65 + visit.travel_minutes
            local_start, local_end = _local(visit.start), _local(visit.end)
            assert local_start.hour >= 7 and local_start.weekday() <= 5
            assert (local_end.date() == local_start.date() and local_end.hour < 23) or (
                local_end.hour == 23 and local_end.minute == 0
            )
        assert all(minutes <= cap for minutes in per_day.values())


def _plan_asking_everyone(
    jobs: list[MachineJob],
    technicians: list[str],
    *,
    rules: ScheduleRules,
    start: datetime,
    booked: list[Booking],
) -> Plan:
    """The plan by its definition: for each machine, in the planner's order, every technician
    is searched from their first window, and the least (moment, minutes booked, position)
    takes the visit."""
    travel = lambda a, b: 0.0 if a == b else rules.travel_minutes  # noqa: E731
    zone = ZoneInfo(rules.timezone)
    end = start + timedelta(days=rules.horizon_days)
    length = timedelta(minutes=rules.visit_minutes)
    hours = window_intervals(rules.working_hours, rules.timezone, start, end)
    calendars = [
        _Calendar(name, zone, [b for b in booked if b.technician == name]) for name in technicians
    ]
    spans = {
        job.site: intersect(window_intervals(job.windows, job.timezone, start, end), hours)
        for job in jobs
    }
    plan = Plan()

    def opens(job: MachineJob) -> datetime:
        return spans[job.site][0][0] if spans[job.site] else end

    for job in sorted(jobs, key=lambda j: (opens(j), j.site, j.serial)):
        offers = []
        for index, calendar in enumerate(calendars):
            found, _ = _earliest(calendar, job, spans[job.site], 0, length, rules, travel)
            if found is not None:
                offers.append((found[0], calendar.total, index, found[1]))
        if not offers:
            plan.unplanned.append(job.serial)
            continue
        moment, _, index, before = min(offers)
        booking = Booking(technicians[index], job.serial, job.site, moment, moment + length, before)
        calendars[index].add(booking)
        plan.visits.append(booking)
    return plan


@settings(max_examples=60, deadline=None)
@given(
    sites=st.lists(windows, min_size=1, max_size=6),
    machines=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=40),
    technicians=st.integers(min_value=1, max_value=8),
    cap=st.integers(min_value=70, max_value=720),
    travel=st.sampled_from([0, 30, 90]),
    taken=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=7), st.integers(min_value=0, max_value=14 * 24)
        ),
        max_size=12,
    ),
)
def test_the_planner_books_the_technician_that_asking_every_one_would(
    sites: list[tuple[dict[str, object], ...]],
    machines: list[int],
    technicians: int,
    cap: int,
    travel: int,
    taken: list[tuple[int, int]],
) -> None:
    hours = ({"days": [0, 1, 2, 3, 4, 5], "start": "07:00", "end": "23:00"},)
    rules = ScheduleRules(
        working_hours=hours, max_day_minutes=cap, travel_minutes=travel, horizon_days=21
    )
    jobs = [
        MachineJob(f"M{n}", f"site-{index % len(sites)}", "Asia/Taipei", sites[index % len(sites)])
        for n, index in enumerate(machines)
    ]
    names = [f"t{n}" for n in range(technicians)]
    # Visits of other waves, never overlapping on one technician's calendar.
    booked: list[Booking] = []
    for who, hour in taken:
        begins = START + timedelta(hours=hour)
        visit = Booking(
            names[who % technicians],
            f"X{len(booked)}",
            "site-x",
            begins,
            begins + timedelta(minutes=65),
        )
        if all(
            b.technician != visit.technician or b.end <= visit.start or visit.end <= b.start
            for b in booked
        ):
            booked.append(visit)

    plan = plan_visits(jobs, names, rules=rules, start=START, booked=booked)

    expected = _plan_asking_everyone(jobs, names, rules=rules, start=START, booked=booked)
    assert plan.visits == expected.visits
    assert plan.unplanned == expected.unplanned
