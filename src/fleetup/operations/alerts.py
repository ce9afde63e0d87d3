"""Alerts as people see them, and silences: muting a rule or subject for a while."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.core.context import Ctx
from fleetup.core.errors import FieldProblem, InvalidInput
from fleetup.operations.models import Alert, Silence
from fleetup.operations.monitoring import RULES


def get_all(session: Session, *, status: str | None = None, limit: int = 200) -> Sequence[Alert]:
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if status == "active":
        query = query.where(Alert.status.in_(("open", "muted")))
    elif status:
        query = query.where(Alert.status == status)
    return session.scalars(query).all()


def silences(session: Session, *, active_at: datetime | None = None) -> Sequence[Silence]:
    query = select(Silence).order_by(Silence.id.desc())
    if active_at is not None:
        query = query.where(Silence.until > active_at)
    return session.scalars(query).all()


def silence(
    ctx: Ctx, *, rule: str, subject_ref: str, duration: timedelta, reason: str = ""
) -> Silence:
    """Mute alerts of ``rule`` (empty: any) about ``subject_ref`` (a serial, site or wave;
    empty: any) for ``duration``; the next monitoring pass applies it.

    Raises:
        InvalidInput: unknown rule, or neither rule nor subject given.
    """
    if rule and rule not in RULES:
        raise InvalidInput(
            f"unknown rule {rule!r}", [FieldProblem("rule", "one of " + ", ".join(RULES))]
        )
    if not rule and not subject_ref:
        raise InvalidInput(
            "a silence needs a rule or a subject; muting everything is not allowed",
            [FieldProblem("subject_ref", "name a machine, site or wave, or a rule")],
        )
    row = Silence(
        rule=rule,
        subject_ref=subject_ref.strip(),
        until=ctx.now() + duration,
        reason=reason.strip(),
        created_by=ctx.actor,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit("create", row, None)
    return row
