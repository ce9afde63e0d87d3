"""The satisfaction loop of chart 5, one instance per machine, one survey per round.

When a machine's upgrade completes, ``open_survey`` starts chart 5 for it and sends the
customer a signed, single-use link. The answer walks the chart: B (operation test) and C
(function confirmation) are the customer's, confirmed by answering; D is the survey; E
decides on the score. At 8 or more the system carries F (success), J (support information
sent) and K (periodic follow-ups planned as dated records) and the chart ends at L. Below 8
staff record G (what the problem is), H (the improvement and its owner) and I (the retest),
and the retest opens the next round with a new link. Links die when answered or expired.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, bindparam, select
from sqlalchemy.orm import Session, aliased

from fleetup.core import audit
from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.db import ById
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.core.security import Signer
from fleetup.customers.links import LinkRefused, Links, default_links, link_path, read_token
from fleetup.customers.models import Survey, SurveyFollowUp
from fleetup.customers.notices import deliver, recipients
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Machine
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import UPGRADE_CHART, SopLibrary
from fleetup.upgrades.models import SopInstance

SURVEY_CHART = "chart5"
SURVEY_LIFETIME = timedelta(days=14)
GOOD_SCORE = 8
FOLLOW_UP_DAYS = (30, 90, 180)
# G, H, I in order: what staff record after a low score.
STAFF_STEPS = {"understanding": "G", "improvement": "H", "retest": "I"}


def survey_link(signer: Signer, survey: Survey) -> str:
    return link_path(signer, "survey", {"id": survey.id, "n": survey.nonce})


def survey_instance(session: Session, *, machine_id: int) -> SopInstance | None:
    """The machine's latest chart 5 instance."""
    found = upgrades.get_all(session, machine_id=machine_id, chart_id=SURVEY_CHART)
    return found[-1] if found else None


def current_survey(session: Session, *, instance_id: int) -> Survey | None:
    return session.scalar(
        select(Survey).where(Survey.instance_id == instance_id).order_by(Survey.id.desc())
    )


def _step(steps: upgrades.Steps, node: str, evidence: Mapping[str, Any]) -> None:
    """Start and finish ``node``; the caller stores ``steps`` when its events are all in."""
    steps.post({"type": "step_started", "node": node})
    steps.post({"type": "step_finished", "node": node, "evidence": dict(evidence)})


def _new_round(ctx: Ctx, links: Links, instance: SopInstance, machine: Machine) -> str:
    previous = current_survey(ctx.session, instance_id=instance.id)
    now = ctx.now()
    survey = Survey(
        machine_id=machine.id,
        instance_id=instance.id,
        round=(previous.round + 1) if previous and previous.status == "answered" else 1,
        nonce=secrets.token_hex(16),
        status="open",
        opened_at=now,
        expires_at=now + SURVEY_LIFETIME,
        comment="",
    )
    if previous is not None and previous.status == "open":
        # A reissued link replaces a lost or expired one of the same round.
        survey.round = previous.round
        before = snapshot(previous)
        previous.status = "expired"
        ctx.audit("expire", previous, before)
    ctx.session.add(survey)
    ctx.session.flush()
    ctx.audit("create", survey, None)
    path = survey_link(links.signer, survey)
    deliver(
        ctx,
        template="survey_invite",
        key=f"survey:{survey.id}",
        to=recipients(machine),
        params={
            "customer": machine.site.customer.name,
            "serial": machine.serial,
            "model": machine.model,
            "link": links.base_url + path,
            "expires": survey.expires_at.strftime("%Y-%m-%d"),
        },
    )
    return path


def open_survey(
    ctx: Ctx,
    *,
    serial: str,
    library: SopLibrary | None = None,
    links: Links | None = None,
) -> str:
    """Start the machine's satisfaction loop (or reissue its open survey); the link's path.

    Safe to call twice: a machine whose chart 5 already runs keeps its instance, and an open
    survey is replaced by a fresh link of the same round.

    Raises:
        NotFound: no machine with that serial.
        Conflict: the machine's upgrade has not completed, or its survey loop has.
    """
    library = library or SopLibrary()
    links = links or default_links()
    machine = fleet.get_machine(ctx.session, serial=serial)
    latest = upgrades.latest_upgrade(ctx.session, machine_id=machine.id)
    if latest is None or latest.status != "completed":
        raise Conflict(f"machine {serial} has not completed its upgrade yet")
    instance = survey_instance(ctx.session, machine_id=machine.id)
    if instance is None:
        instance = upgrades.start_about(
            ctx, library, chart_id=SURVEY_CHART, subject_kind="machine", subject_ref=serial
        )
        ctx.session.flush()
    elif instance.status == "completed":
        raise Conflict(f"the satisfaction loop of machine {serial} is closed")
    if instance.current_node not in ("B", "C", "D"):
        raise Conflict(f"machine {serial}'s survey waits at {instance.current_node}, not D")
    return _new_round(ctx, links, instance, machine)


