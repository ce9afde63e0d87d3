"""Waves: who is in them, starting them, following their machines, and their gates.

``tick`` is what the worker runs every minute of the server's clock for a running campaign:
it starts each wave at its planned time once the wave before it has opened its gate, brings
every member's status up to date from its device action and chart 2 upgrade, re-plans a
visit the machine missed, and applies the gate rules (``gates.py``). Everything a manager
does to a wave (approve, pause, resume, abort, retry, add machines) is a gate event with a
reason, kept in the audit trail.

Starting a wave picks its members, books technicians' visits (``schedule.py``) and queues
each machine's deployment with the visit as its install window, so the IPC may download at
any time but installs only while its technician is on site, inside the site's maintenance
window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from fleetup.campaigns import deployments
from fleetup.campaigns.deployments import Changed
from fleetup.campaigns.gates import GateRule, WaveCounts, evaluate
from fleetup.campaigns.models import Campaign, GateEvent, Visit, Wave, WaveMember
from fleetup.campaigns.schedule import Booking, MachineJob, ScheduleRules, plan_visits
from fleetup.campaigns.schemas import CountsOut, Selection, WaveUpdate
from fleetup.campaigns.service import get, set_activity_status
from fleetup.core import audit
from fleetup.core.audit import AuditEvent, snapshot
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.fleet.models import Customer, Machine, MachineState, Site
from fleetup.upgrades.library import SopLibrary

OPEN_WAVE = ("planned", "running", "paused")
FINISHED = ("succeeded", "failed", "cancelled", "unplanned")
MEMBER_STATES = (
    "pending",
    "scheduled",
    "running",
    "succeeded",
    "failed",
    "held",
    "cancelled",
    "unplanned",
)


@dataclass(frozen=True)
class WaveStats:
    """A wave's figures, as monitoring reads them."""

    campaign_id: int
    code: str
    status: str
    total: int
    running: int
    failed: int
    succeeded: int


def get_wave(session: Session, *, campaign_id: int, code: str) -> Wave:
    wave = session.scalar(select(Wave).where(Wave.campaign_id == campaign_id, Wave.code == code))
    if wave is None:
        raise NotFound(f"campaign {campaign_id} has no wave {code}")
    return wave


def waves_of(session: Session, *, campaign_id: int) -> Sequence[Wave]:
    return session.scalars(
        select(Wave).where(Wave.campaign_id == campaign_id).order_by(Wave.position)
    ).all()


def members_of(session: Session, *, wave_id: int) -> Sequence[WaveMember]:
    return session.scalars(
        select(WaveMember).where(WaveMember.wave_id == wave_id).order_by(WaveMember.id)
    ).all()


def counts(session: Session, *, wave_id: int) -> CountsOut:
    return counts_of(session, wave_ids=[wave_id])[wave_id]


def counts_of(session: Session, *, wave_ids: Sequence[int]) -> dict[int, CountsOut]:
    """The members of each wave by status, for several waves in one query."""
    by_wave = {wave_id: {status: 0 for status in MEMBER_STATES} for wave_id in wave_ids}
    rows = session.execute(_COUNTS, {"wave_ids": list(by_wave)})
    for wave_id, status, number in rows:
        by_wave[wave_id][status] = number
    return {
        wave_id: CountsOut(total=sum(by_status.values()), **by_status)
        for wave_id, by_status in by_wave.items()
    }


# Asked at every look at a running wave and every campaign page: built once.
_COUNTS = (
    select(WaveMember.wave_id, WaveMember.status, func.count())
    .where(WaveMember.wave_id.in_(bindparam("wave_ids", expanding=True)))
    .group_by(WaveMember.wave_id, WaveMember.status)
)


def _gate_counts(out: CountsOut) -> WaveCounts:
    return WaveCounts(
        total=out.total - out.cancelled,
        succeeded=out.succeeded,
        failed=out.failed + out.unplanned,
        running=out.running + out.scheduled,
        pending=out.pending,
        held=out.held,
    )


