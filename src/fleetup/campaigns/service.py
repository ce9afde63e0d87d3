"""Campaigns: creating one from chart 1, reading it, and keeping its activities and phases.

Waves and their gates live in ``waves.py``; the old system's shutdown in ``shutdown.py``.
Phases and activities carry planned weeks from chart 1 and actual dates from what happened:
an activity that is a wave is started and finished by its wave, the shutdown activity by the
shutdown, the others by the people who own them; a phase starts with its first activity and
ends with its last.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.campaigns.models import Activity, Campaign, Phase, Wave
from fleetup.campaigns.schedule import ScheduleRules
from fleetup.campaigns.schemas import ActivityUpdate, CampaignIn
from fleetup.campaigns.template import plan_from
from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.db import ById
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.releases import service as releases
from fleetup.upgrades.library import SopLibrary

PROJECT_CHART = "chart1"
WAVE_START_HOUR = time(9, 0)


def week_start(campaign: Campaign, week: int) -> datetime:
    """Monday 00:00 of ``week`` (1-based) in the campaign's time zone, as UTC."""
    day = campaign.starts_on + timedelta(weeks=week - 1)
    return datetime.combine(day, time(0, 0), ZoneInfo(campaign.timezone)).astimezone(UTC)


def _wave_start(starts_on: date, week: int, zone: str) -> datetime:
    day = starts_on + timedelta(weeks=week - 1)
    return datetime.combine(day, WAVE_START_HOUR, ZoneInfo(zone)).astimezone(UTC)


def create_from_template(ctx: Ctx, library: SopLibrary, data: CampaignIn) -> Campaign:
    """A campaign with chart 1's phases, activities and waves, in ``draft``.

    Raises:
        NotFound: no release ``data.release_version``.
        InvalidInput: ``starts_on`` is not a Monday, or the schedule rules are bad.
    """
    releases.get(ctx.session, version=data.release_version)
    if data.starts_on.weekday() != 0:
        raise InvalidInput(
            f"starts_on {data.starts_on} is a {data.starts_on:%A}; week 1 starts on a Monday",
            [FieldProblem("starts_on", "must be a Monday")],
        )
    try:
        rules = ScheduleRules.model_validate(data.schedule or {})
    except ValidationError as error:
        raise InvalidInput.of(
            "the schedule rules are not valid", error, prefix="schedule."
        ) from error
    plan = plan_from(library.current(PROJECT_CHART))
    campaign = Campaign(
        name=data.name,
        release_version=data.release_version,
        starts_on=data.starts_on,
        timezone=data.timezone,
        status="draft",
        schedule=rules.model_dump(mode="json"),
        created_at=ctx.now(),
    )
    ctx.session.add(campaign)
    ctx.session.flush()
    ctx.audit("create", campaign, None)
    phase_ids: dict[str, int] = {}
    for position, phase_plan in enumerate(plan.phases):
        phase = Phase(
            campaign_id=campaign.id,
            code=phase_plan.code,
            position=position,
            title_zh_tw=phase_plan.title_zh_tw,
            title_en=phase_plan.title_en,
            first_week=phase_plan.first_week,
            last_week=phase_plan.last_week,
        )
        ctx.session.add(phase)
        ctx.session.flush()
        ctx.audit("create", phase, None)
        phase_ids[phase.code] = phase.id
    for position, activity_plan in enumerate(plan.activities):
        activity = Activity(
            campaign_id=campaign.id,
            phase_id=phase_ids[activity_plan.phase],
            code=activity_plan.code,
            position=position,
            title_zh_tw=activity_plan.title_zh_tw,
            title_en=activity_plan.title_en,
            performer=activity_plan.performer,
            first_week=activity_plan.first_week,
            last_week=activity_plan.last_week,
        )
        ctx.session.add(activity)
        ctx.audit("create", activity, None)
    for position, wave_plan in enumerate(plan.waves):
        wave = Wave(
            campaign_id=campaign.id,
            code=wave_plan.code,
            position=position,
            title_zh_tw=wave_plan.title_zh_tw,
            title_en=wave_plan.title_en,
            selection=wave_plan.selection,
            planned_start=_wave_start(data.starts_on, wave_plan.week, data.timezone),
            gate=wave_plan.gate,
        )
        ctx.session.add(wave)
        ctx.audit("create", wave, None)
    ctx.session.flush()
    return campaign


def get(session: Session, *, campaign_id: int) -> Campaign:
    campaign = _CAMPAIGN(session, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}")
    return campaign


_CAMPAIGN = ById(Campaign)


