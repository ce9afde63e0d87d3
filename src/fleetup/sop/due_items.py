"""What is due on an instance now: the current step or decision, its checks and activities.

Kept apart from the engine because it only reads a state: screens, reminders and SLA timers
call it as often as they like.
"""

from __future__ import annotations

from datetime import timedelta

from fleetup.sop.model import Definition, Node
from fleetup.sop.state import DueItem, InstanceState, StepRun


def due(definition: Definition, state: InstanceState) -> tuple[DueItem, ...]:
    """Return what is due now: the current step or decision, its open checks and activities.

    Args:
        definition: The definition the instance runs.
        state: The instance's state.

    Returns:
        The due items, the current node first; empty when the instance waits or is complete.
    """
    if state.status != "running":
        return ()
    run = state.current_run
    node = definition.node(run.node)
    items: list[DueItem] = []
    if run.status in ("due", "in_progress"):
        items.append(_due_item(node, run, parent=None))
    if run.status in ("in_progress", "finished"):
        for part in definition.contained(node.id):
            if part.kind == "check" and part.id not in run.passed_checks:
                performer = part.performer or node.performer
                items.append(
                    DueItem(
                        node=part.id,
                        kind="check",
                        label=part.label,
                        performer=performer,
                        parent=node.id,
                        attempt=1 + sum(1 for c in run.checks if c.node == part.id),
                    )
                )
        for activity in _activity_runs(state, node.id):
            if activity.status != "done":
                items.append(_due_item(definition.node(activity.node), activity, parent=node.id))
    return tuple(items)


def _due_item(node: Node, run: StepRun, *, parent: str | None) -> DueItem:
    open_attempt = run.attempts[-1] if run.status == "in_progress" else None
    started = open_attempt.started_at if open_attempt is not None else None
    clock_start = run.entered_at if run.budget_clock == "arrival" else started
    deadline = None
    if run.budget_minutes is not None and clock_start is not None:
        deadline = clock_start + timedelta(minutes=run.budget_minutes)
    return DueItem(
        node=node.id,
        kind=node.kind,
        label=node.label,
        performer=node.performer,
        parent=parent,
        outcomes=node.outcomes,
        budget_minutes=run.budget_minutes,
        started_at=started,
        deadline=deadline,
        attempt=len(run.attempts) if open_attempt is not None else len(run.attempts) + 1,
    )


def _activity_runs(state: InstanceState, container: str) -> list[StepRun]:
    """The latest visit's runs of the activities of ``container``."""
    latest: dict[str, StepRun] = {}
    for run in state.runs:
        if run.parent == container:
            latest[run.node] = run
    return list(latest.values())