def wave_stats(session: Session, *, campaign_id: int | None = None) -> list[WaveStats]:
    """The figures of every started wave (of one campaign, or of all), in one query."""
    query = (
        select(Wave.id, Wave.campaign_id, Wave.code, Wave.status, WaveMember.status, func.count())
        .outerjoin(WaveMember, WaveMember.wave_id == Wave.id)
        .where(Wave.status != "planned")
        .group_by(
            Wave.id, Wave.campaign_id, Wave.position, Wave.code, Wave.status, WaveMember.status
        )
        .order_by(Wave.campaign_id, Wave.position)
    )
    if campaign_id is not None:
        query = query.where(Wave.campaign_id == campaign_id)
    waves: dict[int, tuple[int, str, str]] = {}
    by_status: dict[int, dict[str, int]] = {}
    for wave_id, owner, code, status, member_status, number in session.execute(query):
        waves.setdefault(wave_id, (owner, code, status))
        if member_status is not None:
            by_status.setdefault(wave_id, {})[member_status] = number
    stats = []
    for wave_id, (owner, code, status) in waves.items():
        found = by_status.get(wave_id, {})
        stats.append(
            WaveStats(
                owner,
                code,
                status,
                sum(found.values()),
                found.get("running", 0) + found.get("scheduled", 0),
                found.get("failed", 0),
                found.get("succeeded", 0),
            )
        )
    return stats


def _event(ctx: Ctx, wave: Wave, kind: str, reason: str = "") -> GateEvent:
    event = GateEvent(
        wave_id=wave.id,
        at=ctx.now(),
        actor=ctx.actor,
        kind=kind,
        reason=reason,
        counts=counts(ctx.session, wave_id=wave.id).model_dump(),
    )
    ctx.session.add(event)
    ctx.session.flush()
    ctx.audit("create", event, None)
    return event


def gate_events(session: Session, *, campaign_id: int) -> Sequence[tuple[GateEvent, str]]:
    return session.execute(
        select(GateEvent, Wave.code)
        .join(Wave, GateEvent.wave_id == Wave.id)
        .where(Wave.campaign_id == campaign_id)
        .order_by(GateEvent.id)
    ).all()


# -- editing ---------------------------------------------------------------------------------


def update_wave(ctx: Ctx, *, campaign_id: int, code: str, data: WaveUpdate) -> Wave:
    """Change a wave's selection and start (while planned) or its gate (until it finishes).

    Raises:
        Conflict: the wave has started (selection, start) or finished (gate).
    """
    wave = get_wave(ctx.session, campaign_id=campaign_id, code=code)
    fields = data.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    if ("selection" in fields or "planned_start" in fields) and wave.status != "planned":
        raise Conflict(f"wave {code} is {wave.status}; its machines and start are set")
    if wave.status in ("completed", "aborted"):
        raise Conflict(f"wave {code} is {wave.status}")
    before = snapshot(wave)
    if data.selection is not None:
        wave.selection = data.selection.model_dump(exclude_none=True)
    if data.planned_start is not None:
        wave.planned_start = data.planned_start
    if data.gate is not None:
        wave.gate = data.gate.model_dump()
    ctx.audit("update", wave, before)
    return wave


# -- choosing machines -----------------------------------------------------------------------


def _taken(session: Session, campaign_id: int) -> set[int]:
    rows = session.scalars(
        select(WaveMember.machine_id)
        .join(Wave, WaveMember.wave_id == Wave.id)
        .where(Wave.campaign_id == campaign_id, WaveMember.status != "cancelled")
    )
    return set(rows)


def _candidates(session: Session, campaign_id: int) -> list[tuple[Machine, Site, Customer]]:
    taken = _taken(session, campaign_id)
    rows = session.execute(
        select(Machine, Site, Customer)
        .join(Site, Machine.site_id == Site.id)
        .join(Customer, Site.customer_id == Customer.id)
        .where(Machine.state.notin_([MachineState.retired, MachineState.on_new_platform]))
        .order_by(Customer.code, Site.code, Machine.serial)
    ).all()
    return [(m, s, c) for m, s, c in rows if m.id not in taken]


