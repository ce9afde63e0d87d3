"""The agent's configuration: one TOML file, checked field by field.

``load(path)`` reads the file with :mod:`tomllib` and returns a frozen :class:`AgentConfig`.
Anything wrong (a missing file, bad TOML, a missing or mistyped field, an unknown key that is
probably a typo) raises :class:`~fleetup.agent.errors.ConfigError` naming the field, so the
CLI can print one clear line instead of a traceback. ``deploy/agent.example.toml`` shows every
field with its default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fleetup.agent.errors import ConfigError

_SECTIONS: dict[str, set[str]] = {
    "server": {"primary_url", "fallback_url", "timeout_s", "retries", "backoff_s", "verify_tls"},
    "device": {"device_id", "serial", "model", "enrollment_token", "credential_file"},
    "paths": {"data_dirs", "install_root", "work_dir", "tuf_root", "cloud_settings_file"},
    "agent": {
        "heartbeat_interval_s",
        "poll_interval_s",
        "self_test_timeout_s",
        "hook_timeout_s",
        "state_loop_cap",
        "upload_chunk_bytes",
        "mqtt_url",
    },
}


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent is told by its configuration file.

    Relative paths in the file are resolved against the file's own directory.
    """

    primary_url: str
    fallback_url: str | None
    serial: str
    data_dirs: tuple[Path, ...]
    install_root: Path
    work_dir: Path
    tuf_root: Path
    credential_file: Path
    cloud_settings_file: Path
    device_id: str | None = None
    model: str | None = None
    enrollment_token: str | None = None
    timeout_s: float = 30.0
    retries: int = 4
    backoff_s: float = 1.0
    verify_tls: bool = True
    heartbeat_interval_s: float = 60.0
    poll_interval_s: float = 30.0
    self_test_timeout_s: float = 900.0
    hook_timeout_s: float = 600.0
    state_loop_cap: int = 5
    upload_chunk_bytes: int = 1 << 20
    mqtt_url: str | None = None

    @property
    def journal_file(self) -> Path:
        """Where the upgrade journal lives."""
        return self.work_dir / "journal.json"

    @property
    def backups_dir(self) -> Path:
        """Where verified backup archives are kept."""
        return self.work_dir / "backups"

    @property
    def downloads_dir(self) -> Path:
        """Where packages (and ``.part`` files) are downloaded."""
        return self.work_dir / "downloads"

    @property
    def metadata_dir(self) -> Path:
        """Where the TUF client caches trusted metadata."""
        return self.work_dir / "tuf"

    @property
    def heartbeat_file(self) -> Path:
        """Where the last heartbeat's outcome is kept for ``status``."""
        return self.work_dir / "heartbeat.json"


