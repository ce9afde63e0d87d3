"""The audit trail, for administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from fleetup.api.access import GuardedRoute, allow
from fleetup.api.deps import db
from fleetup.api.schemas import MAX_ROW_ID, PageOut
from fleetup.core import audit

router = APIRouter(route_class=GuardedRoute, tags=["audit"])
admin_only = allow()


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str


class FindingOut(BaseModel):
    where: str
    problem: str


class VerifyOut(BaseModel):
    ok: bool
    findings: list[FindingOut]


@router.get("/audit/events", response_model=PageOut[AuditEventOut], dependencies=[admin_only])
def list_events(
    entity_type: str | None = None,
    entity_id: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_ROW_ID),
    session: Session = Depends(db),
) -> PageOut[AuditEventOut]:
    events, total = audit.get_all(
        session, entity_type=entity_type, entity_id=entity_id, limit=limit, offset=offset
    )
    return PageOut[AuditEventOut](
        items=[AuditEventOut.model_validate(e) for e in events],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/audit/verify", response_model=VerifyOut, dependencies=[admin_only])
def verify(session: Session = Depends(db)) -> VerifyOut:
    findings = audit.verify(session)
    return VerifyOut(
        ok=not findings, findings=[FindingOut(where=f.where, problem=f.problem) for f in findings]
    )
