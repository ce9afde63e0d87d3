"""The technicians' day plans, for the manager: each technician's visits on one day, planned
against actual.

``GET /campaigns/{id}/schedule?day=YYYY-MM-DD`` shows, per technician, the day's visits in the
order they are booked: the planned window (65 minutes by chart 3, plus the travel before it),
the machine and its site, when the visit really began and ended, and how far that was from the
plan. A strip of the day (06:00-22:00 in the campaign's zone) draws each visit's planned and
actual spans as the Gantt does weeks. A row of the coming days with their numbers of visits
leads to the busy ones. The plan is the worker's (``fleetup.campaigns.deployments``); this page
only reads it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from fleetup.api.access import GuardedRoute
from fleetup.api.deps import db, server
from fleetup.campaigns import presenting
from fleetup.campaigns.schemas import VisitOut
from fleetup.web.campaign_pages import CampaignId, campaign_or_404, readers
from fleetup.web.guard import PageError
from fleetup.web.language import N_
from fleetup.web.rendering import Page, page

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
# The strip of the day: 16 hours from 06:00, as the Gantt's 16 weeks.
FIRST_HOUR = 6
HOURS = 16
# How many days the row of coming days shows.
DAYS_AHEAD = 14
# Within this many minutes of its plan, a visit began on time.
ON_TIME_MINUTES = 5

LABELS: dict[str, str] = {
    "planned": N_("Planned"),
    "in_progress": N_("In progress"),
    "done": N_("Done"),
    "cancelled": N_("Cancelled"),
}


@dataclass(frozen=True)
class Span:
    """A part of the day's strip, in hours from ``FIRST_HOUR`` (0-16)."""

    start: float
    width: float


@dataclass(frozen=True)
class VisitRow:
    visit: VisitOut
    planned: Span
    actual: Span | None
    # Minutes the visit began after its plan (negative: before it); None until it began.
    late_minutes: int | None


@dataclass(frozen=True)
class TechnicianDay:
    technician: str
    visits: list[VisitRow]
    planned_minutes: int
    actual_minutes: int


def _hours(moment: datetime, day_start: datetime) -> float:
    return max(0.0, min(float(HOURS), (moment - day_start) / timedelta(hours=1) - FIRST_HOUR))


def _span(start: datetime, end: datetime, day_start: datetime) -> Span:
    first = _hours(start, day_start)
    return Span(round(first, 3), round(max(_hours(end, day_start) - first, 0.05), 3))


def day_plan(visits: list[VisitOut], day_start: datetime, now: datetime) -> list[TechnicianDay]:
    """The day's visits grouped by technician (in name order), each with its spans."""
    by_technician: dict[str, list[VisitRow]] = {}
    for visit in visits:
        actual = None
        late = None
        if visit.actual_start is not None:
            actual = _span(visit.actual_start, visit.actual_end or now, day_start)
            late = round((visit.actual_start - visit.planned_start) / timedelta(minutes=1))
        row = VisitRow(
            visit, _span(visit.planned_start, visit.planned_end, day_start), actual, late
        )
        by_technician.setdefault(visit.technician, []).append(row)
    days = []
    for technician in sorted(by_technician):
        rows = by_technician[technician]
        booked = [r for r in rows if r.visit.status != "cancelled"]
        planned_total = sum(
            (r.visit.planned_end - r.visit.planned_start) / timedelta(minutes=1)
            + r.visit.travel_minutes
            for r in booked
        )
        actual_total = sum(
            ((r.visit.actual_end or now) - r.visit.actual_start) / timedelta(minutes=1)
            for r in rows
            if r.visit.actual_start is not None
        )
        days.append(TechnicianDay(technician, rows, round(planned_total), round(actual_total)))
    return days


def _day(text: str | None, today: date) -> date:
    if not text:
        return today
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise PageError(
            400,
            N_("Not a day"),
            N_("%(value)s is not a day; write it as YYYY-MM-DD."),
            value=text,
        ) from error


@router.get("/campaigns/{campaign_id}/schedule", dependencies=readers)
def schedule(
    campaign_id: CampaignId,
    request: Request,
    day: str | None = Query(default=None, max_length=10),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    campaign = campaign_or_404(session, campaign_id)
    place = ZoneInfo(campaign.timezone)
    now = server(request).clock.now()
    today = now.astimezone(place).date()
    shown = _day(day, today)
    day_start, _ = presenting.day_bounds(campaign, shown.isoformat())
    visits = presenting.visits_out(session, campaign, day=shown.isoformat())
    ahead_start, _ = presenting.day_bounds(campaign, today.isoformat())
    coming = Counter(
        visit.planned_start.astimezone(place).date()
        for visit in presenting.visits_between(
            session, campaign, start=ahead_start, end=ahead_start + timedelta(days=DAYS_AHEAD)
        )
        if visit.status != "cancelled"
    )
    return current.render(
        "campaign_schedule.html",
        nav="campaigns",
        campaign=campaign,
        day=shown,
        today=today,
        previous=shown - timedelta(days=1),
        following=shown + timedelta(days=1),
        plans=day_plan(visits, day_start, now),
        coming=[
            (today + timedelta(days=n), coming[today + timedelta(days=n)])
            for n in range(DAYS_AHEAD)
        ],
        hours=HOURS,
        first_hour=FIRST_HOUR,
        now_hour=_hours(now, day_start) if shown == today else None,
        on_time=ON_TIME_MINUTES,
        status_label=lambda status: current.gettext(LABELS[status]) if status in LABELS else status,
        clock=lambda moment: moment.astimezone(place).strftime("%H:%M") if moment else "—",
    )
