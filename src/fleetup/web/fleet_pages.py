"""The machine list (filtered live with htmx) and one machine's page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from fleetup.api.access import READERS, GuardedRoute
from fleetup.api.deps import db, server
from fleetup.fleet import service
from fleetup.fleet.schemas import MachineFilter, MachineOut
from fleetup.web.guard import signed_in
from fleetup.web.language import MachineState
from fleetup.web.params import PageOffset
from fleetup.web.rendering import Page, page
from fleetup.web.upgrade_pages import machine_or_404, panel_context

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
readers = signed_in(*READERS)
PAGE_SIZE = 50
_STATES = frozenset(s.value for s in MachineState)


@dataclass(frozen=True)
class Filters:
    """The list's filters as the form holds them; ``site`` is "CUSTOMER/SITE"."""

    customer: str = ""
    site: str = ""
    state: str = ""
    q: str = ""

    def query(self, offset: int = 0) -> str:
        pairs = {k: v for k, v in vars(self).items() if v}
        if offset:
            pairs["offset"] = str(offset)
        return urlencode(pairs)


def _matching(session: Session, filters: Filters, offset: int) -> tuple[list[MachineOut], int]:
    """One page of machines that pass every filter, and how many pass in all.

    Site codes are unique only within a customer, so the form names a site with its
    customer; a site of another customer than the one chosen matches nothing.
    """
    site_customer, _, site_code = filters.site.rpartition("/")
    if site_customer and filters.customer and site_customer != filters.customer:
        return [], 0
    state = MachineState(filters.state) if filters.state in _STATES else None
    where = MachineFilter(
        customer=filters.customer or site_customer or None,
        site=site_code or None,
        state=state,
        q=filters.q or None,
    )
    found = service.get_all_machines(session, where=where, limit=PAGE_SIZE, offset=offset)
    return [service.machine_out(m) for m in found.items], found.total


@router.get("/machines", dependencies=readers)
def machines(
    request: Request,
    current: Page = Depends(page),
    session: Session = Depends(db),
    customer: str = "",
    site: str = "",
    state: str = "",
    q: str = "",
    offset: PageOffset = 0,
) -> Response:
    filters = Filters(customer.strip(), site.strip(), state.strip(), q.strip()[:64])
    start = offset
    rows, total = _matching(session, filters, start)
    values: dict[str, Any] = {
        "filters": filters,
        "machines": rows,
        "total": total,
        "offset": start,
        "page_size": PAGE_SIZE,
        "nav": "machines",
    }
    # htmx asks for the rows only; a history restore after a cache miss needs the whole page.
    partial = request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )
    if partial:
        response = current.render("_machine_rows.html", oob=True, **values)
    else:
        response = current.render(
            "machines.html",
            oob=False,
            customers=service.get_all_customers(session),
            sites=service.get_all_sites(session),
            states=list(MachineState),
            **values,
        )
    response.headers["Vary"] = "HX-Request"
    return response


@router.get("/machines/{serial}", dependencies=readers)
def machine(
    serial: str, request: Request, current: Page = Depends(page), session: Session = Depends(db)
) -> Response:
    found = machine_or_404(session, serial)
    site = found.site
    return current.render(
        "machine.html",
        machine=service.machine_out(found),
        site=site,
        customer=site.customer,
        contacts=list(site.customer.contacts),
        windows=list(site.maintenance_windows or []),
        nav="machines",
        **panel_context(
            session, server(request).library, serial=serial, machine_id=found.id, current=current
        ),
    )
