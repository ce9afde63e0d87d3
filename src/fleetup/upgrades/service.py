"""Starting SOP instances, applying events to them, and reading them back.

The engine (``fleetup.sop.engine``) decides; this module loads the instance, hands the engine
the definition the instance started with, stores the new state and the transition, audits
both, and carries out what concerns the registry (a machine is ``migrating`` while its
upgrade runs and ``on_new_platform`` once it completes). Other effects (open a problem, an
incident, escalate) are stored with the transition for the operations side to act on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from fleetup.core import audit
from fleetup.core.audit import Change, Written, snapshot
from fleetup.core.context import Ctx
from fleetup.core.db import ById, JSONText, Prepared
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.fleet import service as fleet
from fleetup.fleet.models import MachineState
from fleetup.fleet.schemas import MachineUpdate
from fleetup.sop import engine
from fleetup.sop.errors import EngineError
from fleetup.sop.events import Event, parse_event
from fleetup.sop.model import Definition
from fleetup.sop.state import Effect, InstanceState
from fleetup.upgrades import states
from fleetup.upgrades.library import UPGRADE_CHART, SopLibrary
from fleetup.upgrades.models import SopInstance, SopTransitionRecord

ACTIVE = ("running", "waiting")


def state_of(instance: SopInstance) -> InstanceState:
    return InstanceState.model_validate(instance.state)


def stored(state: InstanceState) -> dict[str, Any]:
    """``state`` as an instance keeps it: without its history, which ``sop_transitions`` holds.

    The state is read and written at every step, so carrying every past event in it would make
    each step cost more than the one before.
    """
    return state.model_dump(mode="json", exclude=_NOT_STORED)


_NOT_STORED = {"history"}


def get(session: Session, *, instance_id: int) -> SopInstance:
    instance = _INSTANCE(session, instance_id)
    if instance is None:
        raise NotFound(f"no SOP instance {instance_id}")
    return instance


_INSTANCE = ById(SopInstance)


def get_all(
    session: Session,
    *,
    machine_id: int | None = None,
    chart_id: str | None = None,
    status: str | None = None,
) -> Sequence[SopInstance]:
    query = select(SopInstance).order_by(SopInstance.id)
    if machine_id is not None:
        query = query.where(SopInstance.machine_id == machine_id)
    if chart_id:
        query = query.where(SopInstance.chart_id == chart_id)
    if status:
        query = query.where(SopInstance.status == status)
    return session.scalars(query).all()


def active_upgrade(session: Session, *, machine_id: int) -> SopInstance | None:
    return session.scalar(_ACTIVE_UPGRADE, {"machine_id": machine_id})


# Asked before every deployment and by the customer flows: built once.
_ACTIVE_UPGRADE = (
    select(SopInstance)
    .where(
        SopInstance.machine_id == bindparam("machine_id"),
        SopInstance.chart_id == UPGRADE_CHART,
        SopInstance.status.in_(ACTIVE),
    )
    .order_by(SopInstance.id.desc())
)


def latest_upgrade(session: Session, *, machine_id: int) -> SopInstance | None:
    return session.scalar(
        select(SopInstance)
        .where(SopInstance.machine_id == machine_id, SopInstance.chart_id == UPGRADE_CHART)
        .order_by(SopInstance.id.desc())
    )


def latest_upgrade_ids(session: Session, machine_ids: Iterable[int]) -> dict[int, int]:
    """The id of each machine's latest chart 2 instance (machines with none are left out)."""
    wanted = set(machine_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(SopInstance.machine_id, func.max(SopInstance.id))
        .where(SopInstance.machine_id.in_(wanted), SopInstance.chart_id == UPGRADE_CHART)
        .group_by(SopInstance.machine_id)
    ).all()
    return {int(machine_id): int(latest) for machine_id, latest in rows if machine_id is not None}


def transitions(session: Session, *, instance_id: int) -> Sequence[SopTransitionRecord]:
    return session.scalars(
        select(SopTransitionRecord)
        .where(SopTransitionRecord.instance_id == instance_id)
        .order_by(SopTransitionRecord.seq)
    ).all()


def start(
    ctx: Ctx,
    library: SopLibrary,
    *,
    chart_id: str,
    subject_kind: str,
    subject_ref: str,
    machine_id: int | None = None,
    entry: str | None = None,
) -> SopInstance:
    """Start an instance of ``chart_id`` about a subject, pinned to today's definition.

    Raises:
        NotFound: no such chart.
        InvalidInput: ``entry`` is not an entry point of the chart.
    """
    definition = library.current(chart_id)
    library.pin(ctx, definition)
    key = uuid.uuid4().hex
    try:
        state = engine.start(
            definition,
            at=ctx.now(),
            entry=entry,
            instance_id=key,
            subject={subject_kind: subject_ref},
        )
    except EngineError as error:
        raise InvalidInput(str(error), [FieldProblem("entry", str(error))]) from error
    instance = SopInstance(
        key=key,
        chart_id=chart_id,
        definition_hash=definition.effective_hash,
        subject_kind=subject_kind,
        subject_ref=subject_ref,
        machine_id=machine_id,
        status=state.status,
        current_node=state.current,
        state=stored(state),
        transitions=0,
        started_at=ctx.now(),
        updated_at=ctx.now(),
    )
    ctx.session.add(instance)
    ctx.audit("start", instance, None)
    known = states.Known(state.model_copy(update={"history": ()}), audit.digest(instance.state))
    states.remember(ctx.session, key, 0, known)
    return instance


