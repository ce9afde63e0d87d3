"""The delivery log: every notification, its recipient, channel, attempts and outcome.

Channels show only their redacted label; the log is where someone on call checks that an alert
really went out, or why it did not (no channel, the last error, when the next try is).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from fleetup.api.access import GuardedRoute
from fleetup.api.deps import db
from fleetup.core.security import Role
from fleetup.notify import service
from fleetup.web.guard import signed_in
from fleetup.web.language import N_
from fleetup.web.params import PageOffset
from fleetup.web.rendering import Page, page

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
readers = signed_in(Role.manager, Role.on_call)
PAGE_SIZE = 50

STATUS_LABELS = {
    "queued": N_("Waiting to be sent"),
    "delivered": N_("Delivered"),
    "failed": N_("Sending failed"),
    "no_channel": N_("No channel"),
}


@router.get("/notifications", dependencies=readers)
def delivery_log(
    current: Page = Depends(page),
    session: Session = Depends(db),
    status: str = "",
    template: str = "",
    offset: PageOffset = 0,
) -> Response:
    chosen = status if status in STATUS_LABELS else ""
    start = offset
    rows, total = service.get_all(
        session,
        status=chosen or None,
        template=template.strip()[:100] or None,
        limit=PAGE_SIZE,
        offset=start,
    )
    pairs = [(name, value) for name, value in (("status", chosen), ("template", template)) if value]
    return current.render(
        "notifications.html",
        nav="notifications",
        rows=rows,
        total=total,
        offset=start,
        page_size=PAGE_SIZE,
        status=chosen,
        template_filter=template,
        statuses=STATUS_LABELS,
        counts=service.counts(session),
        query=urlencode(pairs),
    )
