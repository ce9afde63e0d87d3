"""The SOP: its charts, and the instances that run them (above all each machine's upgrade)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute, allow
from fleetup.api.deps import db, server, write_context
from fleetup.api.schemas import RowId
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.fleet import service as fleet
from fleetup.sop.mermaid import definition_to_mermaid
from fleetup.upgrades import presenting, service
from fleetup.upgrades.schemas import EventResult, InstanceIn, InstanceOut

router = APIRouter(route_class=GuardedRoute, tags=["sop"])
read = allow(*READERS)
act = allow(Role.manager, Role.technician, Role.on_call)
Language = Annotated[Literal["zh-TW", "en"], Query(description="Language of the labels.")]

EVENT_EXAMPLE = {
    "type": "step_finished",
    "node": "F",
    "result": "ok",
    "evidence": {"text": "backup verified", "numbers": {"bytes": 1048576}},
}


@router.get("/sop/charts", dependencies=[read])
def list_charts(request: Request) -> list[dict[str, str]]:
    library = server(request).library
    return [
        {
            "id": chart,
            "version": library.current(chart).version,
            "title_zh_tw": library.current(chart).title.zh_tw,
            "title_en": library.current(chart).title.en,
        }
        for chart in library.charts
    ]


@router.get("/sop/charts/{chart_id}/mermaid", response_class=PlainTextResponse, dependencies=[read])
def chart_mermaid(chart_id: str, request: Request, lang: Language = "zh-TW") -> str:
    return definition_to_mermaid(server(request).library.current(chart_id), lang)


@router.post(
    "/machines/{serial}/upgrades",
    response_model=InstanceOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[allow(Role.manager, Role.technician)],
)
def start_upgrade(
    serial: str, request: Request, ctx: Ctx = Depends(write_context), lang: Language = "en"
) -> InstanceOut:
    library = server(request).library
    instance = service.start_upgrade(ctx, library, serial=serial)
    ctx.session.commit()
    return presenting.describe(ctx.session, library, instance, lang)


@router.get("/machines/{serial}/upgrades", response_model=list[InstanceOut], dependencies=[read])
def list_upgrades(
    serial: str, request: Request, session: Session = Depends(db), lang: Language = "en"
) -> list[InstanceOut]:
    machine = fleet.get_machine(session, serial=serial)
    library = server(request).library
    return [
        presenting.describe(session, library, instance, lang)
        for instance in service.get_all(session, machine_id=machine.id)
    ]


@router.post(
    "/sop/instances",
    response_model=InstanceOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[act],
)
def start_instance(
    body: InstanceIn, request: Request, ctx: Ctx = Depends(write_context), lang: Language = "en"
) -> InstanceOut:
    """Start chart 4 (a problem), 5 (satisfaction) or 6 (an emergency) about a subject."""
    library = server(request).library
    instance = service.start_about(
        ctx,
        library,
        chart_id=body.chart_id,
        subject_kind=body.subject_kind,
        subject_ref=body.subject_ref,
        entry=body.entry,
    )
    ctx.session.commit()
    return presenting.describe(ctx.session, library, instance, lang)


@router.get("/sop/instances", response_model=list[InstanceOut], dependencies=[read])
def list_instances(
    request: Request,
    chart: str | None = None,
    state: Annotated[
        Literal["running", "waiting", "completed"] | None, Query(alias="status")
    ] = None,
    session: Session = Depends(db),
    lang: Language = "en",
) -> list[InstanceOut]:
    library = server(request).library
    return [
        presenting.describe(session, library, instance, lang)
        for instance in service.get_all(session, chart_id=chart, status=state)
    ]


# A phone that keeps its own record of what it posted needs no history in every answer.
History = Annotated[
    bool, Query(description="False: an empty ``history``; the steps and what is due stay.")
]


@router.get("/sop/instances/{instance_id}", response_model=InstanceOut, dependencies=[read])
def get_instance(
    instance_id: RowId,
    request: Request,
    session: Session = Depends(db),
    lang: Language = "en",
    history: History = True,
) -> InstanceOut:
    instance = service.get(session, instance_id=instance_id)
    return presenting.describe(session, server(request).library, instance, lang, history=history)


@router.post("/sop/instances/{instance_id}/events", response_model=EventResult, dependencies=[act])
def post_event(
    instance_id: RowId,
    request: Request,
    event: Annotated[dict[str, Any], Body(examples=[EVENT_EXAMPLE])],
    ctx: Ctx = Depends(write_context),
    lang: Language = "en",
    history: History = True,
) -> EventResult:
    """Apply one event: ``step_started``, ``step_finished``, ``check_passed``,
    ``check_failed``, ``decision_taken`` or ``resumed``. ``at`` defaults to now and
    ``actor`` to the caller."""
    library = server(request).library
    steps = service.Steps(ctx, library, instance_id=instance_id)
    effects = steps.post(event)
    instance = steps.store()
    ctx.session.commit()
    return EventResult(
        instance=presenting.describe(
            ctx.session, library, instance, lang, history=history, state=steps.state
        ),
        effects=[effect.model_dump(mode="json") for effect in effects],
    )


@router.get(
    "/sop/instances/{instance_id}/mermaid",
    response_class=PlainTextResponse,
    dependencies=[read],
)
def instance_mermaid(
    instance_id: RowId, request: Request, session: Session = Depends(db), lang: Language = "zh-TW"
) -> str:
    instance = service.get(session, instance_id=instance_id)
    return presenting.mermaid(session, server(request).library, instance, lang)