def load(path: Path) -> AgentConfig:
    """Read and check a configuration file.

    Args:
        path: the TOML file.

    Returns:
        The checked configuration.

    Raises:
        ConfigError: the file is missing, not TOML, or a field is missing or wrong.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("(file)", f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("(file)", f"{path} cannot be read: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("(file)", f"{path} is not valid TOML: {e}") from e
    except RecursionError as e:
        raise ConfigError("(file)", f"{path} is not valid TOML: values nested too deeply") from e
    return from_mapping(raw, base_dir=path.resolve().parent)


def from_mapping(raw: dict[str, Any], *, base_dir: Path) -> AgentConfig:
    """Check an already parsed configuration (see :func:`load`).

    Raises:
        ConfigError: a field is missing or wrong.
    """
    for section, value in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(section, f"unknown section; expected one of {sorted(_SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(section, "must be a table, e.g. [server]")
        for key in value:
            if key not in _SECTIONS[section]:
                raise ConfigError(f"{section}.{key}", "unknown field (a typo?)")
    fields = _Fields(raw, base_dir)
    work_dir = fields.path("paths.work_dir")
    install_root = fields.path("paths.install_root")
    data_dirs = fields.path_list("paths.data_dirs")
    for data_dir in data_dirs:
        if data_dir in (install_root, work_dir):
            raise ConfigError("paths.data_dirs", f"{data_dir} is also install_root or work_dir")
    return AgentConfig(
        primary_url=fields.url("server.primary_url") or "",
        fallback_url=fields.url("server.fallback_url", required=False),
        timeout_s=fields.number("server.timeout_s", 30.0),
        retries=fields.integer("server.retries", 4, minimum=1),
        backoff_s=fields.number("server.backoff_s", 1.0, minimum=0.0),
        verify_tls=fields.boolean("server.verify_tls", True),
        device_id=fields.text("device.device_id", required=False),
        serial=fields.text("device.serial") or "",
        model=fields.text("device.model", required=False),
        enrollment_token=fields.text("device.enrollment_token", required=False),
        credential_file=fields.path("device.credential_file", work_dir / "credential.json"),
        data_dirs=tuple(data_dirs),
        install_root=install_root,
        work_dir=work_dir,
        tuf_root=fields.path("paths.tuf_root"),
        cloud_settings_file=fields.path(
            "paths.cloud_settings_file", install_root / "cloud-connection.json"
        ),
        heartbeat_interval_s=fields.number("agent.heartbeat_interval_s", 60.0),
        poll_interval_s=fields.number("agent.poll_interval_s", 30.0),
        self_test_timeout_s=fields.number("agent.self_test_timeout_s", 900.0),
        hook_timeout_s=fields.number("agent.hook_timeout_s", 600.0),
        state_loop_cap=fields.integer("agent.state_loop_cap", 5, minimum=1),
        upload_chunk_bytes=fields.integer("agent.upload_chunk_bytes", 1 << 20, minimum=1024),
        mqtt_url=_mqtt_url(fields.text("agent.mqtt_url", required=False)),
    )


def _mqtt_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("mqtt://", "mqtts://")):
        raise ConfigError("agent.mqtt_url", "must start with mqtt:// or mqtts://")
    return value


class _Fields:
    """Typed access to dotted fields, raising ConfigError with the field's name."""

    def __init__(self, raw: dict[str, Any], base_dir: Path) -> None:
        self._raw = raw
        self._base_dir = base_dir

    def _get(self, name: str) -> Any:
        section, _, key = name.partition(".")
        return self._raw.get(section, {}).get(key)

    def text(self, name: str, *, required: bool = True) -> str | None:
        value = self._get(name)
        if value is None or value == "":
            if required:
                raise ConfigError(name, "is required")
            return None
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a string, not {type(value).__name__}")
        return value

    def url(self, name: str, *, required: bool = True) -> str | None:
        value = self.text(name, required=required)
        if value is not None and not value.startswith(("http://", "https://")):
            raise ConfigError(name, f"must start with http:// or https://, got {value!r}")
        if value is not None and not _has_host(value):
            raise ConfigError(name, f"must name the server's host, got {value!r}")
        return value.rstrip("/") if value else None

    def number(self, name: str, default: float, *, minimum: float = 0.001) -> float:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(name, f"must be a number, not {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer past what a float holds
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(name, f"must be a finite number, not {value!r}")
        if number < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return number

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self._get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"must be a whole number, not {value!r}")
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(name, f"must be true or false, not {value!r}")
        return value

    def path(self, name: str, default: Path | None = None) -> Path:
        value = self.text(name, required=default is None)
        if value is None:
            assert default is not None
            return default
        return self._resolve(name, value)

    def path_list(self, name: str) -> list[Path]:
        value = self._get(name)
        if value is None:
            raise ConfigError(name, "is required (a list of folders to back up)")
        if not isinstance(value, list) or not value:
            raise ConfigError(name, "must be a non-empty list of folder paths")
        if not all(isinstance(item, str) and item for item in value):
            raise ConfigError(name, "every entry must be a non-empty string")
        paths = [self._resolve(name, item) for item in value]
        if len(set(paths)) != len(paths):
            raise ConfigError(name, "lists the same folder twice")
        return paths

    def _resolve(self, name: str, value: str) -> Path:
        if "\x00" in value:
            raise ConfigError(name, "must not contain a NUL character")
        try:
            path = Path(value).expanduser()
        except RuntimeError as e:  # ~user for a user this system does not know
            raise ConfigError(name, f"cannot expand {value!r}: {e}") from e
        return path if path.is_absolute() else (self._base_dir / path)


def _has_host(url: str) -> bool:
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:  # a malformed address, such as an unclosed [IPv6 bracket
        return False
