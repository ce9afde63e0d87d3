"""The new cloud platform's connection settings, and the link test (SOP chart 3, D and D1).

:func:`write_settings` writes the settings file the new IPC program reads (JSON, atomic).
:func:`check_links` asks ``GET <url>/healthz`` on the primary URL, then on the fallback (4G)
URL, a few times each, and says which link answered; no answer on either raises
:class:`~fleetup.agent.errors.NetworkCheckFailed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fleetup.agent._internal.files import atomic_write_json, read_json
from fleetup.agent.errors import NetworkCheckFailed


@dataclass(frozen=True)
class LinkCheck:
    """Which link of the new platform answered, and what was tried."""

    link: str
    url: str
    tried: list[str]


def settings_from_action(network: dict[str, Any], *, device_id: str | None) -> dict[str, Any]:
    """The settings file's content for an action's ``network`` object.

    Raises:
        NetworkCheckFailed: the action has no usable ``primary_url``.
    """
    primary = network.get("primary_url")
    if not isinstance(primary, str) or not primary.startswith(("http://", "https://")):
        raise NetworkCheckFailed(f"action has no usable network.primary_url: {primary!r}")
    return {
        "primary_url": primary.rstrip("/"),
        "fallback_url": (network.get("fallback_url") or "").rstrip("/") or None,
        "mqtt_url": network.get("mqtt_url"),
        "device_id": device_id,
    }


def write_settings(path: Path, settings: dict[str, Any]) -> bool:
    """Write the connection settings atomically; unchanged content is not rewritten.

    Returns:
        Whether the file was written.
    """
    if read_json(path) == settings:
        return False
    atomic_write_json(path, settings)
    return True


def check_links(
    settings: dict[str, Any],
    *,
    http: httpx.BaseTransport | None = None,
    timeout_s: float = 10.0,
    attempts: int = 3,
    pause_s: float = 2.0,
    sleep: Callable[[float], None] | None = None,
) -> LinkCheck:
    """Test the primary link, then the fallback, with ``GET /healthz``.

    Returns:
        The first link whose health check answered 2xx.

    Raises:
        NetworkCheckFailed: neither link answered in ``attempts`` tries.
    """
    wait = sleep or time.sleep
    links = [("primary", settings["primary_url"])]
    if settings.get("fallback_url"):
        links.append(("fallback", settings["fallback_url"]))
    tried: list[str] = []
    with httpx.Client(transport=http, timeout=timeout_s) as client:
        for attempt in range(attempts):
            if attempt:
                wait(pause_s)
            for link, url in links:
                try:
                    response = client.get(f"{url}/healthz")
                    outcome = f"HTTP {response.status_code}"
                    if response.is_success:
                        tried.append(f"{link}: {outcome}")
                        return LinkCheck(link, url, tried)
                except httpx.HTTPError as e:
                    outcome = type(e).__name__
                tried.append(f"{link}: {outcome}")
    raise NetworkCheckFailed("no link answered /healthz: " + "; ".join(tried[-4:]))
