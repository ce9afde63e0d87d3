"""The old system's shutdown (chart 1 E4): a gate that lists what still blocks it.

The old system may be shut down once every machine of the fleet runs on the new platform,
no incident is open, every migrated machine has a verified backup, and every migrated
machine's customer has signed the acceptance (chart 2 T). Shutting down records who, when,
why and where the old system's data archive is kept, and finishes activity E4.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.campaigns.models import Campaign
from fleetup.campaigns.schemas import BlockersOut, ShutdownIn
from fleetup.campaigns.service import get, set_activity_status
from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict
from fleetup.devices.models import BackupUpload, DeviceAction
from fleetup.fleet.models import Machine, MachineState
from fleetup.upgrades.library import UPGRADE_CHART
from fleetup.upgrades.models import SopInstance

INCIDENT_CHART = "chart6"
ACCEPTANCE_NODE = "T"


def _signed(instance: SopInstance) -> bool:
    for run in instance.state.get("runs", ()):
        if run.get("node") == ACCEPTANCE_NODE and run.get("status") == "done":
            return True
    return False


def blockers(session: Session, *, campaign_id: int) -> BlockersOut:
    """What keeps the old system on; all lists empty means it may be shut down."""
    campaign = get(session, campaign_id=campaign_id)
    machines = session.scalars(
        select(Machine).where(Machine.state != MachineState.retired).order_by(Machine.serial)
    ).all()
    not_migrated = [m.serial for m in machines if m.state != MachineState.on_new_platform]
    incidents = session.execute(
        select(SopInstance.id, SopInstance.subject_ref).where(
            SopInstance.chart_id == INCIDENT_CHART, SopInstance.status.in_(("running", "waiting"))
        )
    ).all()
    open_incidents = [f"incident {number} ({subject})" for number, subject in incidents]
    migrated = [m for m in machines if m.state == MachineState.on_new_platform]
    verified = _verified_backups(session)
    unverified = [m.serial for m in migrated if m.id not in verified]
    missing = []
    for machine in migrated:
        instance = session.scalar(
            select(SopInstance)
            .where(
                SopInstance.machine_id == machine.id,
                SopInstance.chart_id == UPGRADE_CHART,
                SopInstance.status == "completed",
            )
            .order_by(SopInstance.id.desc())
        )
        if instance is None or not _signed(instance):
            missing.append(machine.serial)
    return BlockersOut(
        not_migrated=not_migrated,
        open_incidents=open_incidents,
        unverified_backups=unverified,
        missing_acceptances=missing,
        shut_down=campaign.shutdown_at is not None,
        shutdown_at=campaign.shutdown_at,
        archive=campaign.shutdown_archive,
    )


def _verified_backups(session: Session) -> set[int]:
    rows = session.scalars(
        select(DeviceAction.machine_id)
        .join(BackupUpload, BackupUpload.action_id == DeviceAction.id)
        .where(BackupUpload.blob_sha256.isnot(None))
    )
    return set(rows)


def shut_down(ctx: Ctx, *, campaign_id: int, data: ShutdownIn) -> Campaign:
    """Record the old system's shutdown once nothing blocks it.

    Raises:
        Conflict: something still blocks it (the message lists how many of each), or it was
            shut down already.
    """
    campaign = get(ctx.session, campaign_id=campaign_id)
    if campaign.shutdown_at is not None:
        raise Conflict(f"the old system was shut down already, at {campaign.shutdown_at}")
    found = blockers(ctx.session, campaign_id=campaign_id)
    if not found.clear:
        raise Conflict(
            "the old system cannot be shut down yet: "
            f"{len(found.not_migrated)} machines not on the new platform, "
            f"{len(found.open_incidents)} open incidents, "
            f"{len(found.unverified_backups)} machines without a verified backup, "
            f"{len(found.missing_acceptances)} acceptances missing"
        )
    before = snapshot(campaign)
    campaign.shutdown_at = ctx.now()
    campaign.shutdown_by = ctx.actor
    campaign.shutdown_archive = data.archive
    campaign.shutdown_note = data.reason
    ctx.audit("shutdown", campaign, before)
    set_activity_status(ctx, campaign, "E4", "done")
    return campaign
