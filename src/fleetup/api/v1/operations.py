"""Operations: problems, alerts, incidents and the data-anomaly runbook."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute, allow
from fleetup.api.deps import db, server, write_context
from fleetup.api.schemas import RowId
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.operations import alerts, incidents, presenting, problems, runbook
from fleetup.operations.schemas import (
    AlertOut,
    ComplianceOut,
    IncidentOut,
    MoveIn,
    ProblemIn,
    ProblemOut,
    ProblemStepOut,
    ReviewIn,
    RunbookStepIn,
    SilenceIn,
    SilenceOut,
    StepIn,
    StepResultOut,
    TaskIn,
    TaskOut,
)

router = APIRouter(route_class=GuardedRoute, tags=["operations"])
read = allow(*READERS)
act = allow(Role.manager, Role.technician, Role.on_call)


def _promise(request: Request) -> int:
    return server(request).settings.ack_promise_min


# -- problems ------------------------------------------------------------------------------


@router.post(
    "/problems",
    response_model=ProblemOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[act],
)
def open_problem(
    body: ProblemIn, request: Request, ctx: Ctx = Depends(write_context)
) -> ProblemOut:
    """Open a problem on a machine; its chart 4 instance starts on the type's branch."""
    problem = problems.open_problem(
        ctx, server(request).library, serial=body.serial, type=body.type, summary=body.summary
    )
    ctx.session.commit()
    return presenting.problem_out(ctx.session, problem)


@router.get("/problems", response_model=list[ProblemOut], dependencies=[read])
def list_problems(
    serial: str | None = None,
    state: Annotated[Literal["open", "solved", "closed"] | None, Query(alias="status")] = None,
    session: Session = Depends(db),
) -> list[ProblemOut]:
    return [
        presenting.problem_out(session, p, with_steps=False)
        for p in problems.get_all(session, serial=serial, status=state)
    ]


@router.get("/problems/{problem_id}", response_model=ProblemOut, dependencies=[read])
def get_problem(problem_id: RowId, session: Session = Depends(db)) -> ProblemOut:
    return presenting.problem_out(session, problems.get(session, problem_id=problem_id))


@router.post("/problems/{problem_id}/steps", response_model=StepResultOut, dependencies=[act])
def act_on_problem(
    problem_id: RowId, body: StepIn, request: Request, ctx: Ctx = Depends(write_context)
) -> StepResultOut:
    """Carry out the step due now (C1, C2, D1, D2, E1, E2, F1, F2, G, H)."""
    problem, step, secret = problems.act(
        ctx, server(request).library, problem_id=problem_id, node=body.node, payload=body.payload
    )
    ctx.session.commit()
    return StepResultOut(
        problem=presenting.problem_out(ctx.session, problem),
        step=ProblemStepOut.model_validate(step),
        secret=secret,
    )


# -- alerts and silences -------------------------------------------------------------------


@router.get("/alerts", response_model=list[AlertOut], dependencies=[read])
def list_alerts(
    state: Annotated[
        Literal["active", "open", "muted", "resolved"] | None, Query(alias="status")
    ] = None,
    session: Session = Depends(db),
) -> list[AlertOut]:
    return [AlertOut.model_validate(a) for a in alerts.get_all(session, status=state)]


@router.post(
    "/alerts/silences",
    response_model=SilenceOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[act],
)
def add_silence(body: SilenceIn, ctx: Ctx = Depends(write_context)) -> SilenceOut:
    row = alerts.silence(
        ctx,
        rule=body.rule,
        subject_ref=body.subject_ref,
        duration=timedelta(minutes=body.minutes),
        reason=body.reason,
    )
    ctx.session.commit()
    return SilenceOut.model_validate(row)


@router.get("/alerts/silences", response_model=list[SilenceOut], dependencies=[read])
def list_silences(request: Request, session: Session = Depends(db)) -> list[SilenceOut]:
    now = server(request).clock.now()
    return [SilenceOut.model_validate(s) for s in alerts.silences(session, active_at=now)]


# -- incidents -----------------------------------------------------------------------------