def choose(session: Session, *, campaign_id: int, selection: Selection) -> list[Machine]:
    """The machines a wave with ``selection`` would take now, in a stable order."""
    candidates = _candidates(session, campaign_id)
    if selection.kind == "filter":
        candidates = [
            (m, s, c)
            for m, s, c in candidates
            if (selection.customer is None or c.code == selection.customer)
            and (selection.site is None or s.code == selection.site)
            and (selection.model is None or m.model == selection.model)
        ]
    limit: int | None = selection.count
    if selection.kind == "percent":
        fleet_size = session.scalar(
            select(func.count()).select_from(Machine).where(Machine.state != MachineState.retired)
        )
        limit = math.ceil((fleet_size or 0) * (selection.percent or 0) / 100)
    if selection.kind == "rest":
        limit = None
    machines = [m for m, _, _ in candidates]
    return machines if limit is None else machines[:limit]


# -- starting and following ------------------------------------------------------------------


def _jobs(session: Session, machine_ids: Iterable[int]) -> list[MachineJob]:
    rows = session.execute(
        select(Machine.serial, Site.id, Site.timezone, Site.maintenance_windows)
        .join(Site, Machine.site_id == Site.id)
        .where(Machine.id.in_(list(machine_ids)))
    ).all()
    return [
        MachineJob(serial, f"site-{site_id}", timezone, tuple(windows or ()))
        for serial, site_id, timezone, windows in rows
    ]


def _booked(session: Session) -> list[Booking]:
    rows = session.execute(
        select(Visit, Machine.serial, Machine.site_id)
        .join(Machine, Visit.machine_id == Machine.id)
        .where(Visit.status.in_(("planned", "in_progress")))
    ).all()
    return [
        Booking(
            visit.technician,
            serial,
            f"site-{site_id}",
            visit.planned_start,
            visit.planned_end,
            visit.travel_minutes,
        )
        for visit, serial, site_id in rows
    ]


def _schedule(
    ctx: Ctx,
    library: SopLibrary,
    campaign: Campaign,
    wave: Wave,
    members: Sequence[WaveMember],
    base_url: str,
) -> None:
    """Book visits for ``members`` and queue their deployments inside them."""
    if not members:
        return
    rules = ScheduleRules.model_validate(campaign.schedule or {})
    technicians = deployments.technicians(ctx.session)
    by_machine = {member.machine_id: member for member in members}
    jobs = _jobs(ctx.session, by_machine)
    plan = plan_visits(
        jobs,
        technicians,
        rules=rules,
        start=ctx.now(),
        booked=_booked(ctx.session),
    )
    serial_to_id: dict[str, int] = {
        serial: machine_id
        for serial, machine_id in ctx.session.execute(
            select(Machine.serial, Machine.id).where(Machine.id.in_(list(by_machine)))
        )
    }
    for serial in plan.unplanned:
        member = by_machine[serial_to_id[serial]]
        member.status = "unplanned"
        member.note = (
            "no technician's time fits this site's maintenance windows within the planning "
            "horizon; change the windows or the working hours, then retry"
            if technicians
            else "there is no active technician account to visit this machine"
        )
    # The visits are written and audited together: one flush gives them all their ids.
    booked = [
        (
            booking,
            by_machine[serial_to_id[booking.serial]],
            Visit(
                campaign_id=campaign.id,
                wave_id=wave.id,
                machine_id=serial_to_id[booking.serial],
                technician=booking.technician,
                planned_start=booking.start,
                planned_end=booking.end,
                travel_minutes=booking.travel_minutes,
                status="planned",
            ),
        )
        for booking in plan.visits
    ]
    ctx.session.add_all([visit for _, _, visit in booked])
    ctx.audit_all([audit.Change("create", visit, None) for _, _, visit in booked])
    for booking, member, visit in booked:
        action_id, instance_id = deployments.deploy(
            ctx,
            library,
            serial=booking.serial,
            version=campaign.release_version,
            window=(booking.start, booking.end),
            base_url=base_url,
        )
        member.action_id = action_id
        member.instance_id = instance_id
        member.status = "scheduled"
        member.attempts += 1
        member.note = ""
        deployments.scheduled(ctx, visit=visit, serial=booking.serial, wave=wave.code, rules=rules)


