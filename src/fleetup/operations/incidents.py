"""Incidents (chart 6): opened by alerts, acknowledged within the promise or escalated.

An alert opens an incident, or joins the open one about the same site or subject. On-call is
told at once; unless someone acknowledges within the promise (15 minutes by default), the
incident escalates to the next person of the chain, then to the managers, again every period.
Each incident runs a chart 6 instance: the system path A-H, or the data-anomaly runbook I-O
(see ``runbook``). Every alert, notification, acknowledgement, action and state change goes on
its timeline; the review records the root cause and prevention tasks with owners.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from fleetup.core.audit import snapshot
from fleetup.core.clock import utc
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.fleet import service as fleet
from fleetup.operations import charting, outside
from fleetup.operations.models import Alert, Incident, IncidentEntry, ReviewTask
from fleetup.operations.monitoring import DATA_ANOMALY
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary

CHART = "chart6"
SYSTEM_PATH = ("B", "C", "D", "E", "F", "G", "H")
DATA_PATH = ("J", "K", "L", "M", "N", "O")
STATES = ("detected", "acknowledged", "diagnosing", "fixing", "recovered", "review", "closed")
# Where the system path stands in each state; the data path is moved by the runbook.
SYSTEM_MARKS: dict[str, charting.Mark] = {
    "detected": ("B", charting.FINISH),
    "acknowledged": ("C", charting.FINISH),
    "diagnosing": ("D", charting.START),
    "fixing": ("E", charting.START),
    "recovered": ("F", charting.FINISH),
    "review": ("G", charting.START),
    "closed": ("H", charting.FINISH),
}
DATA_MARKS: dict[str, charting.Mark] = {
    "recovered": ("N", charting.FINISH),
    "review": ("O", charting.START),
    "closed": ("O", charting.FINISH),
}


@dataclass(frozen=True)
class Escalation:
    """The promise and who is told after it: usernames in turn, then the manager role."""

    promise: timedelta
    chain: tuple[str, ...] = ()

    def target(self, level: int) -> str:
        """Recipient of escalation number ``level`` (0 is the first after the promise)."""
        if level < len(self.chain):
            return f"user:{self.chain[level]}"
        return "role:manager"


def path_of(incident: Incident) -> tuple[str, ...]:
    return DATA_PATH if incident.kind == "data" else SYSTEM_PATH


# -- reads ---------------------------------------------------------------------------------


def get(session: Session, *, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def get_all(session: Session, *, open_only: bool = False, limit: int = 200) -> Sequence[Incident]:
    query = select(Incident).order_by(Incident.id.desc()).limit(limit)
    if open_only:
        query = query.where(Incident.state != "closed")
    return session.scalars(query).all()


def timeline(session: Session, *, incident_id: int) -> Sequence[IncidentEntry]:
    return session.scalars(
        select(IncidentEntry)
        .where(IncidentEntry.incident_id == incident_id)
        .order_by(IncidentEntry.at, IncidentEntry.id)
    ).all()


def tasks(session: Session, *, incident_id: int) -> Sequence[ReviewTask]:
    return session.scalars(
        select(ReviewTask).where(ReviewTask.incident_id == incident_id).order_by(ReviewTask.id)
    ).all()


def alerts_of(session: Session, *, incident_id: int) -> Sequence[Alert]:
    return session.scalars(
        select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id)
    ).all()


# -- writes --------------------------------------------------------------------------------


def note(
    ctx: Ctx, incident: Incident, kind: str, text: str, detail: dict[str, Any] | None = None
) -> IncidentEntry:
    """Add one line to the incident's timeline."""
    entry = IncidentEntry(
        incident_id=incident.id,
        at=ctx.now(),
        kind=kind,
        actor=ctx.actor,
        text=text,
        detail=dict(detail or {}),
    )
    ctx.session.add(entry)
    ctx.session.flush()
    ctx.audit("create", entry, None)
    return entry


def tell(
    ctx: Ctx, incident: Incident, *, template: str, key: str, to: Sequence[str], why: str
) -> None:
    """Queue a notification about the incident and put it on the timeline."""
    params = {
        "incident_id": incident.id,
        "title": incident.title,
        "kind": incident.kind,
        "state": incident.state,
        "site": incident.site,
        "subject": incident.subject_ref,
        "detected_at": utc(incident.detected_at).isoformat(timespec="seconds"),
        "level": incident.escalation_level,
    }
    try:
        queued = outside.notify(ctx, template=template, key=key, to=to, params=params)
        text = f"{why}: {', '.join(to)}" if queued else f"{why}: {', '.join(to)} (not queued)"
    except InvalidInput as error:
        # A chain naming a user who is gone must not stop the escalation of the incident.
        text = f"{why}: {', '.join(to)} (not queued: {error.message})"
    note(ctx, incident, "notified", text, {"to": list(to), "template": template, "key": key})


def _find_open(session: Session, *, kind: str, site: str, subject_ref: str) -> Incident | None:
    query = select(Incident).where(Incident.state != "closed", Incident.kind == kind)
    if kind == "system" and site:
        query = query.where((Incident.site == site) | (Incident.subject_ref == subject_ref))
    else:
        query = query.where(Incident.subject_ref == subject_ref)
    return session.scalar(query.order_by(Incident.id))


