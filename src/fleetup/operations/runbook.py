"""The data-anomaly runbook (chart 6 I-O), run on a data incident about one machine.

J back up the current state at once (a snapshot on the IPC, the machine's queued upgrade held
just before), K stop the abnormal operation (past a threshold of anomalies in one wave, pause
the wave), L restore the data (system restore from the latest verified backup, named when it
is requested, so never the snapshot of the damaged state), M function test (the restore
action's own evidence, or a technician's), N service restored, O root-cause analysis (the
incident's review). The worker runs J-L as soon as the incident opens and M-N once the
restore reports success; a person can run any step by hand. Each step checks the chart first,
so running one twice does nothing the second time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.operations import charting, incidents, outside
from fleetup.operations.models import Incident, IncidentEntry
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary

STEPS = incidents.DATA_PATH
AUTOMATIC = ("J", "K", "L")


def _instance_position(ctx: Ctx, incident: Incident) -> int:
    assert incident.instance_id is not None  # data incidents always run chart 6 from I
    instance = upgrades.get(ctx.session, instance_id=incident.instance_id)
    return charting.position(instance, STEPS)


def done(ctx: Ctx, incident: Incident, node: str) -> bool:
    """Whether step ``node`` of the runbook is finished."""
    finish = charting.marks(STEPS).index((node, charting.FINISH))
    return _instance_position(ctx, incident) >= finish


def _finish(
    ctx: Ctx, library: SopLibrary, incident: Incident, node: str, detail: dict[str, Any]
) -> None:
    assert incident.instance_id is not None
    instance = upgrades.get(ctx.session, instance_id=incident.instance_id)
    evidence = {node: charting.evidence_text(detail)}
    charting.reach(ctx, library, instance, STEPS, (node, charting.FINISH), evidence)
    incidents.note(ctx, incident, "runbook", f"{node} done", {"node": node, **detail})


def _mark(ctx: Ctx, incident: Incident, state: str) -> None:
    if incidents.STATES.index(state) <= incidents.STATES.index(incident.state):
        return
    before = snapshot(incident)
    incident.state = state
    ctx.audit("move", incident, before)
    incidents.note(ctx, incident, "state", state)


def _count_in_wave(ctx: Ctx, serial: str) -> tuple[str | None, int]:
    wave = outside.wave_of(ctx.session, serial=serial)
    open_data = ctx.session.scalars(
        select(Incident.subject_ref).where(Incident.kind == "data", Incident.state != "closed")
    ).all()
    if wave is None:
        return None, 0
    same = {s for s in open_data if outside.wave_of(ctx.session, serial=s) == wave}
    return wave, len(same)


def run_step(
    ctx: Ctx,
    library: SopLibrary,
    *,
    incident_id: int,
    node: str,
    pause_after: int = 3,
    evidence: dict[str, Any] | None = None,
) -> Incident:
    """Run one runbook step (J-O) on a data incident; a step already done is left alone.

    Raises:
        InvalidInput: not a runbook step, or M without evidence while the restore has none.
        Conflict: not a data incident, an earlier step is outstanding, or the device action
            could not be requested.
    """
    if node not in STEPS:
        raise InvalidInput(
            f"{node!r} is not a runbook step", [FieldProblem("node", ", ".join(STEPS))]
        )
    incident = incidents.get(ctx.session, incident_id=incident_id)
    if incident.kind != "data":
        raise Conflict(f"incident {incident.id} is not a data anomaly; it has no runbook")
    if done(ctx, incident, node):
        return incident
    index = STEPS.index(node)
    if index > 0 and not done(ctx, incident, STEPS[index - 1]):
        raise Conflict(f"run step {STEPS[index - 1]} of the runbook before {node}")
    serial = incident.subject_ref
    reason = f"incident {incident.id}: data anomaly"
    detail: dict[str, Any] = dict(evidence or {})
    if node == "J":
        # The hold (K's work) goes first: campaigns hold every queued action of the machine,
        # which would otherwise include the snapshot asked for here.
        detail["machine_held"] = outside.campaign_call(
            ctx, "hold_machine", serial=serial, reason=reason
        )
        detail["action_id"] = outside.request(ctx, "request_snapshot", serial=serial, reason=reason)
        _mark(ctx, incident, "fixing")
    elif node == "K":
        detail["machine_held"] = _held_at_j(ctx, incident)
        wave, count = _count_in_wave(ctx, serial)
        detail["anomalies_in_wave"] = count
        if count >= pause_after:
            detail["wave_paused"] = outside.campaign_call(
                ctx, "pause_wave_of", serial=serial, reason=f"{count} data anomalies"
            )
            detail["wave"] = wave or ""
    elif node == "L":
        detail["action_id"] = outside.request(ctx, "request_restore", serial=serial, reason=reason)
    elif node == "M":
        detail = _function_test(ctx, incident, detail)
    elif node == "N":
        _finish(ctx, library, incident, node, detail)
        _mark(ctx, incident, "recovered")
        return incident
    else:
        # O is the root-cause analysis: it opens the review; closing the incident ends it.
        incidents.move(ctx, library, incident_id=incident.id, state="review")
        return incident
    _finish(ctx, library, incident, node, detail)
    return incident


def _runbook_entry(ctx: Ctx, incident: Incident, node: str) -> dict[str, Any]:
    entries = ctx.session.scalars(
        select(IncidentEntry)
        .where(IncidentEntry.incident_id == incident.id, IncidentEntry.kind == "runbook")
        .order_by(IncidentEntry.id.desc())
    ).all()
    for entry in entries:
        if entry.detail.get("node") == node:
            return dict(entry.detail)
    return {}


def _held_at_j(ctx: Ctx, incident: Incident) -> bool:
    return bool(_runbook_entry(ctx, incident, "J").get("machine_held", False))


def _restore_action(ctx: Ctx, incident: Incident) -> str:
    return str(_runbook_entry(ctx, incident, "L").get("action_id", ""))


def _function_test(ctx: Ctx, incident: Incident, given: dict[str, Any]) -> dict[str, Any]:
    if given:
        return {"by": ctx.actor, **given}
    action_id = _restore_action(ctx, incident)
    state = outside.action_state(ctx.session, action_id=action_id)
    if state is None or state.status != "succeeded":
        raise InvalidInput(
            "the restore has not reported a passing function test yet; give the test's result",
            [FieldProblem("evidence", "required until the restore succeeds")],
        )
    return {"action_id": action_id, **state.evidence}


def begin(ctx: Ctx, library: SopLibrary, *, incident_id: int, pause_after: int) -> Incident:
    """Run the automatic steps J-L; a step that cannot run is noted and left to a person."""
    incident = incidents.get(ctx.session, incident_id=incident_id)
    for node in AUTOMATIC:
        try:
            run_step(ctx, library, incident_id=incident_id, node=node, pause_after=pause_after)
        except (Conflict, NotFound) as error:
            incidents.note(ctx, incident, "runbook", f"{node} not run: {error.message}")
            break
    return incident


def _restoring() -> ColumnElement[bool]:
    return (Incident.kind == "data") & (Incident.state == "fixing")


def follow_pending() -> ColumnElement[bool]:
    """True when a data incident is being fixed (``follow`` may have work)."""
    return select(Incident.id).where(_restoring()).exists()


def follow(ctx: Ctx, library: SopLibrary) -> int:
    """Finish M and N of every data incident whose restore succeeded; returns how many."""
    handled = 0
    waiting = ctx.session.scalars(select(Incident).where(_restoring())).all()
    for incident in waiting:
        if not done(ctx, incident, "L") or done(ctx, incident, "M"):
            continue
        state = outside.action_state(ctx.session, action_id=_restore_action(ctx, incident))
        if state is None or state.status not in ("succeeded", "failed"):
            continue
        if state.status == "failed":
            if not _noted_failure(ctx, incident):
                incidents.note(ctx, incident, "runbook", "restore failed", state.evidence)
            continue
        run_step(ctx, library, incident_id=incident.id, node="M")
        run_step(ctx, library, incident_id=incident.id, node="N")
        handled += 1
    return handled


def _noted_failure(ctx: Ctx, incident: Incident) -> bool:
    return (
        ctx.session.scalar(
            select(IncidentEntry.id).where(
                IncidentEntry.incident_id == incident.id, IncidentEntry.text == "restore failed"
            )
        )
        is not None
    )
