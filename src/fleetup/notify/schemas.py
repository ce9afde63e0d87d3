"""What the API accepts and returns for channels (subscriptions) and the delivery log.

A channel URL goes in but never comes out: answers carry its redacted ``label``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(
        min_length=4,
        max_length=2000,
        description="An Apprise URL, e.g. tgram://BOT_TOKEN/CHAT_ID or json://host/path.",
        examples=["ntfys://ntfy.sh/fleetup-oncall"],
    )
    language: Literal["zh-TW", "en"] = "zh-TW"


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    label: str = Field(description="The channel URL with its secrets left out.")
    language: str
    created_at: datetime


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    template: str
    key: str
    recipient: str
    language: str
    channel_label: str
    subject: str
    status: Literal["queued", "delivered", "failed", "no_channel"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_error: str
    delivered_at: datetime | None


class TestSent(BaseModel):
    queued: int = Field(description="How many channels the test message was queued for.")