def open_for_alert(
    ctx: Ctx, library: SopLibrary, escalation: Escalation, *, alert: Alert
) -> tuple[Incident, bool]:
    """Open an incident for an alert, or join the open one about the same site or subject.

    Returns:
        The incident, and whether it was opened now.
    """
    kind = "data" if alert.rule == DATA_ANOMALY else "system"
    found = _find_open(ctx.session, kind=kind, site=alert.site, subject_ref=alert.subject_ref)
    if found is not None:
        before = snapshot(alert)
        alert.incident_id = found.id
        ctx.audit("join", alert, before)
        note(ctx, found, "alert", f"{alert.rule} {alert.subject_ref}", {"alert_id": alert.id})
        return found, False
    title = f"{alert.rule.replace('_', ' ')}: {alert.subject_ref}"
    incident = open_incident(
        ctx,
        library,
        escalation,
        kind=kind,
        title=title,
        subject_kind=alert.subject_kind,
        subject_ref=alert.subject_ref,
        site=alert.site,
    )
    before = snapshot(alert)
    alert.incident_id = incident.id
    ctx.audit("join", alert, before)
    note(ctx, incident, "alert", f"{alert.rule} {alert.subject_ref}", {"alert_id": alert.id})
    return incident, True


def open_incident(
    ctx: Ctx,
    library: SopLibrary,
    escalation: Escalation,
    *,
    kind: str,
    title: str,
    subject_kind: str,
    subject_ref: str,
    site: str = "",
) -> Incident:
    """Open an incident, start its chart 6 instance and tell on-call at once."""
    if kind not in ("system", "data"):
        raise InvalidInput("unknown incident kind", [FieldProblem("kind", "system or data")])
    now = ctx.now()
    machine_id = None
    if subject_kind == "machine":
        machine_id = fleet.get_machine(ctx.session, serial=subject_ref).id
    instance = upgrades.start(
        ctx,
        library,
        chart_id=CHART,
        subject_kind=subject_kind,
        subject_ref=subject_ref,
        machine_id=machine_id,
        entry="I" if kind == "data" else "A",
    )
    ctx.session.flush()
    incident = Incident(
        kind=kind,
        title=title[:300],
        subject_kind=subject_kind,
        subject_ref=subject_ref,
        site=site,
        state="detected",
        instance_id=instance.id,
        detected_at=now,
        escalation_level=0,
        next_escalation_at=now + escalation.promise,
    )
    ctx.session.add(incident)
    ctx.session.flush()
    ctx.audit("create", incident, None)
    if kind == "system":
        charting.reach(ctx, library, instance, SYSTEM_PATH, SYSTEM_MARKS["detected"])
    note(ctx, incident, "state", "detected")
    tell(
        ctx,
        incident,
        template="incident_opened",
        key=f"incident-{incident.id}-opened",
        to=["role:on_call"],
        why="on-call told",
    )
    return incident


def acknowledge(ctx: Ctx, library: SopLibrary, *, incident_id: int) -> Incident:
    """Someone took the incident: the promise is kept and escalation stops. Safe to repeat."""
    incident = get(ctx.session, incident_id=incident_id)
    if incident.acknowledged_at is not None:
        return incident
    before = snapshot(incident)
    incident.acknowledged_at = ctx.now()
    incident.acknowledged_by = ctx.actor
    incident.next_escalation_at = None
    if incident.state == "detected":
        incident.state = "acknowledged"
    ctx.audit("acknowledge", incident, before)
    if incident.kind == "system":
        _walk(ctx, library, incident, SYSTEM_MARKS["acknowledged"])
    waited = (utc(incident.acknowledged_at) - utc(incident.detected_at)).total_seconds()
    note(ctx, incident, "acknowledged", f"after {waited:.0f} s", {"seconds": waited})
    return incident


def _walk(ctx: Ctx, library: SopLibrary, incident: Incident, target: charting.Mark) -> None:
    if incident.instance_id is None:
        return
    instance = upgrades.get(ctx.session, instance_id=incident.instance_id)
    charting.reach(ctx, library, instance, path_of(incident), target)


def move(ctx: Ctx, library: SopLibrary, *, incident_id: int, state: str) -> Incident:
    """Move an incident forward to ``state`` (its chart follows); backwards is refused.

    Raises:
        InvalidInput: unknown state. Conflict: backwards, or closing without a root cause.
    """
    if state not in STATES:
        raise InvalidInput(f"unknown state {state!r}", [FieldProblem("state", ", ".join(STATES))])
    incident = get(ctx.session, incident_id=incident_id)
    if STATES.index(state) < STATES.index(incident.state):
        raise Conflict(f"incident {incident.id} is {incident.state}; it cannot go back to {state}")
    if state == incident.state:
        return incident
    if state == "closed" and not incident.root_cause:
        raise Conflict("record the root cause in the review before closing the incident")
    marks = DATA_MARKS if incident.kind == "data" else SYSTEM_MARKS
    if state in marks:
        _walk(ctx, library, incident, marks[state])
    if state != "detected" and incident.acknowledged_at is None:
        acknowledge(ctx, library, incident_id=incident.id)
    before = snapshot(incident)
    incident.state = state
    if state == "closed":
        incident.closed_at = ctx.now()
    ctx.audit("move", incident, before)
    note(ctx, incident, "state", state)
    return incident


