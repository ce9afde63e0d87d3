"""The campaign: phases, activities, waves and their gates, the schedule, the shutdown."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute, allow
from fleetup.api.deps import db, server, write_context
from fleetup.api.schemas import RowId
from fleetup.campaigns import presenting, report, service, shutdown, waves
from fleetup.campaigns.report import CampaignReport
from fleetup.campaigns.schemas import (
    ActivityUpdate,
    BlockersOut,
    CampaignIn,
    CampaignOut,
    GateEventOut,
    MemberOut,
    MembersIn,
    ReasonIn,
    ShutdownIn,
    VisitOut,
    WaveOut,
    WaveUpdate,
)
from fleetup.core.context import Ctx
from fleetup.core.security import Role

router = APIRouter(route_class=GuardedRoute, tags=["campaigns"])
read = allow(*READERS)
manage = allow(Role.manager)
WaveCode = Annotated[str, Path(pattern=r"^[A-Z][0-9]{1,2}$", examples=["E1"])]
Day = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]
VisitStatus = Literal["planned", "in_progress", "done", "cancelled"]


def _out(ctx: Ctx, campaign_id: int) -> CampaignOut:
    return presenting.campaign_out(ctx.session, service.get(ctx.session, campaign_id=campaign_id))


@router.post(
    "/campaigns",
    response_model=CampaignOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[manage],
)
def create_campaign(
    body: CampaignIn, request: Request, ctx: Ctx = Depends(write_context)
) -> CampaignOut:
    """A campaign from chart 1: phases B-F, their activities, waves D1, D2, E1-E3."""
    campaign = service.create_from_template(ctx, server(request).library, body)
    ctx.session.commit()
    return _out(ctx, campaign.id)


@router.get("/campaigns", response_model=list[CampaignOut], dependencies=[read])
def list_campaigns(session: Session = Depends(db)) -> list[CampaignOut]:
    return [presenting.campaign_out(session, c) for c in service.get_all(session)]


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, dependencies=[read])
def get_campaign(campaign_id: RowId, session: Session = Depends(db)) -> CampaignOut:
    return presenting.campaign_out(session, service.get(session, campaign_id=campaign_id))


@router.post("/campaigns/{campaign_id}/start", response_model=CampaignOut, dependencies=[manage])
def start_campaign(campaign_id: RowId, ctx: Ctx = Depends(write_context)) -> CampaignOut:
    service.start(ctx, campaign_id=campaign_id)
    ctx.session.commit()
    return _out(ctx, campaign_id)


@router.patch(
    "/campaigns/{campaign_id}/activities/{code}",
    response_model=CampaignOut,
    dependencies=[manage],
)
def update_activity(
    campaign_id: RowId, code: str, body: ActivityUpdate, ctx: Ctx = Depends(write_context)
) -> CampaignOut:
    service.update_activity(ctx, campaign_id=campaign_id, code=code, data=body)
    ctx.session.commit()
    return _out(ctx, campaign_id)


@router.patch(
    "/campaigns/{campaign_id}/waves/{code}", response_model=WaveOut, dependencies=[manage]
)
def update_wave(
    campaign_id: RowId, code: WaveCode, body: WaveUpdate, ctx: Ctx = Depends(write_context)
) -> WaveOut:
    """Change the wave's size or membership rule and start (before it starts), or its gate."""
    wave = waves.update_wave(ctx, campaign_id=campaign_id, code=code, data=body)
    ctx.session.commit()
    return presenting.wave_out(ctx.session, wave)


@router.get(
    "/campaigns/{campaign_id}/waves/{code}/members",
    response_model=list[MemberOut],
    dependencies=[read],
)
def wave_members(
    campaign_id: RowId, code: WaveCode, session: Session = Depends(db)
) -> list[MemberOut]:
    wave = waves.get_wave(session, campaign_id=campaign_id, code=code)
    return presenting.members_out(session, wave)


