"""The on-call engineer's pages: alerts, incidents and their timelines, problems and playbooks.

``/on-call`` lists what is open with each incident's time left against the response promise
(the page refreshes itself); an incident's page shows its timeline, moves its state and takes
the post-incident review; ``/problems`` lists problems and a problem's page walks its playbook.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute
from fleetup.api.deps import db, server
from fleetup.core.context import Ctx
from fleetup.core.errors import FleetupError, NotFound
from fleetup.core.security import Role
from fleetup.operations import alerts, incidents, presenting, problems
from fleetup.operations.schemas import IncidentOut
from fleetup.web.guard import PageError, csrf_protected, signed_in
from fleetup.web.language import N_
from fleetup.web.params import page_row_id
from fleetup.web.rendering import Page, page

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
readers = signed_in(*READERS)
actors = [*signed_in(Role.manager, Role.technician, Role.on_call), Depends(csrf_protected)]
# An id no row can have gets the page's own "not found", as its lookup words it.
IncidentId = Annotated[
    int,
    page_row_id(
        N_("Incident not found"),
        N_("There is no incident %(number)s. Open the on-call page for the open ones."),
        "number",
    ),
]
ProblemId = Annotated[
    int,
    page_row_id(
        N_("Problem not found"),
        N_("There is no problem %(number)s. Look for it in the problem list."),
        "number",
    ),
]
REFRESH_SECONDS = 30

N_("detected")
N_("acknowledged")
N_("diagnosing")
N_("fixing")
N_("recovered")
N_("review")
N_("closed")
N_("open")
N_("muted")
N_("resolved")
N_("solved")
N_("requested")
N_("done")
N_("failed")
N_("skipped")
N_("reported")
N_("network")
N_("hardware")
N_("software")
N_("user")


def may_act(current: Page) -> bool:
    principal = current.principal
    return principal is not None and principal.role in {
        Role.admin,
        Role.manager,
        Role.technician,
        Role.on_call,
    }


def _ctx(current: Page, request: Request, session: Session) -> Ctx:
    assert current.principal is not None  # the page rules admit only signed-in people
    return Ctx(session=session, actor=current.principal.actor, clock=server(request).clock)


def _timer(incident: IncidentOut, now: Any) -> dict[str, Any]:
    """Seconds left before the promise runs out (negative: overdue), or None once taken."""
    if incident.acknowledged_at is not None or incident.promise_due_at is None:
        return {"left_s": None, "overdue": False}
    left = int((incident.promise_due_at - now).total_seconds())
    return {
        "left_s": left,
        "overdue": left < 0,
        "minutes": abs(left) // 60,
        "seconds": abs(left) % 60,
    }


def _refused(error: FleetupError) -> PageError:
    return PageError(
        error.status,
        N_("That could not be done"),
        N_("%(reason)s Go back, reload the page and try again."),
        reason=error.message,
    )


@router.get("/on-call", dependencies=readers)
def on_call(
    request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    parts = server(request)
    now = parts.clock.now()
    promise = parts.settings.ack_promise_min
    rows = [
        presenting.incident_out(session, i, promise, full=False)
        for i in incidents.get_all(session, open_only=True)
    ]
    return current.render(
        "operations_on_call.html",
        incidents=[(i, _timer(i, now)) for i in rows],
        alerts=alerts.get_all(session, status="active"),
        promise=promise,
        refresh=REFRESH_SECONDS,
        may_act=may_act(current),
        nav="on-call",
    )


def _incident_or_404(session: Session, incident_id: int) -> Any:
    try:
        return incidents.get(session, incident_id=incident_id)
    except NotFound as error:
        raise PageError(
            404,
            N_("Incident not found"),
            N_("There is no incident %(number)s. Open the on-call page for the open ones."),
            number=str(incident_id),
        ) from error


@router.get("/incidents/{incident_id}", dependencies=readers)
def incident_page(
    incident_id: IncidentId,
    request: Request,
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    parts = server(request)
    found = _incident_or_404(session, incident_id)
    out = presenting.incident_out(session, found, parts.settings.ack_promise_min)
    index = incidents.STATES.index(out.state)
    return current.render(
        "operations_incident.html",
        incident=out,
        timer=_timer(out, parts.clock.now()),
        next_states=list(incidents.STATES[index + 1 :]),
        may_act=may_act(current),
        today=parts.clock.now().date() + timedelta(days=14),
        nav="on-call",
    )


@router.post("/incidents/{incident_id}/acknowledge", dependencies=actors)
def acknowledge(
    incident_id: IncidentId,
    request: Request,
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    _incident_or_404(session, incident_id)
    incidents.acknowledge(
        _ctx(current, request, session), server(request).library, incident_id=incident_id
    )
    session.commit()
    return current.finish(RedirectResponse(f"/incidents/{incident_id}", status_code=303))


@router.post("/incidents/{incident_id}/state", dependencies=actors)
def move(
    incident_id: IncidentId,
    request: Request,
    state: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    _incident_or_404(session, incident_id)
    try:
        incidents.move(
            _ctx(current, request, session),
            server(request).library,
            incident_id=incident_id,
            state=state,
        )
    except FleetupError as error:
        raise _refused(error) from error
    session.commit()
    return current.finish(RedirectResponse(f"/incidents/{incident_id}", status_code=303))


@router.post("/incidents/{incident_id}/review", dependencies=actors)
def review(
    incident_id: IncidentId,
    request: Request,
    root_cause: str = Form(""),
    task_title: str = Form(""),
    task_owner: str = Form(""),
    task_due: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    _incident_or_404(session, incident_id)
    tasks: list[tuple[str, str, date]] = []
    try:
        if task_title.strip():
            tasks.append((task_title, task_owner, date.fromisoformat(task_due)))
        incidents.record_review(
            _ctx(current, request, session),
            server(request).library,
            incident_id=incident_id,
            root_cause=root_cause,
            tasks_in=tasks,
        )
    except ValueError as error:
        raise PageError(
            422, N_("That could not be done"), N_("Give the task's due date as YYYY-MM-DD.")
        ) from error
    except FleetupError as error:
        raise _refused(error) from error
    session.commit()
    return current.finish(RedirectResponse(f"/incidents/{incident_id}", status_code=303))


# -- problems ------------------------------------------------------------------------------


@router.get("/problems", dependencies=readers)
def problem_list(current: Page = Depends(page), session: Session = Depends(db)) -> Response:
    rows = [presenting.problem_out(session, p, with_steps=False) for p in problems.get_all(session)]
    return current.render("operations_problems.html", problems=rows, nav="problems")


def _problem_or_404(session: Session, problem_id: int) -> Any:
    try:
        return problems.get(session, problem_id=problem_id)
    except NotFound as error:
        raise PageError(
            404,
            N_("Problem not found"),
            N_("There is no problem %(number)s. Look for it in the problem list."),
            number=str(problem_id),
        ) from error


@router.get("/problems/{problem_id}", dependencies=readers)
def problem_page(
    problem_id: ProblemId, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    found = _problem_or_404(session, problem_id)
    out = presenting.problem_out(session, found)
    return current.render(
        "operations_problem.html",
        problem=out,
        path=list(problems.path_of(found)),
        may_act=may_act(current),
        secret="",
        nav="problems",
    )


def _payload(node: str, form: dict[str, str]) -> dict[str, Any]:
    if form.get("result"):
        return {"result": form["result"], "note": form.get("note", "")}
    if node == "D1":
        checklist = {}
        for line in form.get("checklist", "").splitlines():
            item, _, value = line.partition("=")
            if item.strip():
                checklist[item.strip()] = value.strip().lower() in ("", "yes", "ok", "true", "1")
        return {"checklist": checklist, "note": form.get("note", "")}
    if node == "F1":
        topics = [t.strip() for t in form.get("topics", "").split(",") if t.strip()]
        return {"topics": topics, "trainee": form.get("trainee", "")}
    if node == "F2":
        return {"guidance": form.get("guidance", "")}
    return {"note": form.get("note", ""), "reason": form.get("note", "")}


@router.post("/problems/{problem_id}/steps", dependencies=actors)
def problem_step(
    problem_id: ProblemId,
    request: Request,
    node: str = Form(""),
    result: str = Form(""),
    note: str = Form(""),
    checklist: str = Form(""),
    topics: str = Form(""),
    trainee: str = Form(""),
    guidance: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    _problem_or_404(session, problem_id)
    form = {
        "result": result,
        "note": note,
        "checklist": checklist,
        "topics": topics,
        "trainee": trainee,
        "guidance": guidance,
    }
    try:
        found, _, secret = problems.act(
            _ctx(current, request, session),
            server(request).library,
            problem_id=problem_id,
            node=node,
            payload=_payload(node, form),
        )
    except FleetupError as error:
        raise _refused(error) from error
    session.commit()
    if secret:
        # The spare's enrollment token is shown on this one answer and never again.
        out = presenting.problem_out(session, found)
        return current.render(
            "operations_problem.html",
            problem=out,
            path=list(problems.path_of(found)),
            may_act=may_act(current),
            secret=secret,
            nav="problems",
        )
    return current.finish(RedirectResponse(f"/problems/{problem_id}", status_code=303))