def _start_wave(
    ctx: Ctx, library: SopLibrary, campaign: Campaign, wave: Wave, base_url: str
) -> None:
    selection = Selection.model_validate(wave.selection)
    machines = choose(ctx.session, campaign_id=campaign.id, selection=selection)
    members = []
    for machine in machines:
        member = WaveMember(wave_id=wave.id, machine_id=machine.id, joined_at=ctx.now())
        ctx.session.add(member)
        members.append(member)
    ctx.session.flush()
    before = snapshot(wave)
    wave.status = "running"
    wave.started_at = ctx.now()
    ctx.audit("start", wave, before)
    _schedule(ctx, library, campaign, wave, members, base_url)
    set_activity_status(ctx, campaign, wave.code, "doing")
    _event(ctx, wave, "started", f"{len(members)} machines")


def _sync(ctx: Ctx, wave: Wave, changed: Changed | None = None) -> list[WaveMember]:
    """Bring the members' statuses up to date (those whose action or upgrade ``changed``,
    when given); returns those whose visit was missed."""
    missed: list[WaveMember] = []
    moved: list[tuple[WaveMember, str, datetime | None]] = []
    for row in deployments.following(ctx.session, wave_id=wave.id, now=ctx.now(), changed=changed):
        member, action = row.member, row.action
        status = deployments.member_status(action, row.instance_status)
        if status == "scheduled" and action is not None and deployments.window_passed(ctx, action):
            missed.append(member)
            continue
        if status == member.status:
            continue
        member.status = status
        if status in ("succeeded", "failed"):
            member.finished_at = ctx.now()
        moved.append((member, status, row.instance_completed_at))
    deployments.follow_visits(ctx, moved, wave_id=wave.id)
    return missed


def _refresh(
    ctx: Ctx,
    library: SopLibrary,
    campaign: Campaign,
    wave: Wave,
    base_url: str,
    changed: Changed | None = None,
) -> None:
    """Sync the members, and book a new visit for each machine that missed its own."""
    missed = _sync(ctx, wave, changed)
    if missed:
        deployments.cancel_visits(ctx, [m.machine_id for m in missed], wave_id=wave.id)
        deployments.cancel(ctx, missed)
        _schedule(ctx, library, campaign, wave, missed, base_url)


def _apply_gate(ctx: Ctx, wave: Wave) -> None:
    if wave.status not in ("running", "paused"):
        return
    out = counts(ctx.session, wave_id=wave.id)
    gate_counts = _gate_counts(out)
    rule = GateRule.model_validate(wave.gate)
    if wave.status == "running":
        verdict = evaluate(
            gate_counts,
            rule,
            gate_state=wave.gate_state,
            accepted_failures=wave.accepted_failures,
        )
        if verdict == "pause":
            reason = (
                f"error threshold reached: {gate_counts.failed} of {gate_counts.total} "
                "machines failed"
            )
            _pause(ctx, wave, reason, actor_note="automatic")
            return
        if verdict in ("open", "await_approval"):
            before = snapshot(wave)
            wave.gate_state = "open" if verdict == "open" else "awaiting_approval"
            ctx.audit("gate", wave, before)
            share = f"{gate_counts.success_share:.0%} completed"
            event = _event(ctx, wave, "opened" if verdict == "open" else "awaiting_approval", share)
            if verdict == "await_approval":
                deployments.alert(ctx, wave, event, template="gate_awaiting_approval")
    busy = out.pending + out.scheduled + out.running + out.held
    if wave.status == "running" and busy == 0:
        before = snapshot(wave)
        wave.status = "completed"
        wave.finished_at = ctx.now()
        ctx.audit("complete", wave, before)
        _event(ctx, wave, "completed", f"{out.succeeded} succeeded, {out.failed} failed")
        campaign = get(ctx.session, campaign_id=wave.campaign_id)
        set_activity_status(ctx, campaign, wave.code, "done")


