"""The other domains' functions operations calls: notifications, remote device actions, waves.

They are looked up when called rather than imported at load time, so this domain works (and
says clearly what it could not do) on a server where one of them is not installed. Tests swap
a fake in by replacing the functions of this module, the one seam to the outside.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict

REMOTE = "fleetup.devices.remote"
NOTIFY = "fleetup.notify.service"
# Waves live in campaigns' ``waves`` module; ``service`` is looked at first.
CAMPAIGNS = ("fleetup.campaigns.service", "fleetup.campaigns.waves")


def _find(module: str | tuple[str, ...], name: str) -> Callable[..., Any] | None:
    for each in (module,) if isinstance(module, str) else module:
        try:
            found = getattr(importlib.import_module(each), name, None)
        except ModuleNotFoundError:
            continue
        if callable(found):
            function: Callable[..., Any] = found
            return function
    return None


@dataclass(frozen=True)
class ActionState:
    """Where a remote device action stands: queued, running, succeeded or failed."""

    status: str
    evidence: dict[str, Any]


def notify(
    ctx: Ctx, *, template: str, key: str, to: Sequence[str], params: Mapping[str, Any]
) -> int:
    """Queue a notification in the caller's transaction; 0 when notifications are not installed."""
    send = _find(NOTIFY, "send")
    if send is None:
        return 0
    queued: int = send(ctx, template=template, key=key, to=list(to), params=dict(params))
    return queued


def request(ctx: Ctx, name: str, **arguments: Any) -> str:
    """Ask a machine's IPC to do something (``request_diagnostics``, ``swap_spare`` ...).

    Returns:
        The action id (``act-N``); for ``swap_spare`` the one-time enrollment token.

    Raises:
        Conflict: remote device actions are not available on this server.
    """
    function = _find(REMOTE, name)
    if function is None:
        raise Conflict(f"remote device actions ({name}) are not available on this server")
    answer: str = function(ctx, **arguments)
    return answer


def action_state(session: Session, *, action_id: str) -> ActionState | None:
    """The state of a remote action, or None when it cannot be read."""
    function = _find(REMOTE, "action_state")
    if function is None or not action_id:
        return None
    found = function(session, action_id=action_id)
    status = str(getattr(found, "status", ""))
    evidence = getattr(found, "evidence", None)
    return ActionState(status=status, evidence=dict(evidence or {}))


def campaign_call(ctx: Ctx, name: str, **arguments: Any) -> bool:
    """Call ``hold_machine`` or ``pause_wave_of``; False when campaigns do not offer it."""
    function = _find(CAMPAIGNS, name)
    if function is None:
        return False
    function(ctx, **arguments)
    return True


def wave_stats(session: Session) -> list[Any] | None:
    """Per-wave counts from campaigns, or None when campaigns do not provide them."""
    function = _find(CAMPAIGNS, "wave_stats")
    if function is None:
        return None
    return list(function(session))


def wave_failures() -> ColumnElement[bool] | None:
    """True when a started wave has a failed machine (a superset of a failure spike), or
    None when there are no campaigns."""
    if _find(CAMPAIGNS, "wave_stats") is None:
        return None
    from fleetup.campaigns.models import Wave, WaveMember

    return (
        select(WaveMember.id)
        .join(Wave, WaveMember.wave_id == Wave.id)
        .where(WaveMember.status == "failed", Wave.status != "planned")
        .exists()
    )


def wave_of(session: Session, *, serial: str) -> str | None:
    """The code of the running or paused wave a machine belongs to, if any."""
    from fleetup.campaigns.models import Wave, WaveMember
    from fleetup.fleet.models import Machine

    found = session.scalar(
        select(Wave.code)
        .join(WaveMember, WaveMember.wave_id == Wave.id)
        .join(Machine, WaveMember.machine_id == Machine.id)
        .where(Machine.serial == serial, Wave.status.in_(("running", "paused")))
        .order_by(WaveMember.id.desc())
        .limit(1)
    )
    return None if found is None else str(found)