def start_upgrade(ctx: Ctx, library: SopLibrary, *, serial: str) -> SopInstance:
    """Start chart 2 for a machine and mark it migrating.

    Raises:
        NotFound: no machine with that serial.
        Conflict: the machine has an upgrade running, or is retired.
    """
    machine = fleet.get_machine(ctx.session, serial=serial)
    if machine.state == MachineState.retired:
        raise Conflict(f"machine {serial} is retired; it is not upgraded")
    running = active_upgrade(ctx.session, machine_id=machine.id)
    if running is not None:
        raise Conflict(f"machine {serial} already has upgrade {running.id} {running.status}")
    instance = start(
        ctx,
        library,
        chart_id=UPGRADE_CHART,
        subject_kind="machine",
        subject_ref=serial,
        machine_id=machine.id,
    )
    if machine.state != MachineState.migrating:
        fleet.update_machine(ctx, serial=serial, data=MachineUpdate(state=MachineState.migrating))
    return instance


def start_about(
    ctx: Ctx,
    library: SopLibrary,
    *,
    chart_id: str,
    subject_kind: str,
    subject_ref: str,
    entry: str | None = None,
) -> SopInstance:
    """Start a chart about a machine (by serial) or a customer (by code) that must exist.

    Machine upgrades go through ``start_upgrade``, which also keeps one running per machine.

    Raises:
        NotFound: no such chart, machine or customer.
        InvalidInput: a bad entry, or chart 2 asked for here.
    """
    if chart_id == UPGRADE_CHART:
        message = "start a machine's upgrade with POST /api/v1/machines/{serial}/upgrades"
        raise InvalidInput(message, [FieldProblem("chart_id", message)])
    machine_id = None
    if subject_kind == "machine":
        machine_id = fleet.get_machine(ctx.session, serial=subject_ref).id
    else:
        fleet.get_customer(ctx.session, code=subject_ref)
    return start(
        ctx,
        library,
        chart_id=chart_id,
        subject_kind=subject_kind,
        subject_ref=subject_ref,
        machine_id=machine_id,
        entry=entry,
    )


def definition_of(session: Session, library: SopLibrary, instance: SopInstance) -> Definition:
    return library.by_hash(session, instance.definition_hash)


def post_event(
    ctx: Ctx, library: SopLibrary, *, instance_id: int, event: Mapping[str, Any]
) -> tuple[SopInstance, tuple[Effect, ...]]:
    """Apply one event to an instance and store the result.

    Args:
        event: The event's JSON form (``type``, ``node``, ``at``, ``actor`` ...); a missing
            ``at`` is now and a missing ``actor`` is the caller.

    Returns:
        The instance as stored afterwards, and the effects the engine asked for.

    Raises:
        InvalidInput: the event is malformed (the problem names the field).
        Conflict: the engine refused it (wrong node, not due, waiting ...), or another
            event changed the instance meanwhile; nothing is stored.
    """
    steps = Steps(ctx, library, instance_id=instance_id)
    effects = steps.post(event)
    return steps.store(), effects


# Every step loads its instance: the state document only when this process does not hold it.
_INSTANCE_WITHOUT_STATE = ById(SopInstance, deferred=[SopInstance.state])