@router.get("/incidents", response_model=list[IncidentOut], dependencies=[read])
def list_incidents(
    request: Request, open_only: bool = False, session: Session = Depends(db)
) -> list[IncidentOut]:
    promise = _promise(request)
    return [
        presenting.incident_out(session, i, promise, full=False)
        for i in incidents.get_all(session, open_only=open_only)
    ]


@router.get("/incidents/compliance", response_model=ComplianceOut, dependencies=[read])
def compliance_report(
    request: Request, since: datetime, until: datetime, session: Session = Depends(db)
) -> ComplianceOut:
    """Share acknowledged within the promise, median and p90 time to acknowledge."""
    parts = server(request)
    found = incidents.compliance(
        session,
        since=since,
        until=until,
        promise=timedelta(minutes=_promise(request)),
        now=parts.clock.now(),
    )
    return ComplianceOut(**found.__dict__, promise_minutes=_promise(request))


@router.get("/incidents/{incident_id}", response_model=IncidentOut, dependencies=[read])
def get_incident(
    incident_id: RowId, request: Request, session: Session = Depends(db)
) -> IncidentOut:
    incident = incidents.get(session, incident_id=incident_id)
    return presenting.incident_out(session, incident, _promise(request))


@router.post("/incidents/{incident_id}/acknowledge", response_model=IncidentOut, dependencies=[act])
def acknowledge(
    incident_id: RowId, request: Request, ctx: Ctx = Depends(write_context)
) -> IncidentOut:
    incident = incidents.acknowledge(ctx, server(request).library, incident_id=incident_id)
    ctx.session.commit()
    return presenting.incident_out(ctx.session, incident, _promise(request))


@router.post("/incidents/{incident_id}/state", response_model=IncidentOut, dependencies=[act])
def move_incident(
    incident_id: RowId, body: MoveIn, request: Request, ctx: Ctx = Depends(write_context)
) -> IncidentOut:
    incident = incidents.move(
        ctx, server(request).library, incident_id=incident_id, state=body.state
    )
    ctx.session.commit()
    return presenting.incident_out(ctx.session, incident, _promise(request))


@router.post("/incidents/{incident_id}/review", response_model=IncidentOut, dependencies=[act])
def review_incident(
    incident_id: RowId, body: ReviewIn, request: Request, ctx: Ctx = Depends(write_context)
) -> IncidentOut:
    """Record the root cause and prevention tasks; the incident moves to review."""
    incident = incidents.record_review(
        ctx,
        server(request).library,
        incident_id=incident_id,
        root_cause=body.root_cause,
        tasks_in=[(t.title, t.owner, t.due_on) for t in body.tasks],
    )
    ctx.session.commit()
    return presenting.incident_out(ctx.session, incident, _promise(request))


@router.post(
    "/incidents/{incident_id}/tasks",
    response_model=TaskOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[act],
)
def add_task(incident_id: RowId, body: TaskIn, ctx: Ctx = Depends(write_context)) -> TaskOut:
    task = incidents.add_task(
        ctx, incident_id=incident_id, title=body.title, owner=body.owner, due_on=body.due_on
    )
    ctx.session.commit()
    return TaskOut.model_validate(task)


@router.post("/incidents/tasks/{task_id}/done", response_model=TaskOut, dependencies=[act])
def finish_task(task_id: RowId, ctx: Ctx = Depends(write_context)) -> TaskOut:
    task = incidents.finish_task(ctx, task_id=task_id)
    ctx.session.commit()
    return TaskOut.model_validate(task)


@router.post("/incidents/{incident_id}/runbook", response_model=IncidentOut, dependencies=[act])
def run_runbook_step(
    incident_id: RowId, body: RunbookStepIn, request: Request, ctx: Ctx = Depends(write_context)
) -> IncidentOut:
    """Run one step of the data-anomaly runbook (J-O) by hand; a done step is left alone."""
    parts = server(request)
    incident = runbook.run_step(
        ctx,
        parts.library,
        incident_id=incident_id,
        node=body.node,
        pause_after=parts.settings.anomaly_wave_pause,
        evidence=body.evidence,
    )
    ctx.session.commit()
    return presenting.incident_out(ctx.session, incident, _promise(request))
