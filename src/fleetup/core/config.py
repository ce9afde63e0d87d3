"""Configuration: ``FLEETUP_*`` environment variables over an optional TOML file over defaults.

The defaults need nothing: a SQLite database and a blob directory under ``./var/``. A TOML
file is read from ``FLEETUP_CONFIG`` if set, else from ``./fleetup.toml`` when it exists.
Environment variables win over the file, so a deployment can keep its secrets out of it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

LANGUAGES = ("zh-TW", "en")


def _config_file() -> Path | None:
    named = os.environ.get("FLEETUP_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"FLEETUP_CONFIG names {path}, which is not a file")
        return path
    default = Path("fleetup.toml")
    return default if default.is_file() else None


class Settings(BaseSettings):
    """Everything fleetup can be told; see README.md "Configuration" for each setting."""

    model_config = SettingsConfigDict(env_prefix="FLEETUP_", extra="forbid")

    var_dir: Path = Field(default=Path("var"), description="Where local state lives.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at var_dir/fleetup.db.",
    )
    blob_dir: Path | None = Field(default=None, description="Blob store; default var_dir/blobs.")
    secret_key: str = Field(
        default="",
        description="Signs cookies and links; empty means one kept in var_dir/secret_key.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    base_url: str = Field(default="", description="Public URL for links; default from host/port.")
    default_language: str = "zh-TW"
    session_max_age_s: int = Field(default=12 * 3600, ge=60)
    sop_definitions: dict[str, Path] = Field(
        default_factory=dict,
        description="Chart id to a definition file that replaces the shipped one.",
    )
    # Operations: monitoring rules, the on-call promise and its escalation chain.
    heartbeat_missing_s: int = Field(
        default=300, ge=10, description="A machine silent this long is offline."
    )
    watch_every_s: int = Field(
        default=30, ge=1, le=300, description="How often monitoring evaluates its rules."
    )
    site_offline_min_machines: int = Field(
        default=2,
        ge=1,
        description="A site with at least this many machines, all silent, is one alert.",
    )
    wave_failure_rate: float = Field(
        default=0.2, gt=0, le=1, description="Share of failed machines in a wave that alerts."
    )
    wave_failure_min: int = Field(
        default=3, ge=1, description="Failed machines a wave needs before its rate counts."
    )
    ack_promise_min: int = Field(
        default=15, ge=1, description="Minutes within which on-call acknowledges an incident."
    )
    escalation_chain: list[str] = Field(
        default_factory=list,
        description="Usernames escalated to in turn after the promise; then the manager role.",
    )
    anomaly_wave_pause: int = Field(
        default=3, ge=1, description="Data anomalies in one wave that pause the wave."
    )

    mqtt_url: str = Field(
        default="",
        description="MQTT broker for device wake-ups (mqtt:// or mqtts://); empty: no wake-ups.",
    )
    notify_retry_base_s: float = Field(
        default=10.0, gt=0, description="First retry delay of a failed notification."
    )
    notify_retry_max_s: float = Field(
        default=600.0, gt=0, description="Longest delay between two delivery attempts."
    )
    notify_max_age_s: float = Field(
        default=24 * 3600.0, gt=0, description="A notification undelivered this long has failed."
    )
    notify_lease_s: float = Field(
        default=300.0,
        gt=0,
        description=(
            "How long a worker holds a notification it took to send; another worker may take "
            "it once this has passed. Longer than any one send can take."
        ),
    )
    notify_role_urls: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Role to Apprise URLs that also receive what is sent to that role.",
    )
    notify_mail_url: str = Field(
        default="",
        description="Apprise mailto:// or mailtos:// URL of the mail server for customer contacts.",
    )
    notify_customer_urls: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Customer code to Apprise URLs for that customer's contacts.",
    )

    @field_validator("default_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"must be one of {', '.join(LANGUAGES)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'fleetup.db'}"

    @property
    def effective_blob_dir(self) -> Path:
        return self.blob_dir or self.var_dir / "blobs"

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def effective_secret_key(self) -> str:
        """The configured key, or one generated once and kept (mode 0600) in var_dir."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.is_file():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        os.replace(tmp, path)
        return key


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raises pydantic's ValidationError naming the bad field."""
    return Settings(**overrides)