class Steps:
    """Events applied to one instance in memory, in order, then stored together.

    A caller with several events to post at once (an agent's step report is a step's end,
    its check and the decision after it) reads and writes the instance's state once: the
    instance gets one write and one audit event, and each event its own transition record,
    audited as before. ``post`` refuses an event without changing what was applied before it,
    so the caller may store the events that were taken and report the one that was not.
    """

    def __init__(self, ctx: Ctx, library: SopLibrary, *, instance_id: int) -> None:
        self.ctx = ctx
        # The state document is read only when this process does not hold it (``states``).
        instance = _INSTANCE_WITHOUT_STATE(ctx.session, instance_id)
        if instance is None:
            raise NotFound(f"no SOP instance {instance_id}")
        self.instance = instance
        self.definition = definition_of(ctx.session, library, instance)
        known = states.recall(instance.key, instance.transitions)
        if known is None:
            known = states.Known(state_of(instance), audit.digest(instance.state))
            states.remember(ctx.session, instance.key, instance.transitions, known)
        self.state = known.state
        self._before: dict[str, Any] | None = snapshot(instance, {"state": known.digest})
        # Each event taken: the event, the node it left, the node it led to, its effects.
        self._taken: list[tuple[Event, str, str, tuple[Effect, ...]]] = []

    def post(self, event: Mapping[str, Any]) -> tuple[Effect, ...]:
        """Apply ``event`` (its JSON form) in memory; returns the effects it asks for.

        Raises:
            InvalidInput: the event is malformed (the problem names the field).
            Conflict: the engine refused it; what was applied before stays applied.
        """
        data = {"at": self.ctx.now().isoformat(), "actor": self.ctx.actor, **dict(event)}
        try:
            parsed = parse_event(data)
        except ValidationError as error:
            raise InvalidInput.of("the event is not valid", error, empty="type") from error
        try:
            step = engine.apply(self.definition, self.state, parsed)
        except EngineError as error:
            raise Conflict(str(error)) from error
        self.state = step.state
        left = step.state.history[-1].from_node
        self._taken.append((parsed, left, step.state.current, step.effects))
        return step.effects

    def store(self) -> SopInstance:
        """Write what was applied: the instance once, a transition record per event, and
        then the effects the events asked for, in order.

        Both run compiled once on the session's connection, the hot path of every step:
        the UPDATE finds the instance's transition counter where it was read, or nothing is
        stored (another event was applied meanwhile), and the loaded instance then holds what
        was written, as if it had been read again.

        Raises:
            Conflict: another event changed the instance meanwhile.
        """
        instance, taken = self.instance, self._taken
        if not taken:
            return instance
        self._taken = []
        state, now = self.state, self.ctx.now()
        counted = instance.transitions
        document = stored(state)
        text, state_digest = audit.digested(document)
        known = states.Known(state.model_copy(update={"history": ()}), state_digest)
        values: dict[str, Any] = {
            "state": document,
            "status": state.status,
            "current_node": state.current,
            "updated_at": now,
            "completed_at": state.completed_at,
            "transitions": counted + len(taken),
        }
        connection = self.ctx.session.connection()
        written = _UPDATE_INSTANCE.run(
            connection, {"instance_id": instance.id, "counted": counted, **values, "state": text}
        )
        if written != 1:
            raise Conflict("the instance changed meanwhile; read it again and retry")
        for key, value in values.items():
            set_committed_value(instance, key, value)
        records = [
            {
                "instance_id": instance.id,
                "seq": number,
                "at": parsed.at,
                "actor": parsed.actor,
                "event": parsed.model_dump(mode="json"),
                "from_node": left,
                "to_node": reached,
                "effects": [effect.model_dump(mode="json") for effect in effects],
            }
            for number, (parsed, left, reached, effects) in enumerate(taken, counted + 1)
        ]
        ids = [_INSERT_TRANSITION.rows(connection, record)[0][0] for record in records]
        states.remember(self.ctx.session, instance.key, values["transitions"], known)
        action = taken[0][0].type if len(taken) == 1 else "events"
        changes = [Change(action, instance, self._before, digests={"state": known.digest})]
        changes += [
            Change("create", Written(SopTransitionRecord, {**record, "id": record_id}), None)
            for record, record_id in zip(records, ids, strict=True)
        ]
        self._before = self.ctx.audit_all(changes)[0]
        for *_, effects in taken:
            _carry_out(self.ctx, instance, effects)
        return instance


_INSTANCES = cast(Table, SopInstance.__table__)
_TRANSITIONS = cast(Table, SopTransitionRecord.__table__)
# The hot path of every step: compiled once, run on the driver's cursor.
_STORED = ("state", "status", "current_node", "updated_at", "completed_at", "transitions")
_UPDATE_INSTANCE = Prepared(
    _INSTANCES.update()
    .where(
        _INSTANCES.c.id == bindparam("instance_id"),
        _INSTANCES.c.transitions == bindparam("counted"),
    )
    .values(
        {name: bindparam(name) for name in _STORED}
        # The state goes as the canonical JSON its digest was taken of, serialised once.
        | {"state": bindparam("state", type_=JSONText())}
    )
)
_RECORDED = ("instance_id", "seq", "at", "actor", "event", "from_node", "to_node", "effects")
_INSERT_TRANSITION = Prepared(
    insert(_TRANSITIONS)
    .values({name: bindparam(name) for name in _RECORDED})
    .returning(_TRANSITIONS.c.id)
)


def _carry_out(ctx: Ctx, instance: SopInstance, effects: tuple[Effect, ...]) -> None:
    if instance.chart_id != UPGRADE_CHART or instance.subject_kind != "machine":
        return
    if any(effect.kind == "completed" for effect in effects):
        fleet.update_machine(
            ctx,
            serial=instance.subject_ref,
            data=MachineUpdate(state=MachineState.on_new_platform),
        )


def abandon(ctx: Ctx, *, instance_id: int, reason: str) -> SopInstance:
    """Close an upgrade that will not go on (a retry starts a new one); kept for the record.

    Raises:
        Conflict: the upgrade is complete already.
    """
    instance = get(ctx.session, instance_id=instance_id)
    if instance.status == "completed":
        raise Conflict(f"upgrade {instance_id} is complete; it cannot be abandoned")
    before = snapshot(instance)
    instance.status = "abandoned"
    instance.updated_at = ctx.now()
    ctx.audit("abandon", instance, before, note=reason)
    return instance
