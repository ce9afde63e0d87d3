"""Credentials: enrolling with the fleetup server, registering with the new platform.

:func:`ensure_enrolled` exchanges the site's one-time enrollment token for a device id and a
credential (``POST /device/v1/enroll``) and keeps them in ``device.credential_file``;
afterwards every request carries ``Authorization: Bearer <credential>``. The token works
once, so the enrollment is sent with an ``Idempotency-Key`` kept on disk until it succeeds: an
answer lost on the way back (a cut line, a restart) is fetched again, not refused as a spent token.
:func:`register_platform` is SOP chart 3 step E: ``POST /device/v1/register`` gives the
credential for the new cloud platform, kept beside the connection settings for the new
program. Both files are written atomically and readable by their owner only.
"""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
from pathlib import Path
from typing import Any

from fleetup.agent._internal.files import atomic_write_json, read_json
from fleetup.agent.config import AgentConfig
from fleetup.agent.errors import NotEnrolled, RegistrationError, ServerRejected
from fleetup.agent.transport import Transport


def load_credential(path: Path) -> dict[str, str] | None:
    """The stored ``{device_id, credential}``, or ``None`` before enrollment."""
    try:
        stored = read_json(path)
    except ValueError:
        return None
    if isinstance(stored, dict) and stored.get("credential") and stored.get("device_id"):
        return {"device_id": str(stored["device_id"]), "credential": str(stored["credential"])}
    return None


def hardware_facts() -> dict[str, Any]:
    """What the agent tells the server about the machine when it enrolls."""
    return {
        "hostname": platform.node(),
        "os": platform.system().lower(),
        "os_release": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def ensure_enrolled(transport: Transport, config: AgentConfig) -> str:
    """Make sure the device has a credential; enroll with the token when it has none.

    Sets ``transport.credential``.

    Returns:
        The device id.

    Raises:
        NotEnrolled: there is no credential and no enrollment token, or the server refused it.
        ServerError: the server could not be reached.
    """
    stored = load_credential(config.credential_file)
    if stored is not None:
        transport.credential = stored["credential"]
        return stored["device_id"]
    if not config.enrollment_token:
        raise NotEnrolled(401, "no credential yet and no device.enrollment_token configured")
    key_file = enrollment_key_file(config)
    try:
        answer = transport.post_json(
            "/device/v1/enroll",
            {
                "enrollment_token": config.enrollment_token,
                "serial": config.serial,
                "hardware": hardware_facts(),
            },
            idempotency_key=_enrollment_key(key_file),
        )
    except ServerRejected as e:
        if e.status == 403:  # the token is spent, expired or another serial's
            raise NotEnrolled(e.status, e.detail) from e
        raise
    try:
        device_id, credential = str(answer["device_id"]), str(answer["credential"])
    except (KeyError, TypeError) as e:
        raise ServerRejected(200, f"enroll answer lacks {e}") from e
    atomic_write_json(
        config.credential_file, {"device_id": device_id, "credential": credential}, private=True
    )
    key_file.unlink(missing_ok=True)
    transport.credential = credential
    return device_id


def enrollment_key_file(config: AgentConfig) -> Path:
    """Where the key of an enrollment not yet answered is kept, beside the credential."""
    return config.credential_file.with_name("enrollment-key.json")


def _enrollment_key(path: Path) -> str:
    """The key of this device's pending enrollment: the stored one, else a new one, stored.

    The server keeps an answer for two days, so a retry within that time gets the credential
    the first attempt was given.
    """
    try:
        stored = read_json(path)
    except ValueError:
        stored = None
    if isinstance(stored, dict) and isinstance(stored.get("key"), str) and stored["key"]:
        return str(stored["key"])
    key = secrets.token_urlsafe(24)
    atomic_write_json(path, {"key": key}, private=True)
    return key


def platform_credential_file(config: AgentConfig) -> Path:
    """Where the new platform's credential is kept for the new program."""
    return config.cloud_settings_file.with_name("cloud-credential.json")


def register_platform(
    transport: Transport, *, device_id: str, platform_hint: str, credential_file: Path
) -> dict[str, Any]:
    """Exchange the device's identity for a credential on the new platform; safe to repeat.

    Returns:
        Evidence: whether a new credential was fetched and a short fingerprint of it.

    Raises:
        RegistrationError: the server refused or answered without a credential.
        ServerUnreachable: the server could not be reached (transient).
    """
    stored = read_json(credential_file)
    if isinstance(stored, dict) and stored.get("device_id") == device_id:
        return {"registered": True, "reused": True, "fingerprint": _fingerprint(stored)}
    try:
        answer = transport.post_json(
            "/device/v1/register", {"device_id": device_id, "platform_hint": platform_hint}
        )
    except ServerRejected as e:
        raise RegistrationError(f"the server refused the registration: {e}") from e
    credential = answer.get("platform_credential") if isinstance(answer, dict) else None
    if not isinstance(credential, str) or not credential:
        raise RegistrationError("the server's answer has no platform_credential")
    record = {"device_id": device_id, "platform_credential": credential}
    atomic_write_json(credential_file, record, private=True)
    return {"registered": True, "reused": False, "fingerprint": _fingerprint(record)}


def _fingerprint(record: dict[str, Any]) -> str:
    secret = str(record.get("platform_credential", ""))
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