def record_review(
    ctx: Ctx,
    library: SopLibrary,
    *,
    incident_id: int,
    root_cause: str,
    tasks_in: Sequence[tuple[str, str, date]] = (),
) -> Incident:
    """Record the root cause and prevention tasks (title, owner, due date); moves to review."""
    if not root_cause.strip():
        raise InvalidInput("the root cause is empty", [FieldProblem("root_cause", "required")])
    incident = get(ctx.session, incident_id=incident_id)
    if incident.state not in ("review",):
        move(ctx, library, incident_id=incident_id, state="review")
    before = snapshot(incident)
    incident.root_cause = root_cause.strip()
    ctx.audit("review", incident, before)
    note(ctx, incident, "review", incident.root_cause)
    for title, owner, due_on in tasks_in:
        add_task(ctx, incident_id=incident.id, title=title, owner=owner, due_on=due_on)
    return incident


def add_task(ctx: Ctx, *, incident_id: int, title: str, owner: str, due_on: date) -> ReviewTask:
    incident = get(ctx.session, incident_id=incident_id)
    if not title.strip() or not owner.strip():
        raise InvalidInput(
            "a task needs a title and an owner",
            [FieldProblem("title", "required"), FieldProblem("owner", "required")],
        )
    task = ReviewTask(
        incident_id=incident.id,
        title=title.strip()[:300],
        owner=owner.strip(),
        due_on=due_on,
        done=False,
        created_at=ctx.now(),
    )
    ctx.session.add(task)
    ctx.session.flush()
    ctx.audit("create", task, None)
    note(ctx, incident, "review", f"task for {task.owner} by {due_on}: {task.title}")
    return task


def finish_task(ctx: Ctx, *, task_id: int) -> ReviewTask:
    task = ctx.session.get(ReviewTask, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    before = snapshot(task)
    task.done = True
    ctx.audit("finish", task, before)
    return task


def _escalation_due(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    return and_(
        Incident.acknowledged_at.is_(None),
        Incident.state != "closed",
        Incident.next_escalation_at.is_not(None),
        Incident.next_escalation_at <= now,
    )


def escalation_pending(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """True when an incident is due to escalate at ``now`` (``escalate_due`` has work)."""
    return select(Incident.id).where(_escalation_due(now)).exists()


def escalate_due(ctx: Ctx, escalation: Escalation) -> int:
    """Escalate every unacknowledged incident whose promise ran out; returns how many."""
    now = ctx.now()
    due = ctx.session.scalars(
        select(Incident)
        .where(_escalation_due(now))
        .order_by(Incident.id)
        .with_for_update(skip_locked=True)
    ).all()
    for incident in due:
        level = incident.escalation_level
        target = escalation.target(level)
        before = snapshot(incident)
        incident.escalation_level = level + 1
        assert incident.next_escalation_at is not None  # selected on it
        incident.next_escalation_at = utc(incident.next_escalation_at) + escalation.promise
        ctx.audit("escalate", incident, before)
        note(ctx, incident, "escalated", f"level {level + 1} to {target}", {"to": target})
        tell(
            ctx,
            incident,
            template="incident_escalated",
            key=f"incident-{incident.id}-escalation-{level + 1}",
            to=[target],
            why="escalated",
        )
    return len(due)


# -- response-time compliance --------------------------------------------------------------


@dataclass(frozen=True)
class Compliance:
    """How on-call kept the promise over a period."""

    since: datetime
    until: datetime
    incidents: int
    acknowledged: int
    within_promise: int
    share_within: float | None
    median_ack_s: float | None
    p90_ack_s: float | None


def _nearest_rank(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def compliance(
    session: Session, *, since: datetime, until: datetime, promise: timedelta, now: datetime
) -> Compliance:
    """Share of incidents detected in [since, until) acknowledged within the promise.

    An incident still unacknowledged counts against the promise once the promise has run out.
    """
    rows = session.scalars(
        select(Incident).where(Incident.detected_at >= since, Incident.detected_at < until)
    ).all()
    waits = [
        (utc(i.acknowledged_at) - utc(i.detected_at)).total_seconds()
        for i in rows
        if i.acknowledged_at is not None
    ]
    limit = promise.total_seconds()
    within = sum(1 for w in waits if w <= limit)
    judged = len(waits) + sum(
        1 for i in rows if i.acknowledged_at is None and now - utc(i.detected_at) > promise
    )
    return Compliance(
        since=since,
        until=until,
        incidents=len(rows),
        acknowledged=len(waits),
        within_promise=within,
        share_within=(within / judged) if judged else None,
        median_ack_s=statistics.median(waits) if waits else None,
        p90_ack_s=_nearest_rank(waits, 0.9) if waits else None,
    )
