"""The technician's on-site pages, phone-sized: today's machines, steps, checks, signature.

The machine page shows chart 2 as a checklist: what is due, with a button for each event
the technician may post (start, finish, a ✅ check, a decision's outcome); the agent's steps
fill in by themselves, because the panel polls like the machine page does (204 while
nothing changed). Every button is a form post with the CSRF token, applied through the
upgrades service, so the page obeys the same engine as the API.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from fleetup.api.access import GuardedRoute
from fleetup.api.deps import db, server
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, InvalidInput, NotFound
from fleetup.core.security import Role
from fleetup.customers import acceptances, notices
from fleetup.customers.links import Links
from fleetup.sop.model import Lang
from fleetup.upgrades import presenting
from fleetup.upgrades import service as upgrades
from fleetup.web.guard import PageError, csrf_protected, signed_in
from fleetup.web.language import N_
from fleetup.web.rendering import Page, page
from fleetup.web.upgrade_pages import machine_or_404

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
on_site = signed_in(Role.technician, Role.manager)
POLL_SECONDS = 3
LOCAL_ZONE = ZoneInfo("Asia/Taipei")
# How far ahead the day page shows the visits to come.
UPCOMING_DAYS = 14
# The events a technician may post from the checklist; anything else is refused.
EVENT_TYPES = ("step_started", "step_finished", "check_passed", "check_failed", "decision_taken")


def _lang(current: Page) -> Lang:
    return "zh-TW" if current.language.code == "zh-TW" else "en"


def today_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The start and end of the technician's working day (the sites' local day)."""
    local = now.astimezone(LOCAL_ZONE)
    start = datetime.combine(local.date(), time(0), tzinfo=LOCAL_ZONE)
    return start, start + timedelta(days=1)


def _visit_row(session: Session, visit: Any) -> dict[str, Any]:
    """A visit as the day page shows it: when, which machine, where, the customer's answer."""
    machine = notices.machine_of(session, visit)
    return {
        "machine_id": machine.id,
        "serial": machine.serial,
        "model": machine.model,
        "site": machine.site.name,
        "customer": machine.site.customer.name,
        "start": visit.visit_start.astimezone(LOCAL_ZONE),
        "end": visit.visit_end.astimezone(LOCAL_ZONE),
        "answer": visit.answer,
    }


def todays_machines(session: Session, *, username: str, now: datetime) -> list[dict[str, Any]]:
    """The technician's machines today whose upgrade runs, in the order of their visits."""
    start, end = today_bounds(now)
    rows = []
    for visit in notices.visits_between(session, technician=username, start=start, end=end):
        row = _visit_row(session, visit)
        instance = upgrades.active_upgrade(session, machine_id=row["machine_id"])
        if instance is not None:
            rows.append({**row, "current": instance.current_node})
    return rows


def upcoming_visits(session: Session, *, username: str, now: datetime) -> list[dict[str, Any]]:
    """The technician's visits after today and within ``UPCOMING_DAYS``, in order."""
    _, end = today_bounds(now)
    return [
        _visit_row(session, visit)
        for visit in notices.visits_between(
            session, technician=username, start=end, end=end + timedelta(days=UPCOMING_DAYS)
        )
    ]


def panel_context(
    session: Session, request: Request, *, serial: str, current: Page
) -> dict[str, Any]:
    """What ``technician_panel.html`` needs: the running upgrade as a checklist."""
    machine = machine_or_404(session, serial)
    instance = upgrades.active_upgrade(session, machine_id=machine.id)
    context: dict[str, Any] = {
        "serial": serial,
        "poll_seconds": POLL_SECONDS,
        "upgrade": None,
        "since": 0,
        "running": {},
        "elapsed": {},
        "completed": False,
    }
    if instance is None:
        latest = upgrades.latest_upgrade(session, machine_id=machine.id)
        context["completed"] = latest is not None and latest.status == "completed"
        context["since"] = latest.transitions if latest else 0
        return context
    library = server(request).library
    described = presenting.describe(session, library, instance, _lang(current))
    state = upgrades.state_of(instance)
    running = {
        run.node: run.attempts[-1].started_at
        for run in state.runs
        if run.status == "in_progress" and run.attempts
    }
    now = server(request).clock.now()
    context.update(
        upgrade=described,
        since=instance.transitions,
        running={node: at.isoformat() for node, at in running.items()},
        # Seconds on the server's clock; the page counts on from there, whatever its own clock.
        elapsed={node: max(0, int((now - at).total_seconds())) for node, at in running.items()},
    )
    return context


