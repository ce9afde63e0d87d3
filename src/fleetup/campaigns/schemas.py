"""What the campaign API accepts and returns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetup.campaigns.gates import GateRule
from fleetup.core.clock import valid_timezone


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    release_version: str = Field(min_length=1, max_length=64)
    starts_on: date = Field(description="The Monday of week 1.")
    timezone: str = Field(default="Asia/Taipei", max_length=64)
    schedule: dict[str, Any] | None = Field(
        default=None,
        description="Planning rules: visit_minutes, travel_minutes, working_hours, "
        "max_day_minutes, horizon_days, timezone.",
    )

    _tz = field_validator("timezone")(valid_timezone)


class ActivityUpdate(Strict):
    owner: str | None = Field(default=None, max_length=100)
    status: Literal["todo", "doing", "done"] | None = None
    note: str | None = Field(default=None, max_length=4000)


class Selection(Strict):
    """Which machines a wave takes."""

    kind: Literal["count", "percent", "filter", "rest"]
    count: int | None = Field(default=None, ge=1)
    percent: float | None = Field(default=None, gt=0, le=100)
    customer: str | None = Field(default=None, max_length=32)
    site: str | None = Field(default=None, max_length=32)
    model: str | None = Field(default=None, max_length=64)
    planned: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> Selection:
        if self.kind == "count" and self.count is None:
            raise ValueError("a count selection needs count")
        if self.kind == "percent" and self.percent is None:
            raise ValueError("a percent selection needs percent")
        if self.kind == "filter" and not (self.customer or self.site or self.model):
            raise ValueError("a filter selection needs customer, site or model")
        return self


class WaveUpdate(Strict):
    selection: Selection | None = None
    planned_start: datetime | None = None
    gate: GateRule | None = None


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class MembersIn(Strict):
    serials: list[str] = Field(min_length=1, max_length=1000)


class ShutdownIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)
    archive: str = Field(
        min_length=1, max_length=500, description="Where the old system's data archive is kept."
    )


class CountsOut(BaseModel):
    total: int
    pending: int
    scheduled: int
    running: int
    succeeded: int
    failed: int
    held: int
    cancelled: int
    unplanned: int


class WaveOut(BaseModel):
    code: str
    title_zh_tw: str
    title_en: str
    status: str
    status_reason: str
    selection: dict[str, Any]
    gate: dict[str, Any]
    gate_state: str
    planned_start: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: CountsOut


class PhaseOut(BaseModel):
    code: str
    title_zh_tw: str
    title_en: str
    first_week: int
    last_week: int
    planned_start: datetime
    planned_end: datetime
    actual_start: datetime | None
    actual_end: datetime | None


class ActivityOut(BaseModel):
    code: str
    phase: str
    title_zh_tw: str
    title_en: str
    performer: str
    owner: str
    status: str
    first_week: int
    last_week: int
    planned_start: datetime
    planned_end: datetime
    actual_start: datetime | None
    actual_end: datetime | None
    note: str


class CampaignOut(BaseModel):
    id: int
    name: str
    release_version: str
    starts_on: date
    timezone: str
    status: str
    schedule: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    shutdown_at: datetime | None
    phases: list[PhaseOut]
    activities: list[ActivityOut]
    waves: list[WaveOut]


class MemberOut(BaseModel):
    serial: str
    customer: str
    site: str
    model: str
    status: str
    late: bool
    attempts: int
    action_id: str | None
    instance_id: int | None
    current_node: str | None
    joined_at: datetime
    finished_at: datetime | None
    note: str


class GateEventOut(BaseModel):
    wave: str
    at: datetime
    actor: str
    kind: str
    reason: str
    counts: dict[str, Any]


class VisitOut(BaseModel):
    id: int
    wave: str
    serial: str
    customer: str
    site: str
    site_name: str
    technician: str
    planned_start: datetime
    planned_end: datetime
    travel_minutes: float
    actual_start: datetime | None
    actual_end: datetime | None
    status: str
    instance_id: int | None


class BlockersOut(BaseModel):
    """What keeps the old system on (E4); empty lists mean it can be shut down."""

    not_migrated: list[str]
    open_incidents: list[str]
    unverified_backups: list[str]
    missing_acceptances: list[str]
    shut_down: bool
    shutdown_at: datetime | None
    archive: str

    @property
    def clear(self) -> bool:
        return not (
            self.not_migrated
            or self.open_incidents
            or self.unverified_backups
            or self.missing_acceptances
        )
