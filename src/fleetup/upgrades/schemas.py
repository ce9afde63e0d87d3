"""What the API returns for SOP instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class StepOut(BaseModel):
    """One visit of one node, with its timing against the budget."""

    node: str
    label: str
    visit: int
    status: str
    performer: str | None
    performed_by: list[str]
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    budget_minutes: float | None
    actual_minutes: float | None
    over_budget: bool
    checks_passed: list[str]


class DueOut(BaseModel):
    node: str
    kind: str
    label: str
    performer: str | None
    parent: str | None
    outcomes: list[str]
    budget_minutes: float | None
    deadline: datetime | None
    attempt: int


class TransitionOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    type: str
    from_node: str
    to_node: str
    event: dict[str, Any]
    effects: list[dict[str, Any]]


class InstanceOut(BaseModel):
    id: int
    key: str
    chart_id: str
    definition_version: str
    subject_kind: str
    subject_ref: str
    status: str
    current_node: str
    current_label: str
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    waiting: dict[str, Any] | None
    steps: list[StepOut]
    due: list[DueOut]
    history: list[TransitionOut]


class EventResult(BaseModel):
    """What posting an event did: the instance afterwards and the effects it asked for."""

    instance: InstanceOut
    effects: list[dict[str, Any]]