@router.post(
    "/campaigns/{campaign_id}/waves/{code}/members",
    response_model=list[MemberOut],
    dependencies=[manage],
)
def join_wave(
    campaign_id: RowId,
    code: WaveCode,
    body: MembersIn,
    request: Request,
    ctx: Ctx = Depends(write_context),
) -> list[MemberOut]:
    """Add machines to a wave still open; a running wave deploys to them at once."""
    parts = server(request)
    waves.add_members(
        ctx,
        parts.library,
        campaign_id=campaign_id,
        code=code,
        serials=body.serials,
        base_url=parts.settings.effective_base_url,
    )
    ctx.session.commit()
    wave = waves.get_wave(ctx.session, campaign_id=campaign_id, code=code)
    return presenting.members_out(ctx.session, wave)


def _decision(name: str, summary: str) -> None:
    def route(
        campaign_id: RowId,
        code: WaveCode,
        body: ReasonIn,
        request: Request,
        ctx: Ctx = Depends(write_context),
    ) -> WaveOut:
        parts = server(request)
        if name == "retry":
            waves.retry(
                ctx,
                parts.library,
                campaign_id=campaign_id,
                code=code,
                reason=body.reason,
                base_url=parts.settings.effective_base_url,
            )
        else:
            getattr(waves, name)(ctx, campaign_id=campaign_id, code=code, reason=body.reason)
        ctx.session.commit()
        wave = waves.get_wave(ctx.session, campaign_id=campaign_id, code=code)
        return presenting.wave_out(ctx.session, wave)

    route.__name__ = f"{name}_wave"
    route.__doc__ = summary
    router.add_api_route(
        f"/campaigns/{{campaign_id}}/waves/{{code}}/{name}",
        route,
        methods=["POST"],
        response_model=WaveOut,
        dependencies=[manage],
        summary=summary,
    )


_decision("approve", "Open the wave's gate: the next wave may start.")
_decision("pause", "Pause the wave: its queued deployments are held.")
_decision("resume", "Resume a paused wave; the failures so far are accepted.")
_decision("abort", "Stop the wave for good: queued deployments and visits are cancelled.")
_decision("retry", "Deploy again to the wave's failed machines only.")


@router.get(
    "/campaigns/{campaign_id}/gate-events",
    response_model=list[GateEventOut],
    dependencies=[read],
)
def gate_events(campaign_id: RowId, session: Session = Depends(db)) -> list[GateEventOut]:
    service.get(session, campaign_id=campaign_id)
    return presenting.gate_events_out(session, campaign_id)


@router.get("/campaigns/{campaign_id}/visits", response_model=list[VisitOut], dependencies=[read])
def visits(
    campaign_id: RowId,
    technician: str | None = None,
    day: Day = None,
    status: VisitStatus | None = None,
    session: Session = Depends(db),
) -> list[VisitOut]:
    """Technicians' visits, planned and actual; ``day`` in the campaign's time zone;
    ``status`` one of them (a phone asks for what is still ``planned``)."""
    campaign = service.get(session, campaign_id=campaign_id)
    return presenting.visits_out(session, campaign, technician=technician, day=day, status=status)


@router.get("/campaigns/{campaign_id}/shutdown", response_model=BlockersOut, dependencies=[read])
def shutdown_gate(campaign_id: RowId, session: Session = Depends(db)) -> BlockersOut:
    """What still keeps the old system on (E4)."""
    return shutdown.blockers(session, campaign_id=campaign_id)


@router.post("/campaigns/{campaign_id}/shutdown", response_model=BlockersOut, dependencies=[manage])
def shut_down(
    campaign_id: RowId, body: ShutdownIn, ctx: Ctx = Depends(write_context)
) -> BlockersOut:
    """Record the old system's shutdown; refused while anything blocks it."""
    shutdown.shut_down(ctx, campaign_id=campaign_id, data=body)
    ctx.session.commit()
    return shutdown.blockers(ctx.session, campaign_id=campaign_id)


@router.get("/campaigns/{campaign_id}/report", response_model=CampaignReport, dependencies=[read])
def campaign_report(
    campaign_id: RowId, request: Request, session: Session = Depends(db)
) -> CampaignReport:
    """Per-wave success, step durations against budget, problems, satisfaction, incidents."""
    return report.build(session, server(request).library, campaign_id=campaign_id)
