"""The customer side's worker jobs: notices and reminders when due, surveys after upgrades.

Each job opens its own session per piece of work and commits it, so one machine's failure
does not hold back the others, and a second run finds nothing left to do.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict
from fleetup.customers import notices, surveys
from fleetup.customers.links import Links
from fleetup.worker import Job

if TYPE_CHECKING:
    from fleetup.api.deps import Server

ACTOR = "system:customers"
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
    run, and at its first run in a process: a survey refused meanwhile (the machine's newer
    upgrade is still running) is tried again when that upgrade changes.
    """
    with parts.sessions() as session:
        serials = surveys.completed_without_survey(session)
    opened = 0
    links = Links(parts.signer, parts.settings.effective_base_url)
    for serial in serials:
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor=ACTOR, clock=parts.clock)
            try:
                surveys.open_survey(ctx, serial=serial, library=parts.library, links=links)
            except Conflict as error:
                log.warning("survey for %s not opened: %s", serial, error)
                continue
            session.commit()
            opened += 1
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
