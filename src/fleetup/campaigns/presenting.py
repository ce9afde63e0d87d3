"""Campaigns as the API and the pages show them: plan next to what happened."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fleetup.campaigns import deployments, service, waves
from fleetup.campaigns.models import Campaign, Visit, Wave
from fleetup.campaigns.schemas import (
    ActivityOut,
    CampaignOut,
    CountsOut,
    GateEventOut,
    MemberOut,
    PhaseOut,
    VisitOut,
    WaveOut,
)
from fleetup.devices.service import public_id
from fleetup.fleet.models import Machine
from fleetup.upgrades import service as upgrades


def _span(campaign: Campaign, first: int, last: int) -> tuple[datetime, datetime]:
    return service.week_start(campaign, first), service.week_start(campaign, last + 1)


def wave_out(session: Session, wave: Wave, counts: CountsOut | None = None) -> WaveOut:
    """The wave as the API shows it; ``counts``, when the caller read them already."""
    return WaveOut(
        code=wave.code,
        title_zh_tw=wave.title_zh_tw,
        title_en=wave.title_en,
        status=wave.status,
        status_reason=wave.status_reason,
        selection=wave.selection,
        gate=wave.gate,
        gate_state=wave.gate_state,
        planned_start=wave.planned_start,
        started_at=wave.started_at,
        finished_at=wave.finished_at,
        counts=counts if counts is not None else waves.counts(session, wave_id=wave.id),
    )


def campaign_out(session: Session, campaign: Campaign) -> CampaignOut:
    phases = service.phases_of(session, campaign_id=campaign.id)
    codes = {phase.id: phase.code for phase in phases}
    campaign_waves = waves.waves_of(session, campaign_id=campaign.id)
    counts = waves.counts_of(session, wave_ids=[wave.id for wave in campaign_waves])
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        release_version=campaign.release_version,
        starts_on=campaign.starts_on,
        timezone=campaign.timezone,
        status=campaign.status,
        schedule=campaign.schedule,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        shutdown_at=campaign.shutdown_at,
        phases=[
            PhaseOut(
                code=p.code,
                title_zh_tw=p.title_zh_tw,
                title_en=p.title_en,
                first_week=p.first_week,
                last_week=p.last_week,
                planned_start=_span(campaign, p.first_week, p.last_week)[0],
                planned_end=_span(campaign, p.first_week, p.last_week)[1],
                actual_start=p.actual_start,
                actual_end=p.actual_end,
            )
            for p in phases
        ],
        activities=[
            ActivityOut(
                code=a.code,
                phase=codes[a.phase_id],
                title_zh_tw=a.title_zh_tw,
                title_en=a.title_en,
                performer=a.performer,
                owner=a.owner,
                status=a.status,
                first_week=a.first_week,
                last_week=a.last_week,
                planned_start=_span(campaign, a.first_week, a.last_week)[0],
                planned_end=_span(campaign, a.first_week, a.last_week)[1],
                actual_start=a.actual_start,
                actual_end=a.actual_end,
                note=a.note,
            )
            for a in service.activities_of(session, campaign_id=campaign.id)
        ],
        waves=[wave_out(session, wave, counts[wave.id]) for wave in campaign_waves],
    )


def members_out(session: Session, wave: Wave) -> list[MemberOut]:
    out = []
    for member, action, instance in deployments.progress(session, wave_id=wave.id):
        machine = session.get(Machine, member.machine_id)
        assert machine is not None
        out.append(
            MemberOut(
                serial=machine.serial,
                customer=machine.site.customer.code,
                site=machine.site.code,
                model=machine.model,
                status=member.status,
                late=member.late,
                attempts=member.attempts,
                action_id=public_id("act", action.id) if action is not None else None,
                instance_id=member.instance_id,
                current_node=instance.current_node if instance is not None else None,
                joined_at=member.joined_at,
                finished_at=member.finished_at,
                note=member.note,
            )
        )
    return out


def gate_events_out(session: Session, campaign_id: int) -> list[GateEventOut]:
    return [
        GateEventOut(
            wave=code,
            at=event.at,
            actor=event.actor,
            kind=event.kind,
            reason=event.reason,
            counts=event.counts,
        )
        for event, code in waves.gate_events(session, campaign_id=campaign_id)
    ]


def day_bounds(campaign: Campaign, day: str) -> tuple[datetime, datetime]:
    """The UTC bounds of a calendar day in the campaign's time zone."""
    start = datetime.combine(
        datetime.strptime(day, "%Y-%m-%d").date(), time(0, 0), ZoneInfo(campaign.timezone)
    ).astimezone(UTC)
    return start, start + timedelta(days=1)


def visits_between(
    session: Session, campaign: Campaign, *, start: datetime, end: datetime
) -> list[Visit]:
    """The campaign's visits planned to begin from ``start`` until ``end``, cancelled or not."""
    rows = deployments.visits_for(session, campaign_id=campaign.id, day_start=start, day_end=end)
    return [visit for visit, _, _ in rows]


def visit_out(visit: Visit, machine: Machine, wave_code: str, instance_id: int | None) -> VisitOut:
    return VisitOut(
        id=visit.id,
        wave=wave_code,
        serial=machine.serial,
        customer=machine.site.customer.code,
        site=machine.site.code,
        site_name=machine.site.name,
        technician=visit.technician,
        planned_start=visit.planned_start,
        planned_end=visit.planned_end,
        travel_minutes=visit.travel_minutes,
        actual_start=visit.actual_start,
        actual_end=visit.actual_end,
        status=visit.status,
        instance_id=instance_id,
    )


def visits_out(
    session: Session,
    campaign: Campaign,
    *,
    technician: str | None = None,
    day: str | None = None,
    status: str | None = None,
) -> list[VisitOut]:
    bounds = day_bounds(campaign, day) if day else (None, None)
    rows = deployments.visits_for(
        session,
        campaign_id=campaign.id,
        technician=technician,
        day_start=bounds[0],
        day_end=bounds[1],
        status=status,
    )
    latest = upgrades.latest_upgrade_ids(session, (machine.id for _, machine, _ in rows))
    return [
        visit_out(visit, machine, code, latest.get(machine.id)) for visit, machine, code in rows
    ]
