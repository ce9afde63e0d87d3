"""Instances as people read them: labels in their language, durations against budgets."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fleetup.sop import engine
from fleetup.sop.mermaid import instance_to_mermaid
from fleetup.sop.model import Definition, Lang, Text
from fleetup.sop.state import InstanceState
from fleetup.upgrades import service
from fleetup.upgrades.library import SopLibrary
from fleetup.upgrades.models import SopInstance
from fleetup.upgrades.schemas import DueOut, InstanceOut, StepOut, TransitionOut


def _label(text: Text, lang: Lang) -> str:
    return " ".join(part.strip() for part in text.lines(lang))


def _node_label(definition: Definition, node_id: str, lang: Lang) -> str:
    if not definition.has_node(node_id):
        return node_id
    return _label(definition.node(node_id).label, lang)


def describe(
    session: Session,
    library: SopLibrary,
    instance: SopInstance,
    lang: Lang = "en",
    *,
    history: bool = True,
    state: InstanceState | None = None,
) -> InstanceOut:
    """The instance with its steps, what is due and its history, labelled in ``lang``.

    Args:
        history: False leaves the history out (an empty list).
        state: the instance's state when the caller holds it already (saves reading it again).
    """
    definition = service.definition_of(session, library, instance)
    state = state or service.state_of(instance)
    steps = [
        StepOut(
            node=run.node,
            label=_node_label(definition, run.node, lang),
            visit=run.visit,
            status=run.status,
            performer=definition.node(run.node).performer,
            performed_by=list(run.performers),
            attempts=len(run.attempts),
            started_at=run.started_at,
            finished_at=run.finished_at,
            budget_minutes=run.budget_minutes,
            actual_minutes=run.duration_minutes,
            over_budget=run.over_budget,
            checks_passed=sorted(run.passed_checks),
        )
        for run in state.runs
        if definition.node(run.node).kind != "start"
    ]
    due = [
        DueOut(
            node=item.node,
            kind=item.kind,
            label=_label(item.label, lang),
            performer=item.performer,
            parent=item.parent,
            outcomes=list(item.outcomes),
            budget_minutes=item.budget_minutes,
            deadline=item.deadline,
            attempt=item.attempt,
        )
        for item in engine.due(definition, state)
    ]
    transitions = [
        TransitionOut(
            seq=record.seq,
            at=record.at,
            actor=record.actor,
            type=str(record.event.get("type", "")),
            from_node=record.from_node,
            to_node=record.to_node,
            event=record.event,
            effects=record.effects,
        )
        for record in (service.transitions(session, instance_id=instance.id) if history else ())
    ]
    return InstanceOut(
        id=instance.id,
        key=instance.key,
        chart_id=instance.chart_id,
        definition_version=definition.version,
        subject_kind=instance.subject_kind,
        subject_ref=instance.subject_ref,
        status=instance.status,
        current_node=instance.current_node,
        current_label=_node_label(definition, instance.current_node, lang),
        started_at=instance.started_at,
        updated_at=instance.updated_at,
        completed_at=instance.completed_at,
        waiting=state.waiting.model_dump(mode="json") if state.waiting else None,
        steps=steps,
        due=due,
        history=transitions,
    )


def mermaid(session: Session, library: SopLibrary, instance: SopInstance, lang: Lang) -> str:
    """The instance's chart with its current node highlighted and its path styled."""
    definition = service.definition_of(session, library, instance)
    return instance_to_mermaid(definition, service.state_of(instance), lang)
