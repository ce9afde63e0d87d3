"""A machine's upgrade on its page: chart 2 drawn with Mermaid, where it stands, live.

The panel polls ``/machines/{serial}/upgrade?since=N`` every few seconds; the server answers
204 (htmx keeps the panel) while the instance has had N transitions, and the new panel once
another event arrived, so an idle page costs one tiny request per poll.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute
from fleetup.api.deps import db, server
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, NotFound
from fleetup.core.security import Role
from fleetup.fleet import service as fleet
from fleetup.sop.model import Lang
from fleetup.upgrades import presenting
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary
from fleetup.web.guard import PageError, csrf_protected, signed_in
from fleetup.web.language import N_
from fleetup.web.rendering import Page, page

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
readers = signed_in(*READERS)
starters = signed_in(Role.manager, Role.technician)
POLL_SECONDS = 3


def may_start(current: Page) -> bool:
    principal = current.principal
    return principal is not None and principal.role in {Role.admin, Role.manager, Role.technician}


def panel_context(
    session: Session, library: SopLibrary, *, serial: str, machine_id: int, current: Page
) -> dict[str, Any]:
    """What ``_upgrade_panel.html`` needs: the latest upgrade, its chart, and the poll URL."""
    instance = upgrades.latest_upgrade(session, machine_id=machine_id)
    lang: Lang = "zh-TW" if current.language.code == "zh-TW" else "en"
    if instance is None:
        return {
            "upgrade": None,
            "serial": serial,
            "poll_seconds": POLL_SECONDS,
            "since": 0,
            "may_start": may_start(current),
            "chart": "",
        }
    return {
        "upgrade": presenting.describe(session, library, instance, lang),
        "chart": presenting.mermaid(session, library, instance, lang),
        "serial": serial,
        "since": instance.transitions,
        "poll_seconds": POLL_SECONDS,
        "may_start": may_start(current) and instance.status == "completed",
    }


def machine_or_404(session: Session, serial: str) -> Any:
    """The machine with ``serial``, or the friendly 404 page."""
    try:
        return fleet.get_machine(session, serial=serial)
    except NotFound as error:
        raise PageError(
            404,
            N_("Machine not found"),
            N_(
                "There is no machine with serial %(serial)s. Check the serial on the machine's "
                "label, or look for it in the machine list."
            ),
            serial=serial,
        ) from error


@router.get("/machines/{serial}/upgrade", dependencies=readers)
def upgrade_panel(
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
    context = panel_context(
        session, server(request).library, serial=serial, machine_id=found.id, current=current
    )
    return current.render("_upgrade_panel.html", **context)


@router.post("/machines/{serial}/upgrade", dependencies=[*starters, Depends(csrf_protected)])
def start_upgrade(
    serial: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    assert current.principal is not None  # the rule above admits only signed-in people
    parts = server(request)
    ctx = Ctx(session=session, actor=current.principal.actor, clock=parts.clock)
    machine_or_404(session, serial)
    try:
        upgrades.start_upgrade(ctx, parts.library, serial=serial)
    except Conflict as error:
        raise PageError(
            409,
            N_("The upgrade is already running"),
            N_("Machine %(serial)s already has an upgrade in progress; follow it on its page."),
            serial=serial,
        ) from error
    session.commit()
    return current.finish(RedirectResponse(f"/machines/{serial}", status_code=303))
