"""Moving a chart 4 or chart 6 instance along its one path, step by step, with evidence.

Problems and incidents follow a straight path through their chart once the branch is chosen;
this module posts the ``step_started``/``step_finished`` pairs that bring an instance to a
node, skipping what is already done, so every service can say "reach F" and be safe to repeat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleetup.core.context import Ctx
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.library import SopLibrary
from fleetup.upgrades.models import SopInstance

START = "start"
FINISH = "finish"
Mark = tuple[str, str]


def marks(path: Sequence[str]) -> list[Mark]:
    """The start and finish of every step of ``path``, in order."""
    return [(node, phase) for node in path for phase in (START, FINISH)]


def position(instance: SopInstance, path: Sequence[str]) -> int:
    """Index in ``marks(path)`` of the last mark the instance has passed (-1 for none)."""
    if instance.status == "completed":
        return len(path) * 2 - 1
    node = instance.current_node
    if node not in path:
        return -1
    state = upgrades.state_of(instance)
    run = next((r for r in reversed(state.runs) if r.node == node and r.parent is None), None)
    base = path.index(node) * 2
    if run is not None and run.status in ("in_progress", "finished"):
        return base
    return base - 1


def reach(
    ctx: Ctx,
    library: SopLibrary,
    instance: SopInstance,
    path: Sequence[str],
    target: Mark,
    evidence: Mapping[str, Mapping[str, Any]] | None = None,
) -> SopInstance:
    """Post the events that bring ``instance`` to ``target``; nothing when already past it.

    Args:
        evidence: By node, the evidence its ``step_finished`` carries.

    Raises:
        Conflict: the engine refused an event (the instance left the path meanwhile).
    """
    all_marks = marks(path)
    goal = all_marks.index(target)
    at = position(instance, path)
    ahead = all_marks[at + 1 : goal + 1]
    if not ahead:
        return instance
    steps = upgrades.Steps(ctx, library, instance_id=instance.id)
    for node, phase in ahead:
        if steps.state.status == "completed":
            break
        if phase == START:
            event: dict[str, Any] = {"type": "step_started", "node": node}
        else:
            event = {"type": "step_finished", "node": node, "result": "ok"}
            given = (evidence or {}).get(node)
            if given:
                event["evidence"] = dict(given)
        steps.post(event)
    return steps.store()


def evidence_text(detail: Mapping[str, Any]) -> dict[str, Any]:
    """Evidence for the SOP record: the detail as text plus its numeric values."""
    numbers = {
        str(k): float(v)
        for k, v in detail.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    text = "; ".join(f"{k}: {v}" for k, v in detail.items()) or "done"
    return {"text": text[:2000], "numbers": numbers}