def open_link(session: Session, *, signer: Signer, token: str, now: datetime) -> Survey:
    """The survey a link opens, while it can still be answered.

    Raises:
        LinkRefused: forged (invalid), answered already (used), past its date (expired).
    """
    value = read_token(signer, "survey", token)
    if not isinstance(value, dict):
        raise LinkRefused("invalid")
    survey_id = value.get("id")
    survey = _SURVEY(session, survey_id) if isinstance(survey_id, int) else None
    if survey is None or survey.nonce != value.get("n"):
        raise LinkRefused("invalid")
    if survey.status == "answered":
        raise LinkRefused("used")
    if survey.status != "open" or now >= survey.expires_at:
        raise LinkRefused("expired")
    return survey


_SURVEY = ById(Survey)


def answer(
    ctx: Ctx,
    library: SopLibrary,
    *,
    survey: Survey,
    score: int,
    comment: str = "",
) -> Survey:
    """Record the customer's score and walk chart 5 from it.

    Raises:
        InvalidInput: the score is not a whole number from 0 to 10.
        Conflict: the survey was answered already.
    """
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        message = "give a score from 0 to 10"
        raise InvalidInput(message, [FieldProblem("score", message)])
    if survey.status != "open":
        raise Conflict("this survey was answered already")
    steps = upgrades.Steps(ctx, library, instance_id=survey.instance_id)
    machine = ctx.session.get_one(Machine, survey.machine_id)
    confirmed = {"text": "confirmed by the customer with the survey"}
    for node in ("B", "C"):
        if steps.state.current == node:
            _step(steps, node, confirmed)
    text = comment.strip()[:4000]
    _step(steps, "D", {"text": text, "numbers": {"score": score}})
    outcome = "at_least_8" if score >= GOOD_SCORE else "below_8"
    steps.post({"type": "decision_taken", "node": "E", "outcome": outcome})
    before = snapshot(survey)
    survey.status = "answered"
    survey.score = score
    survey.comment = text
    survey.answered_at = ctx.now()
    ctx.audit("answer", survey, before)
    if score >= GOOD_SCORE:
        _close_loop(ctx, steps, machine, score)
    steps.store()
    return survey


def _follow_up(
    ctx: Ctx,
    instance: SopInstance,
    *,
    kind: str,
    note: str,
    owner: str = "",
    due_at: datetime | None = None,
    done: bool = True,
) -> SurveyFollowUp:
    """A follow-up of the loop, added to the session; the caller audits it."""
    now = ctx.now()
    record = SurveyFollowUp(
        instance_id=instance.id,
        machine_id=instance.machine_id,
        kind=kind,
        note=note,
        owner=owner,
        due_at=due_at,
        done_at=now if done else None,
        created_at=now,
        created_by=ctx.actor,
    )
    ctx.session.add(record)
    return record


def _close_loop(ctx: Ctx, steps: upgrades.Steps, machine: Machine, score: int) -> None:
    instance = steps.instance
    _step(steps, "F", {"text": f"satisfied: score {score}"})
    deliver(
        ctx,
        template="survey_support",
        key=f"support:{instance.id}",
        to=recipients(machine),
        params={"customer": machine.site.customer.name, "serial": machine.serial},
    )
    support = _follow_up(ctx, instance, kind="support", note="support contact details sent")
    _step(steps, "J", {"text": "support contact details sent"})
    now = ctx.now()
    periodic = [
        _follow_up(
            ctx,
            instance,
            kind="periodic",
            note=f"follow-up call {days} days after the upgrade",
            due_at=now + timedelta(days=days),
            done=False,
        )
        for days in FOLLOW_UP_DAYS
    ]
    ctx.audit_all([audit.Change("create", row, None) for row in (support, *periodic)])
    _step(steps, "K", {"text": f"follow-ups planned at {FOLLOW_UP_DAYS} days"})
    if steps.state.current == "L":
        # L is an end with a performer: the customer passes to relationship maintenance.
        _step(steps, "L", {"text": "customer relationship maintenance"})


