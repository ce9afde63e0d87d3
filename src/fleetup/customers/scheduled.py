"""The customer side's worker jobs: notices and reminders when due, surveys after upgrades.

Each job opens its own session per piece of work and commits it, so one machine's failure
does not hold back the others, and a second run finds nothing left to do.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from fleetup.core import audit
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict
from fleetup.customers import notices, surveys
from fleetup.customers.links import Links
from fleetup.worker import Job

if TYPE_CHECKING:
    from fleetup.api.deps import Server

ACTOR = "system:customers"
# Where a server keeps the audit position up to which the survey job has read the upgrades.
SURVEYS_FOLLOWED = "_customers_surveys_followed"
log = logging.getLogger(__name__)


def send_due_notices(parts: Server) -> int:
    """Send the visit notices and reminders whose planned time has come."""
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor=ACTOR, clock=parts.clock)
        sent = notices.send_due(
            ctx,
            signer=parts.signer,
            base_url=parts.settings.effective_base_url,
            library=parts.library,
        )
        session.commit()
    return sent


def open_due_surveys(parts: Server) -> int:
    """Open the satisfaction survey of every machine whose upgrade completed without one.

    The worker runs it when an upgrade changed and completed without a survey since its last
    run. A process reads every completed upgrade at its first run, and afterwards only the
    upgrades changed since the audit position its last run read up to. A survey refused (the
    machine's newer upgrade is still running) keeps that position where it was, so the next
    run, when another upgrade completes, tries it again.
    """
    since: int | None = getattr(parts, SURVEYS_FOLLOWED, None)
    with parts.sessions() as session:
        # Read first: every change numbered up to here is committed and seen by the query.
        head = audit.position(session)
        serials = surveys.completed_without_survey(session, changed_after=since)
    opened = 0
    refused = False
    links = Links(parts.signer, parts.settings.effective_base_url)
    for serial in serials:
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor=ACTOR, clock=parts.clock)
            try:
                surveys.open_survey(ctx, serial=serial, library=parts.library, links=links)
            except Conflict as error:
                log.warning("survey for %s not opened: %s", serial, error)
                refused = True
                continue
            session.commit()
            opened += 1
    if not refused:
        setattr(parts, SURVEYS_FOLLOWED, head)
    return opened


JOBS = [
    Job(
        "customers.send_due_notices",
        timedelta(minutes=1),
        send_due_notices,
        pending=notices.due_pending,
    ),
    Job(
        "customers.open_due_surveys",
        timedelta(minutes=5),
        open_due_surveys,
        changes=("sop_instances",),
        changed=surveys.surveys_changed,
    ),
]
