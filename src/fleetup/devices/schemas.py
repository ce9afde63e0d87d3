"""Bodies of the device protocol (docs/agent.md, "Device protocol") and of deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Step = Literal[
    "backup",
    "download",
    "install",
    "network",
    "register",
    "function_test",
    "rollback",
    # remote actions (devices/remote.py); no chart 2 node, kept as device evidence
    "diagnose",
    "switch_network",
    "snapshot",
    "restore",
]
StepStatus = Literal["started", "succeeded", "failed"]


class EnrollIn(BaseModel):
    enrollment_token: str = Field(min_length=1, max_length=200)
    serial: str = Field(min_length=1, max_length=64)
    hardware: dict[str, Any] = Field(default_factory=dict)


class EnrollOut(BaseModel):
    device_id: str
    credential: str


class StepEventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=64)
    step: Step
    status: StepStatus
    at: AwareDatetime
    evidence: dict[str, Any] = Field(default_factory=dict)


class EventAnswer(BaseModel):
    accepted: bool
    duplicate: bool


class HeartbeatIn(BaseModel):
    at: AwareDatetime | None = None
    version: str = Field(default="", max_length=64)
    link: str = Field(default="", max_length=16)
    health: dict[str, Any] = Field(default_factory=dict)


class RegisterIn(BaseModel):
    device_id: str = Field(min_length=1, max_length=64)
    platform_hint: str = Field(default="default", max_length=64)


class BackupIn(BaseModel):
    action_id: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    manifest: dict[str, Any] = Field(default_factory=dict)


class BackupStatus(BaseModel):
    backup_id: str
    received: int
    complete: bool


class InstallWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    not_before: AwareDatetime | None = None
    not_after: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> InstallWindow:
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before")
        return self


class NetworkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    primary_url: str = Field(min_length=1, max_length=300)
    fallback_url: str | None = Field(default=None, max_length=300)
    mqtt_url: str | None = Field(default=None, max_length=300)


class DeploymentIn(BaseModel):
    """``POST /api/v1/machines/{serial}/deployments``: which release, when, where to."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64)
    install_window: InstallWindow | None = None
    network: NetworkSettings | None = Field(
        default=None, description="The new cloud connection; default: this server's URL."
    )
    platform_hint: str = Field(default="default", max_length=64)


class DeploymentOut(BaseModel):
    action_id: str
    serial: str
    instance_id: int
    version: str
    status: str
    created_at: datetime