def get_all(session: Session, *, status: str | None = None) -> Sequence[Campaign]:
    query = select(Campaign).order_by(Campaign.id)
    if status:
        query = query.where(Campaign.status == status)
    return session.scalars(query).all()


def phases_of(session: Session, *, campaign_id: int) -> Sequence[Phase]:
    return session.scalars(
        select(Phase).where(Phase.campaign_id == campaign_id).order_by(Phase.position)
    ).all()


def activities_of(session: Session, *, campaign_id: int) -> Sequence[Activity]:
    return session.scalars(
        select(Activity).where(Activity.campaign_id == campaign_id).order_by(Activity.position)
    ).all()


def get_activity(session: Session, *, campaign_id: int, code: str) -> Activity:
    activity = session.scalar(
        select(Activity).where(Activity.campaign_id == campaign_id, Activity.code == code)
    )
    if activity is None:
        raise NotFound(f"campaign {campaign_id} has no activity {code}")
    return activity


def start(ctx: Ctx, *, campaign_id: int) -> Campaign:
    """Set the campaign running: from now on its waves start at their times.

    Raises:
        Conflict: it is not a draft.
    """
    campaign = get(ctx.session, campaign_id=campaign_id)
    if campaign.status != "draft":
        raise Conflict(f"campaign {campaign_id} is {campaign.status}; only a draft starts")
    before = snapshot(campaign)
    campaign.status = "running"
    campaign.started_at = ctx.now()
    ctx.audit("start", campaign, before)
    return campaign


def update_activity(ctx: Ctx, *, campaign_id: int, code: str, data: ActivityUpdate) -> Activity:
    """Change an activity's owner, status or note; its dates follow the status.

    Raises:
        NotFound: no such activity.
        Conflict: the activity is a wave or the shutdown, which move by themselves.
    """
    campaign = get(ctx.session, campaign_id=campaign_id)
    activity = get_activity(ctx.session, campaign_id=campaign_id, code=code)
    fields = data.model_dump(exclude_unset=True)
    if "status" in fields and _moves_by_itself(ctx.session, campaign, code):
        raise Conflict(f"activity {code} follows its wave or the shutdown; act on those instead")
    before = snapshot(activity)
    for name, value in fields.items():
        setattr(activity, name, value)
    _date_activity(activity, ctx.now())
    ctx.audit("update", activity, before)
    follow_phases(ctx, campaign)
    return activity


def _moves_by_itself(session: Session, campaign: Campaign, code: str) -> bool:
    if code == "E4":
        return True
    wave = session.scalar(select(Wave.id).where(Wave.campaign_id == campaign.id, Wave.code == code))
    return wave is not None


def _date_activity(activity: Activity, now: datetime) -> None:
    if activity.status in ("doing", "done") and activity.actual_start is None:
        activity.actual_start = now
    if activity.status == "done" and activity.actual_end is None:
        activity.actual_end = now
    if activity.status != "done":
        activity.actual_end = None
    if activity.status == "todo":
        activity.actual_start = None


def set_activity_status(ctx: Ctx, campaign: Campaign, code: str, status: str) -> None:
    """Move an activity that follows a wave or the shutdown."""
    activity = get_activity(ctx.session, campaign_id=campaign.id, code=code)
    if activity.status == status:
        return
    before = snapshot(activity)
    activity.status = status
    _date_activity(activity, ctx.now())
    ctx.audit("update", activity, before, note="follows the campaign")
    follow_phases(ctx, campaign)


def follow_phases(ctx: Ctx, campaign: Campaign) -> None:
    """Date each phase from its activities, and complete the campaign after the last one."""
    activities = activities_of(ctx.session, campaign_id=campaign.id)
    all_done = bool(activities)
    for phase in phases_of(ctx.session, campaign_id=campaign.id):
        own = [a for a in activities if a.phase_id == phase.id]
        starts = [a.actual_start for a in own if a.actual_start is not None]
        done = bool(own) and all(a.status == "done" for a in own)
        ends = [a.actual_end for a in own if a.actual_end is not None]
        actual_start = min(starts) if starts else None
        actual_end = max(ends) if done and ends else None
        all_done = all_done and done
        if (phase.actual_start, phase.actual_end) != (actual_start, actual_end):
            before = snapshot(phase)
            phase.actual_start, phase.actual_end = actual_start, actual_end
            ctx.audit("update", phase, before)
    if all_done and campaign.status == "running":
        before = snapshot(campaign)
        campaign.status = "completed"
        ctx.audit("complete", campaign, before)
