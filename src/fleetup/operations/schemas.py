"""What the operations API accepts and returns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ProblemType = Literal["network", "hardware", "software", "user"]
IncidentState = Literal[
    "detected", "acknowledged", "diagnosing", "fixing", "recovered", "review", "closed"
]
RunbookNode = Literal["J", "K", "L", "M", "N", "O"]

_IN = ConfigDict(extra="forbid")
_OUT = ConfigDict(from_attributes=True)


class ProblemIn(BaseModel):
    model_config = _IN

    serial: str = Field(min_length=1, max_length=64)
    type: ProblemType
    summary: str = Field(default="", max_length=2000)


class StepIn(BaseModel):
    """A playbook step: ``node`` and what it needs (checklist, topics and trainee, guidance),
    or ``result`` (``ok``/``failed``) for a step whose device action is under way."""

    model_config = _IN

    node: str = Field(min_length=1, max_length=8)
    payload: dict[str, Any] = Field(default_factory=dict)


class ProblemStepOut(BaseModel):
    model_config = _OUT

    node: str
    status: str
    action_id: str
    evidence: dict[str, Any]
    actor: str
    at: datetime


class ProblemOut(BaseModel):
    model_config = _OUT

    id: int
    serial: str
    type: str
    status: str
    summary: str
    source: str
    instance_id: int
    upgrade_instance_id: int | None
    upgrade_node: str
    opened_by: str
    opened_at: datetime
    closed_at: datetime | None
    next_step: str | None = None
    next_step_under_way: bool = False
    steps: list[ProblemStepOut] = Field(default_factory=list)


class StepResultOut(BaseModel):
    problem: ProblemOut
    step: ProblemStepOut
    secret: str = Field(
        default="",
        description="A spare's one-time enrollment token (D2); shown once, never stored.",
    )


class AlertOut(BaseModel):
    model_config = _OUT

    id: int
    rule: str
    subject_kind: str
    subject_ref: str
    site: str
    status: str
    muted_by: str
    count: int
    detail: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    incident_id: int | None


class SilenceIn(BaseModel):
    model_config = _IN

    rule: str = Field(default="", max_length=32, description="Empty: every rule.")
    subject_ref: str = Field(default="", max_length=64, description="Empty: every subject.")
    minutes: int = Field(ge=1, le=60 * 24 * 14)
    reason: str = Field(default="", max_length=2000)


class SilenceOut(BaseModel):
    model_config = _OUT

    id: int
    rule: str
    subject_ref: str
    until: datetime
    reason: str
    created_by: str
    created_at: datetime


class EntryOut(BaseModel):
    model_config = _OUT

    at: datetime
    kind: str
    actor: str
    text: str
    detail: dict[str, Any]


class TaskIn(BaseModel):
    model_config = _IN

    title: str = Field(min_length=1, max_length=300)
    owner: str = Field(min_length=1, max_length=64)
    due_on: date


class TaskOut(BaseModel):
    model_config = _OUT

    id: int
    title: str
    owner: str
    due_on: date
    done: bool


class IncidentOut(BaseModel):
    model_config = _OUT

    id: int
    kind: str
    title: str
    subject_kind: str
    subject_ref: str
    site: str
    state: str
    instance_id: int | None
    detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str
    escalation_level: int
    next_escalation_at: datetime | None
    root_cause: str
    closed_at: datetime | None
    promise_due_at: datetime | None = None
    timeline: list[EntryOut] = Field(default_factory=list)
    tasks: list[TaskOut] = Field(default_factory=list)


class MoveIn(BaseModel):
    model_config = _IN

    state: IncidentState


class ReviewIn(BaseModel):
    model_config = _IN

    root_cause: str = Field(min_length=1, max_length=5000)
    tasks: list[TaskIn] = Field(default_factory=list)


class RunbookStepIn(BaseModel):
    model_config = _IN

    node: RunbookNode
    evidence: dict[str, Any] = Field(default_factory=dict)


class ComplianceOut(BaseModel):
    model_config = _OUT

    since: datetime
    until: datetime
    incidents: int
    acknowledged: int
    within_promise: int
    share_within: float | None
    median_ack_s: float | None
    p90_ack_s: float | None
    promise_minutes: int
