"""Telling the customer a technician is coming (chart 2 step A), and their answer.

``schedule_notice`` plans a visit: the advance notice goes out ``NOTICE_LEAD`` before the
visit (at once when less time is left) and a reminder the day before. Both are planned send
times on the visit's row; ``send_due`` (run by the worker) hands each one to the outbox when
it falls due, with a signed link on which the customer confirms the date or asks for
another. Rescheduling a machine supersedes its earlier visit, whose link then says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, or_, select
from sqlalchemy.orm import Session, object_session

from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.db import ById, Prepared
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.core.security import Signer
from fleetup.customers.links import LinkRefused, link_path, read_token
from fleetup.customers.models import SiteVisit
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Contact, Machine, Site
from fleetup.notify import service as notify
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary

NOTICE_LEAD = timedelta(days=3)
REMINDER_LEAD = timedelta(days=1)
ANSWERS = ("confirmed", "another_date")


def deliver(
    ctx: Ctx, *, template: str, key: str, to: Sequence[str], params: Mapping[str, Any]
) -> int:
    """Queue a message to the customer in the outbox, in the caller's transaction.

    A customer with no contacts gets nothing, and that is no reason to fail the work.
    """
    if not to:
        return 0
    return notify.send(ctx, template=template, key=key, to=list(to), params=dict(params))


def recipients(machine: Machine) -> list[str]:
    """The customer's contacts for a machine, as outbox addresses."""
    session = object_session(machine)
    if session is None:
        return [f"contact:{contact.id}" for contact in machine.site.customer.contacts]
    if session.autoflush:
        session.flush()
    rows = _CONTACTS_OF_SITE.rows(session.connection(), {"site_id": machine.site_id})
    return [f"contact:{contact_id}" for (contact_id,) in rows]


# Every message to a customer asks this: compiled once, run on the driver's cursor.
_CONTACTS_OF_SITE = Prepared(
    select(Contact.id)
    .join(Site, Site.customer_id == Contact.customer_id)
    .where(Site.id == bindparam("site_id"))
    .order_by(Contact.id)
)


def local(moment: datetime, machine: Machine) -> datetime:
    try:
        zone = ZoneInfo(machine.site.timezone or "Asia/Taipei")
    except (KeyError, ValueError):
        zone = ZoneInfo("Asia/Taipei")
    return moment.astimezone(zone)


def schedule_notice(
    ctx: Ctx,
    *,
    serial: str,
    visit_start: datetime,
    visit_end: datetime,
    expected_minutes: int,
    technician: str = "",
    lead: timedelta = NOTICE_LEAD,
) -> None:
    """Plan a visit to a machine and its notices (advance notice, reminder the day before).

    Args:
        technician: The username of the technician going, shown on their on-site page.
        lead: How long before the visit the notice goes out; at once if less is left.

    Raises:
        NotFound: no machine with that serial.
        InvalidInput: the window ends before it starts, or the duration is not positive.
    """
    machine = fleet.get_machine(ctx.session, serial=serial)
    if visit_end <= visit_start:
        message = "the visit must end after it starts"
        raise InvalidInput(message, [FieldProblem("visit_end", message)])
    if expected_minutes <= 0:
        message = "the expected duration must be at least one minute"
        raise InvalidInput(message, [FieldProblem("expected_minutes", message)])
    now = ctx.now()
    for earlier in active_visits(ctx.session, machine_id=machine.id):
        before = snapshot(earlier)
        earlier.status = "superseded"
        ctx.audit("supersede", earlier, before)
    notice_due = max(now, visit_start - lead)
    visit = SiteVisit(
        machine_id=machine.id,
        technician=technician,
        visit_start=visit_start,
        visit_end=visit_end,
        expected_minutes=expected_minutes,
        status="planned",
        notice_due_at=notice_due,
        reminder_due_at=max(notice_due, visit_start - REMINDER_LEAD),
        answer="",
        answer_note="",
        created_at=now,
    )
    ctx.session.add(visit)
    ctx.session.flush()
    ctx.audit("create", visit, None)


def active_visits(session: Session, *, machine_id: int) -> Sequence[SiteVisit]:
    return session.scalars(
        select(SiteVisit).where(
            SiteVisit.machine_id == machine_id,
            SiteVisit.status.in_(("planned", "notified", "reminded")),
        )
    ).all()