def record_staff_step(
    ctx: Ctx,
    library: SopLibrary,
    *,
    instance_id: int,
    kind: str,
    note: str,
    owner: str = "",
    links: Links | None = None,
) -> SurveyFollowUp:
    """Record G (understanding), H (improvement, with its owner) or I (retest).

    The retest opens the next survey round and sends its link.

    Raises:
        NotFound: no such chart 5 instance.
        InvalidInput: an unknown kind, an empty note, or an improvement without an owner.
        Conflict: the loop is not at that step.
    """
    node = STAFF_STEPS.get(kind)
    if node is None:
        message = f"kind must be one of {', '.join(STAFF_STEPS)}"
        raise InvalidInput(message, [FieldProblem("kind", message)])
    if not note.strip():
        message = "describe what was found or done"
        raise InvalidInput(message, [FieldProblem("note", message)])
    if kind == "improvement" and not owner.strip():
        message = "name who owns the improvement"
        raise InvalidInput(message, [FieldProblem("owner", message)])
    instance = upgrades.get(ctx.session, instance_id=instance_id)
    if instance.chart_id != SURVEY_CHART:
        raise NotFound(f"no satisfaction loop {instance_id}")
    if instance.current_node != node:
        raise Conflict(f"the satisfaction loop is at {instance.current_node}, not {node}")
    record = _follow_up(ctx, instance, kind=kind, note=note.strip(), owner=owner.strip())
    ctx.audit("create", record, None)
    evidence = {"text": note.strip() + (f" (owner: {owner.strip()})" if owner.strip() else "")}
    steps = upgrades.Steps(ctx, library, instance_id=instance.id)
    _step(steps, node, evidence)
    steps.store()
    if kind == "retest" and instance.current_node == "D":
        machine = ctx.session.get_one(Machine, instance.machine_id)
        _new_round(ctx, links or default_links(), instance, machine)
    return record


def get_all(session: Session, *, serial: str | None = None) -> Sequence[Survey]:
    query = select(Survey).order_by(Survey.id)
    if serial:
        query = query.where(Survey.machine_id == fleet.get_machine(session, serial=serial).id)
    return session.scalars(query).all()


def follow_ups(session: Session, *, instance_id: int) -> Sequence[SurveyFollowUp]:
    return session.scalars(
        select(SurveyFollowUp)
        .where(SurveyFollowUp.instance_id == instance_id)
        .order_by(SurveyFollowUp.id)
    ).all()


def machine_of(session: Session, survey: Survey) -> Machine:
    return session.get_one(Machine, survey.machine_id)


def _upgrade_without_survey() -> ColumnElement[bool]:
    """An upgrade (``SopInstance``) that completed on a machine with no satisfaction loop."""
    survey = aliased(SopInstance)
    started = (
        select(survey.id)
        .where(survey.chart_id == SURVEY_CHART, survey.machine_id == SopInstance.machine_id)
        .exists()
    )
    return and_(
        SopInstance.chart_id == UPGRADE_CHART,
        SopInstance.status == "completed",
        SopInstance.machine_id.is_not(None),
        ~started,
    )


def surveys_changed(now: ColumnElement[datetime], after: ColumnElement[int]) -> ColumnElement[bool]:
    """True when an upgrade changed after audit position ``after`` and is now complete on a
    machine with no satisfaction loop (``open_due_surveys`` has work). Asking reads the
    upgrades that changed, not every upgrade the fleet ever completed."""
    changed = audit.changed_ids(SopInstance, after).subquery()
    # Read from the changes: asked the other way round, SQLite walks every completed upgrade.
    upgrade = select(SopInstance.id).where(
        SopInstance.id == changed.c.entity_id, _upgrade_without_survey()
    )
    return select(changed.c.entity_id).where(upgrade.exists()).exists()


def completed_without_survey(session: Session, *, changed_after: int | None = None) -> list[str]:
    """Serials whose upgrade completed and whose satisfaction loop has not started.

    Args:
        changed_after: an audit position: only the upgrades changed since then are read
            (found by index), not every upgrade the fleet ever completed.
    """
    if changed_after is None:
        refs = session.scalars(_COMPLETED_WITHOUT_SURVEY)
    else:
        refs = session.scalars(_CHANGED_WITHOUT_SURVEY, {"after": changed_after})
    return list(dict.fromkeys(refs))


# Asked by the survey job whenever an upgrade completed: built once.
_COMPLETED_WITHOUT_SURVEY = (
    select(SopInstance.subject_ref).where(_upgrade_without_survey()).order_by(SopInstance.id)
)
_CHANGED_WITHOUT_SURVEY = _COMPLETED_WITHOUT_SURVEY.where(
    SopInstance.id.in_(audit.changed_ids(SopInstance, bindparam("after", type_=Integer)))
)
