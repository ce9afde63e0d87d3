"""The campaign's worker job: every running campaign's ``tick``, one transaction each."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fleetup.campaigns import waves
from fleetup.core.context import Ctx

if TYPE_CHECKING:
    from fleetup.api.deps import Server

EVERY = timedelta(minutes=1)
# What gives ``check_gates`` work besides ``waves.tick_pending``: changes to the campaign's
# own tables, and to device actions and upgrades (a member's status follows both), of which
# ``waves.tick_changed`` picks those that moved a member.
CHANGES = (*waves.CAMPAIGN_TABLES, "device_actions", "sop_instances")
CHANGED = waves.tick_changed
PENDING = waves.tick_pending
# Where a server keeps, by wave id, the audit position its last committed look followed
# the wave's members to. A new process has none: its first look compares every member.
FOLLOWED = "_campaigns_followed"


def check_gates(parts: Server) -> int:
    """Start due waves, follow their machines, apply the gates; returns campaigns looked at."""
    followed: dict[int, int] = getattr(parts, FOLLOWED, None) or {}
    setattr(parts, FOLLOWED, followed)
    with parts.sessions() as session:
        campaign_ids = waves.due_for_tick(session)
    for campaign_id in campaign_ids:
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="system:campaign", clock=parts.clock)
            reached = waves.tick(
                ctx,
                parts.library,
                campaign_id=campaign_id,
                base_url=parts.settings.effective_base_url,
                followed=followed,
            )
            session.commit()
        followed.update(reached)
    return len(campaign_ids)
