"""Where a wave meets the rest of fleetup: deployments, upgrades, visits, notices, alerts.

A member's status is read from two records the campaign does not own: the device action
that carries its deployment (queued, held, running, succeeded, failed, rolled back) and its
chart 2 upgrade (running, waiting on a loop cap, completed). A member has succeeded when its
upgrade is complete, which includes the technician's steps after the agent's; it has
failed when the agent gave up or the upgrade waits on a cap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, case, or_, select
from sqlalchemy.orm import Session

from fleetup.accounts.models import User
from fleetup.campaigns.models import GateEvent, Visit, Wave, WaveMember
from fleetup.campaigns.schedule import ScheduleRules
from fleetup.core import audit
from fleetup.core.audit import Change, snapshot
from fleetup.core.clock import utc
from fleetup.core.context import Ctx
from fleetup.core.db import UTCDateTime
from fleetup.core.security import Role
from fleetup.customers import notices
from fleetup.devices import service as devices
from fleetup.devices.models import Device, DeviceAction
from fleetup.devices.schemas import DeploymentIn, InstallWindow
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Customer, Machine, Site
from fleetup.notify import service as notify
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary
from fleetup.upgrades.models import SopInstance

FINAL_FAILURES = ("failed", "rolled_back")
# A hold stops installing; the operations side's snapshot or restore must still run.
UPGRADE_KINDS = ("upgrade", "reinstall")


def technicians(session: Session) -> list[str]:
    """Usernames of the active technicians, in a stable order."""
    return list(
        session.scalars(
            select(User.username)
            .where(User.role == Role.technician, User.active.is_(True))
            .order_by(User.username)
        )
    )


def deploy(
    ctx: Ctx,
    library: SopLibrary,
    *,
    serial: str,
    version: str,
    window: tuple[datetime, datetime],
    base_url: str,
) -> tuple[int, int]:
    """Queue the machine's deployment with ``window`` as its install window.

    Returns:
        The device action's id and the chart 2 instance's id.
    """
    out = devices.deploy(
        ctx,
        library,
        serial=serial,
        data=DeploymentIn(
            version=version,
            install_window=InstallWindow(not_before=window[0], not_after=window[1]),
        ),
        base_url=base_url,
    )
    number = devices.parse_id("act", out.action_id)
    assert number is not None
    return number, out.instance_id


def scheduled(
    ctx: Ctx,
    *,
    visit: Visit,
    serial: str,
    wave: str,
    rules: ScheduleRules,
) -> None:
    """Tell the customer (chart 2 A: the advance notice and the reminder) and the technician
    (the visit is on their day plan) that ``visit`` is booked."""
    notices.schedule_notice(
        ctx,
        serial=serial,
        visit_start=visit.planned_start,
        visit_end=visit.planned_end,
        expected_minutes=int(rules.visit_minutes),
        technician=visit.technician,
    )
    zone = ZoneInfo(rules.timezone)
    machine = fleet.get_machine(ctx.session, serial=serial)  # the notice's, with its site
    notify.send(
        ctx,
        template="visit_assigned",
        key=f"visit-{visit.id}-assigned",
        to=[f"user:{visit.technician}"],
        params={
            "serial": serial,
            "wave": wave,
            "customer": machine.site.customer.name,
            "site": machine.site.name,
            "day": f"{utc(visit.planned_start).astimezone(zone):%Y-%m-%d}",
            "start": f"{utc(visit.planned_start).astimezone(zone):%H:%M}",
            "end": f"{utc(visit.planned_end).astimezone(zone):%H:%M}",
            "campaign_id": visit.campaign_id,
            "visit_id": visit.id,
        },
    )


def progress(
    session: Session, *, wave_id: int
) -> Sequence[tuple[WaveMember, DeviceAction | None, SopInstance | None]]:
    return session.execute(
        select(WaveMember, DeviceAction, SopInstance)
        .outerjoin(DeviceAction, WaveMember.action_id == DeviceAction.id)
        .outerjoin(SopInstance, WaveMember.instance_id == SopInstance.id)
        .where(WaveMember.wave_id == wave_id)
        .order_by(WaveMember.id)
    ).all()


@dataclass(frozen=True)
class Following:
    """A member still on its way, with what its status follows (no SOP state document)."""

    member: WaveMember
    action: DeviceAction | None
    instance_status: str | None
    instance_completed_at: datetime | None


# A member in one of these states has nothing left to follow.
SETTLED = ("succeeded", "cancelled", "unplanned", "pending")


def _status_now() -> ColumnElement[str]:
    """``member_status`` in SQL, so the database can say which members changed."""
    return case(
        (SopInstance.status == "completed", "succeeded"),
        (DeviceAction.id.is_(None), "pending"),
        (
            or_(DeviceAction.status.in_(FINAL_FAILURES), SopInstance.status == "waiting"),
            "failed",
        ),
        (DeviceAction.status == "held", "held"),
        (DeviceAction.status == "cancelled", "cancelled"),
        (DeviceAction.status == "queued", "scheduled"),
        else_="running",
    )


def following(
    session: Session, *, wave_id: int, now: datetime, changed: Changed | None = None
) -> list[Following]:
    """The wave's unsettled members whose status changed, or whose install window closed.

    The worker follows every running wave at each look. The database compares each member's
    stored status with what its action and SOP instance say now, so a look reads only the
    members that moved (and never an SOP instance's whole state). Given ``changed``, the
    stretch of the audit trail since the last look, it compares only the members whose action
    or upgrade appears there, and those whose window closed (both found by index), so a look
    costs what changed, not the size of the wave.
    """
    if changed is None:
        rows = session.execute(_FOLLOW_WAVE, {"wave_id": wave_id, "now": now}).all()
    else:
        rows = session.execute(
            _FOLLOW_CHANGED,
            {"wave_id": wave_id, "now": now, "since": changed.since, "until": changed.until},
        ).all()
    return [Following(*row) for row in rows]


def _closed_windows(now: datetime | ColumnElement[datetime]) -> Select[int]:
    """The queued actions whose install window closed before ``now`` (read by index)."""
    return select(DeviceAction.id).where(
        DeviceAction.status == "queued", DeviceAction.not_after < now
    )


@dataclass(frozen=True)
class Changed:
    """A stretch of the audit trail: the events after position ``since`` up to ``until``."""

    since: int
    until: int


def _touched(
    since: int | ColumnElement[int], until: int | ColumnElement[int] | None = None
) -> ColumnElement[bool]:
    """A member whose action or upgrade has an audit event after ``since`` (up to ``until``),
    found by the indexes on the members' action and upgrade."""
    return or_(
        WaveMember.action_id.in_(audit.changed_ids(DeviceAction, since, until)),
        WaveMember.instance_id.in_(audit.changed_ids(SopInstance, since, until)),
    )


def members_touched(
    now: ColumnElement[datetime], after: ColumnElement[int], waves: ColumnElement[bool]
) -> ColumnElement[bool]:
    """True when a member of a wave matching ``waves`` moved because its action or upgrade
    changed after audit position ``after``: the changes to those two tables that give the
    worker something to follow, found by index whatever the size of the waves."""
    return (
        select(WaveMember.id)
        .outerjoin(DeviceAction, WaveMember.action_id == DeviceAction.id)
        .outerjoin(SopInstance, WaveMember.instance_id == SopInstance.id)
        .where(_touched(after), _moved(now), _in_waves(waves))
        .exists()
    )


def _in_waves(waves: ColumnElement[bool]) -> ColumnElement[bool]:
    """The member's wave matches ``waves``, asked of each member found some other way. (As a
    join or a condition on the member's wave, SQLite finds the members by their wave's index
    instead, reading the whole wave to test each member against what changed.)"""
    return select(Wave.id).where(Wave.id == WaveMember.wave_id, waves).exists()


def _moved(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """A member (joined with its action and instance) that ``following`` returns."""
    return and_(
        WaveMember.status.not_in(SETTLED),
        or_(
            _status_now() != WaveMember.status,
            and_(DeviceAction.status == "queued", DeviceAction.not_after < now),
        ),
    )


# ``following`` asks one of these of every running wave at each look: built once.
_NOW = bindparam("now", type_=UTCDateTime())
_MEMBERS = (
    select(WaveMember, DeviceAction, SopInstance.status, SopInstance.completed_at)
    .outerjoin(DeviceAction, WaveMember.action_id == DeviceAction.id)
    .outerjoin(SopInstance, WaveMember.instance_id == SopInstance.id)
    .order_by(WaveMember.id)
)
_FOLLOW_WAVE = _MEMBERS.where(WaveMember.wave_id == bindparam("wave_id"), _moved(_NOW))
_FOLLOW_CHANGED = _MEMBERS.where(
    or_(
        _touched(bindparam("since", type_=Integer), bindparam("until", type_=Integer)),
        WaveMember.action_id.in_(_closed_windows(_NOW)),
    ),
    _in_waves(Wave.id == bindparam("wave_id")),
    _moved(_NOW),
)


def window_closed(now: ColumnElement[datetime], waves: ColumnElement[bool]) -> ColumnElement[bool]:
    """True when an unsettled member of a wave matching ``waves`` is still queued after its
    install window closed: what a look must follow that no audited change says."""
    return (
        select(WaveMember.id)
        .where(
            WaveMember.action_id.in_(_closed_windows(now)),
            WaveMember.status.not_in(SETTLED),
            _in_waves(waves),
        )
        .exists()
    )


def member_status(action: DeviceAction | None, instance: SopInstance | str | None) -> str:
    """A member's status from its action and its SOP instance (or that instance's status)."""
    instance_status = instance.status if isinstance(instance, SopInstance) else instance
    if instance_status == "completed":
        return "succeeded"
    if action is None:
        return "pending"
    if action.status in FINAL_FAILURES or instance_status == "waiting":
        return "failed"
    if action.status == "held":
        return "held"
    if action.status == "cancelled":
        return "cancelled"
    if action.status == "queued":
        return "scheduled"
    return "running"


def window_passed(ctx: Ctx, action: DeviceAction) -> bool:
    """The install window closed before the IPC started: the visit was missed."""
    return (
        action.status == "queued" and action.not_after is not None and action.not_after < ctx.now()
    )


def follow_visits(
    ctx: Ctx, moved: Sequence[tuple[WaveMember, str, datetime | None]], *, wave_id: int
) -> None:
    """Bring the visits of members whose status moved (to ``status``, the upgrade completed at
    ``completed_at``) along: started when the machine runs, done when it is settled. The
    visits are read together and their changes audited together."""
    if not moved:
        return
    current: dict[int, Visit] = {}
    # Found by the machines' index; the wave is checked here, since asked in the query it
    # leads SQLite to read every visit of the wave instead.
    for found in ctx.session.scalars(
        select(Visit)
        .where(
            Visit.machine_id.in_([member.machine_id for member, _, _ in moved]),
            Visit.status.in_(("planned", "in_progress")),
        )
        .order_by(Visit.id)
    ):
        if found.wave_id == wave_id:
            current[found.machine_id] = found  # the latest one per machine
    changes = []
    for member, status, completed_at in moved:
        visit = current.get(member.machine_id)
        if visit is None:
            continue
        before = snapshot(visit)
        if status == "running" and visit.status == "planned":
            visit.status = "in_progress"
            visit.actual_start = ctx.now()
        elif status in ("succeeded", "failed") and visit.status in ("planned", "in_progress"):
            visit.status = "done"
            visit.actual_start = visit.actual_start or ctx.now()
            visit.actual_end = completed_at or ctx.now()
        else:
            continue
        changes.append(Change("update", visit, before))
    ctx.audit_all(changes)


def _current_visit(session: Session, machine_id: int, wave_id: int) -> Visit | None:
    return session.scalar(
        select(Visit)
        .where(
            Visit.machine_id == machine_id,
            Visit.wave_id == wave_id,
            Visit.status.in_(("planned", "in_progress")),
        )
        .order_by(Visit.id.desc())
    )


def cancel_visits(ctx: Ctx, machine_ids: Iterable[int], *, wave_id: int) -> None:
    for machine_id in machine_ids:
        visit = _current_visit(ctx.session, machine_id, wave_id)
        if visit is None:
            continue
        before = snapshot(visit)
        visit.status = "cancelled"
        ctx.audit("cancel", visit, before)


def _set_action(ctx: Ctx, action: DeviceAction, status: str, note: str) -> None:
    _set_actions(ctx, [action], status, note)


def _set_actions(ctx: Ctx, actions: Sequence[DeviceAction], status: str, note: str) -> None:
    """Move ``actions`` to ``status``, audited together; each IPC's next poll sees a new
    ETag."""
    if not actions:
        return
    befores = [snapshot(action) for action in actions]
    now = ctx.now()
    for action in actions:
        action.status = status
        action.updated_at = now
    ctx.audit_all(
        [
            Change("update", action, before, note=note)
            for action, before in zip(actions, befores, strict=True)
        ]
    )
    moved = Counter(action.machine_id for action in actions)
    for device in ctx.session.scalars(select(Device).where(Device.machine_id.in_(list(moved)))):
        device.changes += moved[device.machine_id]


def _actions(
    session: Session, members: Iterable[WaveMember]
) -> list[tuple[WaveMember, DeviceAction]]:
    listed = [member for member in members if member.action_id is not None]
    actions = {
        action.id: action
        for action in session.scalars(
            select(DeviceAction).where(DeviceAction.id.in_([member.action_id for member in listed]))
        )
    }
    return [
        (member, actions[member.action_id])
        for member in listed
        if member.action_id is not None and member.action_id in actions
    ]


def hold(ctx: Ctx, members: Iterable[WaveMember]) -> int:
    """Hold the members' deployments the IPC has not started; returns how many."""
    queued = [(m, a) for m, a in _actions(ctx.session, members) if a.status == "queued"]
    _set_actions(ctx, [action for _, action in queued], "held", "wave paused")
    for member, _ in queued:
        member.status = "held"
    return len(queued)


def release(ctx: Ctx, members: Iterable[WaveMember]) -> int:
    held = [(m, a) for m, a in _actions(ctx.session, members) if a.status == "held"]
    _set_actions(ctx, [action for _, action in held], "queued", "wave resumed")
    for member, _ in held:
        member.status = "scheduled"
    return len(held)


def cancel(ctx: Ctx, members: Iterable[WaveMember]) -> None:
    open_actions = [
        action
        for _, action in _actions(ctx.session, members)
        if action.status in ("queued", "held")
    ]
    _set_actions(ctx, open_actions, "cancelled", "wave aborted")


def hold_machine_actions(ctx: Ctx, *, serial: str, reason: str) -> int:
    """Hold a machine's queued actions outside any wave."""
    machine = ctx.session.scalar(select(Machine).where(Machine.serial == serial))
    if machine is None:
        return 0
    actions = ctx.session.scalars(
        select(DeviceAction).where(
            DeviceAction.machine_id == machine.id,
            DeviceAction.status == "queued",
            DeviceAction.kind.in_(UPGRADE_KINDS),
        )
    ).all()
    for action in actions:
        _set_action(ctx, action, "held", reason)
    return len(actions)


def prepare_retry(ctx: Ctx, member: WaveMember) -> None:
    """Set a failed machine up for a new deployment.

    An upgrade waiting on a loop cap cannot take the agent's reports any more; it is closed
    as abandoned and the retry starts a new one. A running upgrade (at M reinstall or R
    troubleshoot) goes on with the new deployment.
    """
    if member.instance_id is not None:
        instance = upgrades.get(ctx.session, instance_id=member.instance_id)
        if instance.status == "waiting":
            upgrades.abandon(ctx, instance_id=instance.id, reason="the wave retries this machine")
    member.action_id = None
    member.instance_id = None
    member.status = "pending"


def alert(ctx: Ctx, wave: Wave, event: GateEvent, *, template: str) -> None:
    """Tell the managers (and, for a pause, the on-call engineers) what the gate did."""
    recipients = ["role:manager"]
    if template == "gate_paused":
        recipients.append("role:on_call")
    notify.send(
        ctx,
        template=template,
        key=f"gate-event-{event.id}",
        to=recipients,
        params={
            "wave": wave.code,
            "wave_title_zh_tw": wave.title_zh_tw,
            "wave_title_en": wave.title_en,
            "campaign_id": wave.campaign_id,
            "reason": event.reason,
            "counts": event.counts,
        },
    )


def visits_for(
    session: Session,
    *,
    campaign_id: int,
    technician: str | None = None,
    day_start: datetime | None = None,
    day_end: datetime | None = None,
    status: str | None = None,
) -> Sequence[tuple[Visit, Machine, str]]:
    query = (
        select(Visit, Machine, Wave.code)
        .join(Machine, Visit.machine_id == Machine.id)
        .join(Wave, Visit.wave_id == Wave.id)
        .join(Site, Machine.site_id == Site.id)
        .join(Customer, Site.customer_id == Customer.id)
        .where(Visit.campaign_id == campaign_id)
        .order_by(Visit.planned_start, Visit.id)
    )
    if technician:
        query = query.where(Visit.technician == technician)
    if day_start is not None:
        query = query.where(Visit.planned_start >= day_start)
    if day_end is not None:
        query = query.where(Visit.planned_start < day_end)
    if status is not None:
        query = query.where(Visit.status == status)
    return session.execute(query).all()
