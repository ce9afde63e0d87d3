"""The new cloud platform's connection settings, and the link test (SOP chart 3, D and D1).

:func:`write_settings` writes the settings file the new IPC program reads (JSON, atomic).
:func:`check_links` asks ``GET <url>/healthz`` on the primary URL, then on the fallback (4G)
URL, a few times each, and says which link answered; no answer on either raises
:class:`~fleetup.agent.errors.NetworkCheckFailed`.

The agent's own link to fleetup is remembered in ``work_dir/link.json`` once the server
moved it to the 4G fallback (:func:`save_link_state`, :func:`apply_link_state`), so a restart
or the heartbeat's own transport keep using it. :func:`diagnose_url` gives the evidence of a
``diagnose`` action for one URL: DNS, the route (local address the OS would use) and
``GET /healthz``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fleetup.agent._internal.files import atomic_write_json, read_json
from fleetup.agent.errors import NetworkCheckFailed
from fleetup.agent.transport import Transport

LINK_STATE_FILE = "link.json"


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


def save_link_state(work_dir: Path, *, link: str, url: str | None) -> None:
    """Remember which link the server asked for (``4g`` with its URL, or ``primary``)."""
    atomic_write_json(work_dir / LINK_STATE_FILE, {"link": link, "url": url})


def load_link_state(work_dir: Path) -> dict[str, Any] | None:
    """The remembered link, or ``None`` when the server never moved it."""
    path = work_dir / LINK_STATE_FILE
    if not path.exists():
        return None
    with contextlib.suppress(OSError, ValueError):
        state = read_json(path)
        if isinstance(state, dict):
            return state
    return None


def apply_link_state(transport: Transport, work_dir: Path) -> str | None:
    """Put ``transport`` on the remembered link; returns that link (``None``: as configured)."""
    state = load_link_state(work_dir)
    if not state or state.get("link") != "4g":
        return None
    url = state.get("url")
    if not transport.pinned or (url and transport.urls.get("fallback") != url):
        try:
            transport.pin_fallback(url if isinstance(url, str) else None)
        except ValueError:
            return None
    return "4g"


def diagnose_url(
    link: str, url: str, *, http: httpx.BaseTransport | None = None, timeout_s: float = 5.0
) -> dict[str, Any]:
    """DNS, route and reachability of one base URL; each part says ``ok`` and why not.

    Never raises: a diagnosis reports what failed instead.
    """
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: dict[str, Any] = {"link": link, "url": url, "host": host, "port": port}
    addresses: list[str] = []
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = sorted({str(info[4][0]) for info in infos})
        result["dns"] = {"ok": True, "addresses": addresses, "ms": _ms(started)}
    except OSError as e:
        result["dns"] = {"ok": False, "error": f"{type(e).__name__}: {e}", "ms": _ms(started)}
    result["route"] = _route(addresses, port)
    started = time.monotonic()
    try:
        with httpx.Client(transport=http, timeout=timeout_s) as client:
            response = client.get(f"{url.rstrip('/')}/healthz")
        result["reachable"] = {
            "ok": response.is_success,
            "status": response.status_code,
            "ms": _ms(started),
        }
    except httpx.HTTPError as e:
        result["reachable"] = {
            "ok": False,
            "error": f"{type(e).__name__}: {e}",
            "ms": _ms(started),
        }
    return result


def _route(addresses: list[str], port: int) -> dict[str, Any]:
    """The local address the OS routes to the first resolved address (a UDP connect sends
    nothing), which tells "no route" apart from "server down"."""
    if not addresses:
        return {"ok": False, "error": "no address to route to"}
    address = addresses[0]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((address, port))
            local = probe.getsockname()[0]
        return {"ok": True, "to": address, "local_address": str(local)}
    except OSError as e:
        return {"ok": False, "to": address, "error": f"{type(e).__name__}: {e}"}


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
