"""What the API accepts and returns about visits, notices, acceptances and surveys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_IN = ConfigDict(extra="forbid")


class VisitIn(BaseModel):
    model_config = _IN

    serial: str = Field(min_length=1, max_length=64)
    visit_start: AwareDatetime
    visit_end: AwareDatetime
    expected_minutes: int = Field(gt=0, le=24 * 60)
    technician: str = Field(default="", max_length=64, description="username of the technician")


class VisitOut(BaseModel):
    id: int
    serial: str
    technician: str
    visit_start: datetime
    visit_end: datetime
    expected_minutes: int
    status: str
    notice_due_at: datetime
    notice_sent_at: datetime | None
    reminder_due_at: datetime
    reminder_sent_at: datetime | None
    answer: str
    answer_note: str
    answered_at: datetime | None


class NoticeAnswerIn(BaseModel):
    model_config = _IN

    answer: Literal["confirmed", "another_date"]
    note: str = Field(default="", max_length=2000, description="the date the customer prefers")


class PublicNoticeOut(BaseModel):
    serial: str
    customer: str
    site: str
    visit_start: datetime
    visit_end: datetime
    expected_minutes: int


class AcceptanceIn(BaseModel):
    model_config = _IN

    signer_name: str = Field(min_length=1, max_length=100)
    signature: str = Field(
        min_length=1,
        max_length=800_000,
        description="the signature as a data URL: data:image/png;base64,...",
    )


class AcceptanceOut(BaseModel):
    id: int
    number: str
    serial: str
    signer_name: str
    signed_at: datetime
    signed_via: str
    machines: list[dict[str, Any]]
    signature_sha256: str
    signature_bytes: int
    certificate: str
    pdf: str


class SurveyAnswerIn(BaseModel):
    model_config = _IN

    score: int = Field(ge=0, le=10)
    comment: str = Field(default="", max_length=4000)


class PublicSurveyOut(BaseModel):
    serial: str
    customer: str
    round: int
    expires_at: datetime


class SurveyOut(BaseModel):
    id: int
    serial: str
    instance_id: int
    loop_status: str
    loop_node: str
    round: int
    status: str
    score: int | None
    comment: str
    opened_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    link: str | None = Field(description="path of the customer's link while it is open")


class FollowUpIn(BaseModel):
    model_config = _IN

    kind: Literal["understanding", "improvement", "retest"]
    note: str = Field(min_length=1, max_length=4000)
    owner: str = Field(default="", max_length=64)


class FollowUpOut(BaseModel):
    id: int
    instance_id: int
    kind: str
    note: str
    owner: str
    due_at: datetime | None
    done_at: datetime | None
    created_at: datetime
    created_by: str


class LinkOut(BaseModel):
    link: str


class SatisfactionStats(BaseModel):
    answered: int
    distribution: dict[str, int]
    share_at_least_8: float | None
    nps: float | None
    promoters: int
    passives: int
    detractors: int
