"""Actions from the server: polling ``/device/v1/actions/next`` and checking what came,
and the evidence a failed step reports.

:func:`poll_next_action` sends ``If-None-Match`` with the last ETag, so an unchanged answer
costs a 304 and no body. :func:`action_problem` and :func:`window_position` check an action
before the runner takes it on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fleetup.agent._internal.clock import Clock, parse_iso
from fleetup.agent._internal.files import tail
from fleetup.agent._internal.process import CommandResult
from fleetup.agent.errors import (
    DownloadRefused,
    HookFailed,
    PackageRejected,
    SelfTestFailed,
    ServerRejected,
)
from fleetup.agent.transport import Transport


def poll_next_action(
    transport: Transport, etag: str | None
) -> tuple[str | None, dict[str, Any] | None, bool]:
    """Ask the server for the next action.

    Args:
        transport: the server seam.
        etag: the ETag of the last 200 answer, or ``None``.

    Returns:
        ``(etag, action, changed)``: the ETag to send next time, the action (``None`` when
        there is none) and whether the answer was new (``False`` on 304).

    Raises:
        ServerError: the server could not be reached or refused.
    """
    headers = {"If-None-Match": etag} if etag else {}
    response = transport.request("GET", "/device/v1/actions/next", headers=headers, ok=(200, 304))
    if response.status_code == 304:
        return etag, None, False
    try:
        body = response.json()
    except ValueError as e:
        raise ServerRejected(200, f"actions/next answer is not JSON: {e}") from e
    action = body.get("action") if isinstance(body, dict) else None
    return response.headers.get("ETag"), action if isinstance(action, dict) else None, True


def action_problem(action: dict[str, Any]) -> str | None:
    """What is missing or wrong in an upgrade action, or ``None`` when it is usable."""
    release = action.get("release")
    if not isinstance(release, dict):
        return "no release"
    for key, kind in (("version", str), ("target", str), ("sha256", str), ("length", int)):
        if not isinstance(release.get(key), kind):
            return f"release.{key} is missing or not a {kind.__name__}"
    if not re.fullmatch(r"[0-9a-f]{64}", release["sha256"]):
        return "release.sha256 is not a hex sha256"
    network = action.get("network")
    if not isinstance(network, dict) or not network.get("primary_url"):
        return "network.primary_url is missing"
    return None


def window_position(window: Any, clock: Clock) -> str:
    """``open``, ``not_yet`` or ``closed``: where now is relative to an install window."""
    if not isinstance(window, dict):
        return "open"
    now = clock.now()
    try:
        if window.get("not_before") and now < parse_iso(window["not_before"]):
            return "not_yet"
        if window.get("not_after") and now > parse_iso(window["not_after"]):
            return "closed"
    except ValueError:
        return "open"
    return "open"


def read_package_json(path: Path) -> Any:
    """Read a JSON file of an installed package.

    Raises:
        PackageRejected: it is missing or not JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PackageRejected(f"{path} cannot be read: {e}") from e


def failure_evidence(error: BaseException) -> dict[str, Any]:
    """The evidence of a failed step: the error, its kind, and what the user needs to see."""
    evidence: dict[str, Any] = {
        "error": str(error) or type(error).__name__,
        "error_kind": type(error).__name__,
        "will_retry": bool(getattr(error, "transient", False)),
    }
    if isinstance(error, DownloadRefused):
        evidence["refused_reason"] = error.reason
    if isinstance(error, HookFailed | SelfTestFailed):
        evidence.update(
            command=error.command, returncode=error.returncode, output_tail=error.output_tail
        )
    return evidence


def command_evidence(result: CommandResult) -> dict[str, Any]:
    """The evidence of one hook command."""
    return {
        "command": result.command,
        "returncode": result.returncode,
        "duration_s": round(result.duration_s, 3),
        "output_tail": tail(result.output, lines=10, limit=1000),
    }