@router.get("/technician", dependencies=on_site)
def today(
    request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    assert current.principal is not None
    now = server(request).clock.now()
    username = current.principal.username
    return current.render(
        "technician_today.html",
        machines=todays_machines(session, username=username, now=now),
        upcoming=upcoming_visits(session, username=username, now=now),
        upcoming_days=UPCOMING_DAYS,
        nav="technician",
    )


@router.get("/technician/machines/{serial}", dependencies=on_site)
def machine_page(
    serial: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    context = panel_context(session, request, serial=serial, current=current)
    return current.render("technician_machine.html", nav="technician", **context)


@router.get("/technician/machines/{serial}/panel", dependencies=on_site)
def machine_panel(
    serial: str,
    request: Request,
    since: int = -1,
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    found = machine_or_404(session, serial)
    latest = upgrades.latest_upgrade(session, machine_id=found.id)
    if latest is not None and latest.transitions == since:
        return current.finish(Response(status_code=204))
    context = panel_context(session, request, serial=serial, current=current)
    return current.render("technician_panel.html", **context)


@router.post(
    "/technician/machines/{serial}/events", dependencies=[*on_site, Depends(csrf_protected)]
)
def post_event(
    serial: str,
    request: Request,
    type: str = Form(...),
    node: str = Form(...),
    outcome: str = Form(""),
    text: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    assert current.principal is not None
    if type not in EVENT_TYPES:
        raise PageError(400, N_("Unknown action"), N_("This button does not exist any more."))
    parts = server(request)
    machine = machine_or_404(session, serial)
    instance = upgrades.active_upgrade(session, machine_id=machine.id)
    if instance is None:
        raise PageError(
            409,
            N_("No upgrade is running"),
            N_("Machine %(serial)s has no running upgrade."),
            serial=serial,
        )
    event: dict[str, Any] = {"type": type, "node": node}
    if type == "decision_taken":
        event["outcome"] = outcome
    if text.strip() and type != "step_started":
        event["evidence"] = {"text": text.strip()[:2000]}
    ctx = Ctx(session=session, actor=current.principal.actor, clock=parts.clock)
    try:
        upgrades.post_event(ctx, parts.library, instance_id=instance.id, event=event)
    except (Conflict, InvalidInput) as error:
        raise PageError(
            409,
            N_("The step could not be recorded"),
            N_(
                "The upgrade moved on meanwhile (%(reason)s). The page shows where it stands "
                "now; try again from there."
            ),
            reason=str(error),
        ) from error
    session.commit()
    return current.finish(RedirectResponse(f"/technician/machines/{serial}", status_code=303))


@router.get("/technician/machines/{serial}/sign", dependencies=on_site)
def sign_page(
    serial: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    machine = machine_or_404(session, serial)
    try:
        acceptances.at_acceptance(session, machine=machine)
    except Conflict as error:
        raise PageError(
            409,
            N_("Not ready for acceptance"),
            N_("Machine %(serial)s is not at the acceptance step (T) yet."),
            serial=serial,
        ) from error
    return current.render(
        "customer_sign.html",
        machine=machine,
        action=f"/technician/machines/{serial}/sign",
        problem="",
        signer_name="",
    )


@router.post("/technician/machines/{serial}/sign", dependencies=[*on_site, Depends(csrf_protected)])
def sign(
    serial: str,
    request: Request,
    signer_name: str = Form(""),
    signature: str = Form(""),
    current: Page = Depends(page),
    session: Session = Depends(db),
) -> Response:
    assert current.principal is not None
    parts = server(request)
    machine = machine_or_404(session, serial)
    ctx = Ctx(session=session, actor=current.principal.actor, clock=parts.clock)
    try:
        acceptance = acceptances.sign(
            ctx,
            parts.library,
            serial=serial,
            signer_name=signer_name,
            png=acceptances.decode_data_url(signature),
            via="technician",
            links=Links(parts.signer, parts.settings.effective_base_url),
        )
    except InvalidInput as error:
        session.rollback()
        return current.render(
            "customer_sign.html",
            status_code=422,
            machine=machine,
            action=f"/technician/machines/{serial}/sign",
            problem=error.problems[0].field if error.problems else "signature",
            signer_name=signer_name,
        )
    except (Conflict, NotFound) as error:
        raise PageError(
            409,
            N_("Not ready for acceptance"),
            N_("Machine %(serial)s is not at the acceptance step (T) yet."),
            serial=serial,
        ) from error
    session.commit()
    return current.finish(
        RedirectResponse(f"/acceptances/{acceptance.id}/certificate", status_code=303)
    )