def get_visit(session: Session, *, visit_id: int) -> SiteVisit:
    visit = session.get(SiteVisit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    return visit


def get_all_visits(session: Session, *, serial: str | None = None) -> Sequence[SiteVisit]:
    query = select(SiteVisit).order_by(SiteVisit.visit_start, SiteVisit.id)
    if serial:
        query = query.where(SiteVisit.machine_id == fleet.get_machine(session, serial=serial).id)
    return session.scalars(query).all()


def visits_between(
    session: Session, *, technician: str, start: datetime, end: datetime
) -> Sequence[SiteVisit]:
    """A technician's visits starting in [start, end), in order."""
    return session.scalars(
        select(SiteVisit)
        .where(
            SiteVisit.technician == technician,
            SiteVisit.visit_start >= start,
            SiteVisit.visit_start < end,
            SiteVisit.status != "superseded",
        )
        .order_by(SiteVisit.visit_start, SiteVisit.id)
    ).all()


def _params(visit: SiteVisit, machine: Machine, link: str) -> dict[str, Any]:
    start = local(visit.visit_start, machine)
    end = local(visit.visit_end, machine)
    return {
        "customer": machine.site.customer.name,
        "site": machine.site.name,
        "serial": machine.serial,
        "model": machine.model,
        "date": start.strftime("%Y-%m-%d"),
        "window": f"{start:%H:%M}-{end:%H:%M}",
        "expected_minutes": visit.expected_minutes,
        "link": link,
    }


def _finish_step_a(ctx: Ctx, library: SopLibrary, machine: Machine, text: str) -> None:
    """Chart 2 step A is the notice; when the upgrade still stands there, it is done now."""
    instance = upgrades.active_upgrade(ctx.session, machine_id=machine.id)
    if instance is None or instance.current_node != "A":
        return
    steps = upgrades.Steps(ctx, library, instance_id=instance.id)
    steps.post({"type": "step_started", "node": "A"})
    steps.post({"type": "step_finished", "node": "A", "evidence": {"text": text}})
    steps.store()


def _notice_due(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    return and_(SiteVisit.status == "planned", SiteVisit.notice_due_at <= now)


def _reminder_due(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    return and_(
        SiteVisit.status == "notified",
        SiteVisit.reminder_sent_at.is_(None),
        SiteVisit.reminder_due_at <= now,
    )


def due_pending(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """True when a notice or a reminder is due at ``now`` (``send_due`` has work)."""
    return select(SiteVisit.id).where(or_(_notice_due(now), _reminder_due(now))).exists()


def send_due(ctx: Ctx, *, signer: Signer, base_url: str, library: SopLibrary) -> int:
    """Send every notice and reminder whose time has come; how many were sent."""
    now = ctx.now()
    sent = 0
    due = ctx.session.scalars(
        select(SiteVisit).where(_notice_due(now)).order_by(SiteVisit.id)
    ).all()
    for visit in due:
        machine = ctx.session.get_one(Machine, visit.machine_id)
        link = base_url + link_path(signer, "notice", visit.id)
        before = snapshot(visit)
        visit.status = "notified"
        visit.notice_sent_at = now
        if visit.reminder_due_at <= now:
            # Less than a day to go: the notice is the reminder.
            visit.reminder_sent_at = now
        deliver(
            ctx,
            template="notice_visit",
            key=f"notice:{visit.id}",
            to=recipients(machine),
            params=_params(visit, machine, link),
        )
        ctx.audit("send_notice", visit, before)
        _finish_step_a(ctx, library, machine, f"notice {visit.id} sent for {visit.visit_start}")
        sent += 1
    reminders = ctx.session.scalars(
        select(SiteVisit).where(_reminder_due(now)).order_by(SiteVisit.id)
    ).all()
    for visit in reminders:
        machine = ctx.session.get_one(Machine, visit.machine_id)
        link = base_url + link_path(signer, "notice", visit.id)
        before = snapshot(visit)
        visit.status = "reminded"
        visit.reminder_sent_at = now
        deliver(
            ctx,
            template="notice_reminder",
            key=f"reminder:{visit.id}",
            to=recipients(machine),
            params=_params(visit, machine, link),
        )
        ctx.audit("send_reminder", visit, before)
        sent += 1
    return sent


def open_link(session: Session, *, signer: Signer, token: str, now: datetime) -> SiteVisit:
    """The visit a notice link is about, if the link may still be answered.

    Raises:
        LinkRefused: forged (invalid), the visit has begun or was rescheduled (expired), or
            the customer already answered (used).
    """
    value = read_token(signer, "notice", token)
    visit = _VISIT(session, value) if isinstance(value, int) else None
    if visit is None:
        raise LinkRefused("invalid")
    if visit.answer:
        raise LinkRefused("used")
    if visit.status == "superseded" or now >= visit.visit_start:
        raise LinkRefused("expired")
    return visit


_VISIT = ById(SiteVisit)


def answer(ctx: Ctx, *, visit: SiteVisit, choice: str, note: str = "") -> SiteVisit:
    """Record the customer's answer to a notice: ``confirmed`` or ``another_date``.

    Raises:
        InvalidInput: an unknown answer.
        Conflict: the visit was answered already.
    """
    if choice not in ANSWERS:
        message = "answer 'confirmed' or 'another_date'"
        raise InvalidInput(message, [FieldProblem("answer", message)])
    if visit.answer:
        raise Conflict("this notice was answered already")
    before = snapshot(visit)
    visit.answer = choice
    visit.answer_note = note.strip()[:2000]
    visit.answered_at = ctx.now()
    ctx.audit("answer", visit, before)
    return visit


def machine_of(session: Session, visit: SiteVisit) -> Machine:
    return session.get_one(Machine, visit.machine_id)
