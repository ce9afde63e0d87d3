"""The campaign's worker job: every running campaign's ``tick``, one transaction each."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from fleetup.campaigns import waves
from fleetup.core.context import Ctx

if TYPE_CHECKING:
    from fleetup.api.deps import Server

EVERY = timedelta(minutes=1)
# What gives ``check_gates`` work besides ``waves.tick_pending``: a campaign started or
# stopped, a wave edited, and every decision, retry, hold or late joiner (a gate event each).
CHANGES = ("campaigns", "campaign_waves", "campaign_gate_events")
PENDING = waves.tick_pending


def check_gates(parts: Server) -> int:
    """Start due waves, follow their machines, apply the gates; returns campaigns looked at."""
    with parts.sessions() as session:
        campaign_ids = waves.due_for_tick(session)
    for campaign_id in campaign_ids:
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="system:campaign", clock=parts.clock)
            waves.tick(
                ctx,
                parts.library,
                campaign_id=campaign_id,
                base_url=parts.settings.effective_base_url,
            )
            session.commit()
    return len(campaign_ids)