def _pause(ctx: Ctx, wave: Wave, reason: str, *, actor_note: str = "") -> None:
    before = snapshot(wave)
    wave.status = "paused"
    wave.status_reason = reason
    ctx.audit("pause", wave, before, note=actor_note)
    held = deployments.hold(ctx, _open_members(ctx.session, wave.id))
    event = _event(ctx, wave, "paused", f"{reason}; {held} queued deployments held")
    deployments.alert(ctx, wave, event, template="gate_paused")


def _open_members(session: Session, wave_id: int) -> list[WaveMember]:
    return [
        m
        for m in members_of(session, wave_id=wave_id)
        if m.status in ("scheduled", "running", "held")
    ]


def tick(
    ctx: Ctx,
    library: SopLibrary,
    *,
    campaign_id: int,
    base_url: str,
    followed: Mapping[int, int] | None = None,
) -> dict[int, int]:
    """Do what is due for one campaign at ``ctx.now()`` (safe to run any number of times).

    Args:
        followed: by wave id, the audit position up to which an earlier look (committed)
            followed the wave's members; such a wave's look reads only what changed since.

    Returns:
        By wave id, the position this look followed its members to, to hand to the next
        look once this one is committed.
    """
    campaign = get(ctx.session, campaign_id=campaign_id)
    if campaign.status != "running":
        return {}
    # Read before the members: every change with a number up to here is committed, so the
    # members read next reflect at least those.
    head = audit.position(ctx.session)
    reached: dict[int, int] = {}
    previous: Wave | None = None
    for wave in waves_of(ctx.session, campaign_id=campaign_id):
        if wave.status == "planned":
            may_start = previous is None or previous.gate_state == "open"
            if may_start and ctx.now() >= wave.planned_start:
                _start_wave(ctx, library, campaign, wave, base_url)
        if wave.status in ("running", "paused"):
            since = (followed or {}).get(wave.id)
            changed = None if since is None or since > head else Changed(since, head)
            _refresh(ctx, library, campaign, wave, base_url, changed)
            _apply_gate(ctx, wave)
            reached[wave.id] = head
        previous = wave
    return reached


# -- a manager's decisions -------------------------------------------------------------------


def _reason_needed(reason: str) -> None:
    if not reason.strip():
        raise InvalidInput("say why", [FieldProblem("reason", "must not be empty")])


def approve(ctx: Ctx, *, campaign_id: int, code: str, reason: str) -> Wave:
    """Open the wave's gate by decision: the next wave may start.

    Raises:
        Conflict: the gate is open already, or the wave has not started.
    """
    _reason_needed(reason)
    wave = get_wave(ctx.session, campaign_id=campaign_id, code=code)
    if wave.status == "planned":
        raise Conflict(f"wave {code} has not started; there is nothing to approve yet")
    if wave.gate_state == "open":
        raise Conflict(f"the gate after wave {code} is open already")
    before = snapshot(wave)
    wave.gate_state = "open"
    ctx.audit("approve", wave, before)
    _event(ctx, wave, "approved", reason)
    return wave


def pause(ctx: Ctx, *, campaign_id: int, code: str, reason: str) -> Wave:
    """Pause a running wave by hand: its queued deployments are held."""
    _reason_needed(reason)
    wave = get_wave(ctx.session, campaign_id=campaign_id, code=code)
    if wave.status != "running":
        raise Conflict(f"wave {code} is {wave.status}; only a running wave pauses")
    _pause(ctx, wave, reason, actor_note="by hand")
    return wave


def resume(ctx: Ctx, *, campaign_id: int, code: str, reason: str) -> Wave:
    """Resume a paused wave; the failures so far are accepted and no longer count."""
    _reason_needed(reason)
    wave = get_wave(ctx.session, campaign_id=campaign_id, code=code)
    if wave.status != "paused":
        raise Conflict(f"wave {code} is {wave.status}; only a paused wave resumes")
    before = snapshot(wave)
    out = counts(ctx.session, wave_id=wave.id)
    wave.status = "running"
    wave.status_reason = ""
    wave.accepted_failures = out.failed + out.unplanned
    ctx.audit("resume", wave, before)
    released = deployments.release(ctx, _open_members(ctx.session, wave.id))
    _event(ctx, wave, "resumed", f"{reason}; {released} deployments released")
    return wave


