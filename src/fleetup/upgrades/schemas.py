"""What the API returns for SOP instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class InstanceIn(BaseModel):
    """Start an instance of a chart about a machine or a customer (charts 4, 5 and 6)."""

    model_config = ConfigDict(extra="forbid")

    chart_id: str = Field(min_length=1, max_length=64, examples=["chart4"])
    subject_kind: Literal["machine", "customer"]
    subject_ref: str = Field(
        min_length=1, max_length=64, description="The machine's serial or the customer's code."
    )
    entry: str | None = Field(
        default=None, max_length=64, description="Entry node, for charts with several (6: A, I)."
    )