def abort(ctx: Ctx, *, campaign_id: int, code: str, reason: str) -> Wave:
    """Stop a wave for good: its queued deployments and planned visits are cancelled."""
    _reason_needed(reason)
    wave = get_wave(ctx.session, campaign_id=campaign_id, code=code)
    if wave.status not in OPEN_WAVE:
        raise Conflict(f"wave {code} is {wave.status} already")
    _sync(ctx, wave)
    before = snapshot(wave)
    wave.status = "aborted"
    wave.status_reason = reason
    wave.finished_at = ctx.now()
    ctx.audit("abort", wave, before)
    waiting = [
        m
        for m in members_of(ctx.session, wave_id=wave.id)
        if m.status not in ("succeeded", "failed")
    ]
    deployments.cancel(ctx, waiting)
    deployments.cancel_visits(ctx, [m.machine_id for m in waiting], wave_id=wave.id)
    for member in waiting:
        member.status = "cancelled"
    _event(ctx, wave, "aborted", reason)
    return wave


def retry(
    ctx: Ctx, library: SopLibrary, *, campaign_id: int, code: str, reason: str, base_url: str
) -> int:
    """Deploy again to the wave's failed (and unplanned) machines only; returns how many."""
    _reason_needed(reason)
    campaign = get(ctx.session, campaign_id=campaign_id)
    wave = get_wave(ctx.session, campaign_id=campaign_id, code=code)
    if wave.status not in ("running", "paused", "completed"):
        raise Conflict(f"wave {code} is {wave.status}; there is nothing to retry")
    failed = [
        m for m in members_of(ctx.session, wave_id=wave.id) if m.status in ("failed", "unplanned")
    ]
    if not failed:
        raise Conflict(f"wave {code} has no failed machines")
    before = snapshot(wave)
    if wave.status == "completed":
        set_activity_status(ctx, campaign, wave.code, "doing")
    wave.status = "running"
    wave.finished_at = None
    wave.status_reason = ""
    wave.accepted_failures = 0
    ctx.audit("retry", wave, before)
    for member in failed:
        deployments.prepare_retry(ctx, member)
        member.finished_at = None
    _schedule(ctx, library, campaign, wave, failed, base_url)
    _event(ctx, wave, "retried", f"{reason}; {len(failed)} machines")
    return len(failed)


def add_members(
    ctx: Ctx,
    library: SopLibrary,
    *,
    campaign_id: int,
    code: str,
    serials: Sequence[str],
    base_url: str,
) -> list[WaveMember]:
    """Let machines join a wave that is still open; a running wave deploys to them at once.

    Raises:
        NotFound: an unknown serial (nothing is added).
        Conflict: the wave is finished, or a machine is in a wave of this campaign already.
    """
    campaign = get(ctx.session, campaign_id=campaign_id)
    wave = get_wave(ctx.session, campaign_id=campaign_id, code=code)
    if wave.status not in OPEN_WAVE:
        raise Conflict(f"wave {code} is {wave.status}; machines join open waves only")
    taken = _taken(ctx.session, campaign_id)
    machines: list[Machine] = []
    problems = []
    for row, serial in enumerate(serials):
        machine = ctx.session.scalar(select(Machine).where(Machine.serial == serial))
        if machine is None:
            problems.append(FieldProblem(f"serials.{row}", f"no machine {serial}"))
        elif machine.id in taken or machine in machines:
            problems.append(FieldProblem(f"serials.{row}", f"{serial} is in a wave already"))
        elif machine.state in (MachineState.retired, MachineState.on_new_platform):
            problems.append(FieldProblem(f"serials.{row}", f"{serial} is {machine.state.value}"))
        else:
            machines.append(machine)
    if problems:
        raise InvalidInput("some machines cannot join the wave; none was added", problems)
    late = wave.status != "planned"
    members = []
    for machine in machines:
        member = WaveMember(wave_id=wave.id, machine_id=machine.id, joined_at=ctx.now(), late=late)
        ctx.session.add(member)
        members.append(member)
    ctx.session.flush()
    if wave.status == "running":
        _schedule(ctx, library, campaign, wave, members, base_url)
    elif wave.status == "paused":
        for member in members:
            member.status = "held"
    _event(ctx, wave, "joined", ", ".join(m.serial for m in machines))
    return members


# -- what operations asks for ----------------------------------------------------------------


def _membership(session: Session, serial: str) -> tuple[WaveMember, Wave] | None:
    row = session.execute(
        select(WaveMember, Wave)
        .join(Wave, WaveMember.wave_id == Wave.id)
        .join(Machine, WaveMember.machine_id == Machine.id)
        .where(Machine.serial == serial, Wave.status.in_(("running", "paused")))
        .order_by(WaveMember.id.desc())
    ).first()
    return None if row is None else (row[0], row[1])


def hold_machine(ctx: Ctx, *, serial: str, reason: str) -> bool:
    """Hold the machine's queued deployment (a data anomaly, say); True when one was held."""
    found = _membership(ctx.session, serial)
    if found is None:
        return deployments.hold_machine_actions(ctx, serial=serial, reason=reason) > 0
    member, wave = found
    held = deployments.hold(ctx, [member])
    _event(ctx, wave, "held", f"{serial}: {reason}")
    return held > 0


def pause_wave_of(ctx: Ctx, *, serial: str, reason: str) -> str | None:
    """Pause the running wave the machine belongs to; returns its code, or None."""
    found = _membership(ctx.session, serial)
    if found is None or found[1].status != "running":
        return None
    _pause(ctx, found[1], reason, actor_note="operations")
    return found[1].code


def tick_pending(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """True when ``tick`` may have something to do at ``now`` that no audited change says:
    a planned wave whose start has come and whose previous wave's gate is open, or a member
    of a running or paused wave whose install window closed. (A member's action and upgrade
    are audited, and decisions, retries and late joiners write gate events: the job watches
    those tables, ``scheduled.CHANGES``.)
    """
    previous = aliased(Wave)
    previous_gate = (
        select(previous.gate_state)
        .where(previous.campaign_id == Wave.campaign_id, previous.position < Wave.position)
        .order_by(previous.position.desc())
        .limit(1)
        .scalar_subquery()
    )
    wave_due = (
        select(Wave.id)
        .join(Campaign, Wave.campaign_id == Campaign.id)
        .where(
            Campaign.status == "running",
            Wave.status == "planned",
            Wave.planned_start <= now,
            or_(previous_gate.is_(None), previous_gate == "open"),
        )
        .exists()
    )
    return or_(wave_due, deployments.window_closed(now, _followed()))


def _followed() -> ColumnElement[bool]:
    """A running or paused wave of a running campaign: the worker follows its members."""
    in_running_campaign = (
        select(Campaign.id)
        .where(Campaign.id == Wave.campaign_id, Campaign.status == "running")
        .exists()
    )
    return and_(Wave.status.in_(("running", "paused")), in_running_campaign)


# The campaign's own audited tables: a campaign started or stopped, a wave edited, and every
# decision, retry, hold or late joiner (a gate event each).
CAMPAIGN_TABLES = ("campaigns", "campaign_waves", "campaign_gate_events")


def tick_changed(now: ColumnElement[datetime], after: ColumnElement[int]) -> ColumnElement[bool]:
    """True when the audit events after position ``after`` give ``tick`` work: any change
    to the campaign's own tables, or a change to a device action or an upgrade that moved a
    member of a followed wave. (Every other step of an upgrade is not the campaign's
    business, and asking costs what changed, not the size of the waves.)"""
    own = (
        select(AuditEvent.seq)
        .where(AuditEvent.seq > after, AuditEvent.entity_type.in_(CAMPAIGN_TABLES))
        .exists()
    )
    return or_(own, deployments.members_touched(now, after, _followed()))


def due_for_tick(session: Session) -> list[int]:
    """Campaigns the worker looks at."""
    return list(session.scalars(select(Campaign.id).where(Campaign.status == "running")))
