"""The SOP engine: pure functions that move an instance of a definition through its chart.

``start`` places a new instance on the node after its entry point; ``apply`` takes one event
and returns a :class:`Transition` (new state, effects, what is due); ``due`` says what is due.
There is no clock, storage or I/O here: time arrives inside events, effects are requests the
caller carries out, and a refused event raises :class:`EngineError` with the caller's state
untouched (states are immutable).

The rules, in the operator's terms:

- A step is started, then finished ``ok`` or ``failed``; a failed attempt leaves it due again.
- A step is left when it finished ok, every ✅ check it contains has passed and every
  activity it contains is done; the flow then follows its one ``then`` edge.
- A decision is taken with one of its outcomes and the flow follows that outcome's edge.
- Loops are capped: when the flow arrives at the step that would close a loop the cap
  allows no more, the engine emits the cap's effect (open a problem, an incident, escalate)
  and the instance *waits* there without that step being started. ``resumed`` ends the wait,
  resets that loop's count (the outside help gave it a fresh start) and the step is due again.
- Arriving at an end without a performer completes the instance; an end with a performer
  completes it when finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fleetup.sop.due_items import due
from fleetup.sop.errors import EngineError
from fleetup.sop.events import (
    CheckFailed,
    CheckPassed,
    DecisionTaken,
    Event,
    Resumed,
    StepFinished,
    StepStarted,
)
from fleetup.sop.model import Definition, Edge, Node
from fleetup.sop.state import (
    Attempt,
    CheckRecord,
    Effect,
    HistoryEntry,
    InstanceState,
    InstanceStatus,
    StepRun,
    Transition,
    Wait,
)

# ``due`` lives in due_items.py; it is re-exported so callers find all three here.
__all__ = ["apply", "due", "start"]


def start(
    definition: Definition,
    *,
    at: datetime,
    entry: str | None = None,
    instance_id: str | None = None,
    subject: dict[str, str] | None = None,
) -> InstanceState:
    """Start an instance of ``definition`` at one of its entry points.

    The entry (a start node, the chart's trigger) counts as done at ``at``; the instance
    stands on the node after it.

    Args:
        definition: A validated definition (see ``loader``).
        at: When the instance starts (timezone-aware).
        entry: The start node; required when the definition has several (chart 6: A, I).
        instance_id: The caller's id for the instance; derived from chart and time if omitted.
        subject: What the instance is about, e.g. ``{"machine": "IPC-042"}``.

    Returns:
        The new state, running.

    Raises:
        EngineError: ``at`` is naive, or ``entry`` is missing or not a start node.
    """
    if at.tzinfo is None:
        raise EngineError("the start time must carry a time zone")
    starts = definition.starts
    if entry is None:
        if len(starts) != 1:
            names = ", ".join(starts)
            raise EngineError(f"{definition.id} has several entry points ({names}); name one")
        entry = starts[0]
    elif entry not in starts:
        names = ", ".join(starts)
        raise EngineError(f"{entry!r} is not an entry point of {definition.id}; use {names}")
    entry_run = StepRun(node=entry, visit=1, entered_at=at, status="done", left_at=at)
    state = InstanceState(
        instance_id=instance_id or f"{definition.id}@{at.isoformat()}",
        definition_id=definition.id,
        definition_version=definition.version,
        definition_hash=definition.effective_hash,
        subject=dict(subject or {}),
        entry=entry,
        status="running",
        current=entry,
        started_at=at,
        runs=(entry_run,),
        loop_counts={edge.key: 0 for edge in definition.loops},
    )
    draft = _Draft.of(definition, state)
    draft.follow(definition.out_edges(entry)[0], at)
    return draft.freeze(history=())


def apply(definition: Definition, state: InstanceState, event: Event) -> Transition:
    """Apply one event to an instance.

    Args:
        definition: The definition the instance started with (same ``effective_hash``).
        state: The instance's current state.
        event: What happened.

    Returns:
        The new state, the effects the caller must carry out, and what is due now.

    Raises:
        EngineError: The event does not fit: wrong node, step not due or not started,
            unknown outcome, instance waiting or completed, or another definition.
    """
    if state.definition_hash != definition.effective_hash:
        raise EngineError(
            f"instance {state.instance_id} runs {state.definition_id} "
            f"version {state.definition_version}; pass that definition, not version "
            f"{definition.version}"
        )
    if state.status == "completed":
        raise EngineError(f"instance {state.instance_id} is completed; it takes no more events")
    if state.status == "waiting" and not isinstance(event, Resumed):
        wait = state.waiting
        assert wait is not None  # status "waiting" always comes with its reason
        raise EngineError(
            f"instance waits at {wait.node}: loop {wait.loop} reached its cap and asked to "
            f"{wait.effect.kind.replace('_', ' ')}; send 'resumed' once that is settled",
            node=wait.node,
        )
    draft = _Draft.of(definition, state)
    if isinstance(event, StepStarted):
        draft.start_step(event)
    elif isinstance(event, StepFinished):
        draft.finish_step(event)
    elif isinstance(event, CheckPassed | CheckFailed):
        draft.record_check(event)
    elif isinstance(event, DecisionTaken):
        draft.decide(event)
    else:
        draft.resume(event)
    entry = HistoryEntry(event=event, from_node=state.current, to_node=draft.current)
    new_state = draft.freeze(history=(*state.history, entry))
    return Transition(state=new_state, effects=tuple(draft.effects), due=due(definition, new_state))


@dataclass
class _Draft:
    """A mutable working copy of one state, alive only inside one engine call."""

    definition: Definition
    base: InstanceState
    runs: list[StepRun]
    loop_counts: dict[str, int]
    current: str
    status: InstanceStatus
    waiting: Wait | None
    completed_at: datetime | None
    effects: list[Effect] = field(default_factory=list)

    @classmethod
    def of(cls, definition: Definition, state: InstanceState) -> _Draft:
        return cls(
            definition=definition,
            base=state,
            runs=list(state.runs),
            loop_counts=dict(state.loop_counts),
            current=state.current,
            status=state.status,
            waiting=state.waiting,
            completed_at=state.completed_at,
        )

    def freeze(self, *, history: tuple[HistoryEntry, ...]) -> InstanceState:
        return self.base.model_copy(
            update={
                "runs": tuple(self.runs),
                "loop_counts": self.loop_counts,
                "current": self.current,
                "status": self.status,
                "waiting": self.waiting,
                "completed_at": self.completed_at,
                "history": history,
            }
        )

    # -- events ------------------------------------------------------------------------

    def start_step(self, event: StepStarted) -> None:
        node = self._step_node(event.node, "step_started")
        index = self._open_run(node.id)
        run = self.runs[index]
        if run.status == "in_progress":
            raise EngineError(f"step {node.id} is already in progress", node=node.id)
        if run.status == "done":
            raise EngineError(f"activity {node.id} is already done", node=node.id)
        if run.parent is not None:
            container = self.runs[self._open_run(run.parent)]
            if container.status not in ("in_progress", "finished"):
                raise EngineError(f"start {run.parent} before its activity {node.id}", node=node.id)
        attempt = Attempt(number=len(run.attempts) + 1, started_at=event.at, started_by=event.actor)
        self.runs[index] = run.model_copy(
            update={"status": "in_progress", "attempts": (*run.attempts, attempt)}
        )

    def finish_step(self, event: StepFinished) -> None:
        node = self._step_node(event.node, "step_finished")
        index = self._open_run(node.id)
        run = self.runs[index]
        if run.status != "in_progress":
            reason = {
                "due": "was not started; send step_started first",
                "finished": "is already finished; its checks are outstanding",
                "done": "is already done",
            }[run.status]
            raise EngineError(f"step {node.id} {reason}", node=node.id)
        attempt = run.attempts[-1]
        if event.at < attempt.started_at:
            raise EngineError(
                f"step {node.id} cannot finish at {event.at.isoformat()}, before it started "
                f"at {attempt.started_at.isoformat()}",
                node=node.id,
            )
        closed = attempt.model_copy(
            update={
                "finished_at": event.at,
                "finished_by": event.actor,
                "result": event.result,
                "evidence": event.evidence,
            }
        )
        if event.result == "failed":
            status = "due"
        else:
            status = "done" if run.parent is not None else "finished"
        self.runs[index] = run.model_copy(
            update={"status": status, "attempts": (*run.attempts[:-1], closed)}
        )
        if event.result == "ok":
            self._leave_if_complete(event.at)

    def record_check(self, event: CheckPassed | CheckFailed) -> None:
        node = self._known(event.node)
        if node.kind != "check":
            raise EngineError(f"{node.id} is a {node.kind}, not a check", node=node.id)
        owner = self.definition.container_of(node.id)
        if owner != self.current:
            raise EngineError(
                f"check {node.id} belongs to step {owner}; the current node is {self.current}",
                node=node.id,
            )
        index = self._open_run(self.current)
        run = self.runs[index]
        if run.status not in ("in_progress", "finished"):
            raise EngineError(f"start step {owner} before its check {node.id}", node=node.id)
        if node.id in run.passed_checks:
            raise EngineError(f"check {node.id} has already passed", node=node.id)
        record = CheckRecord(
            node=node.id,
            passed=isinstance(event, CheckPassed),
            at=event.at,
            actor=event.actor,
            evidence=event.evidence,
        )
        self.runs[index] = run.model_copy(update={"checks": (*run.checks, record)})
        if record.passed:
            self._leave_if_complete(event.at)

    def decide(self, event: DecisionTaken) -> None:
        node = self._known(event.node)
        if node.kind != "decision":
            raise EngineError(f"{node.id} is a {node.kind}, not a decision", node=node.id)
        if node.id != self.current:
            raise EngineError(
                f"decision {node.id} is not due; the current node is {self.current}",
                node=node.id,
            )
        edges = [e for e in self.definition.out_edges(node.id) if e.outcome == event.outcome]
        if not edges:
            raise EngineError(
                f"{event.outcome!r} is not an outcome of {node.id}; "
                f"choose one of {', '.join(node.outcomes)}",
                node=node.id,
            )
        index = self._open_run(node.id)
        self.runs[index] = self.runs[index].model_copy(
            update={"status": "done", "outcome": event.outcome, "left_at": event.at}
        )
        self.follow(edges[0], event.at)

    def resume(self, event: Resumed) -> None:
        if self.waiting is None:
            raise EngineError("the instance is not waiting; there is nothing to resume")
        self.loop_counts[self.waiting.loop] = 0
        self.waiting = None
        self.status = "running"

    # -- movement ----------------------------------------------------------------------

    def follow(self, edge: Edge, at: datetime) -> None:
        if edge.loop is not None:
            self.loop_counts[edge.key] += 1
        self._arrive(self.definition.node(edge.to), at)

    def _arrive(self, node: Node, at: datetime) -> None:
        visit = 1 + sum(1 for r in self.runs if r.node == node.id and r.parent is None)
        main = len(self.runs)
        self.runs.append(
            StepRun(
                node=node.id,
                visit=visit,
                entered_at=at,
                budget_minutes=node.budget_minutes,
                budget_clock=node.budget_clock,
            )
        )
        self.current = node.id
        for part in self.definition.contained(node.id):
            if part.kind == "task":
                self.runs.append(
                    StepRun(
                        node=part.id,
                        parent=node.id,
                        visit=visit,
                        entered_at=at,
                        budget_minutes=part.budget_minutes,
                        budget_clock=part.budget_clock,
                    )
                )
        if node.kind == "end" and node.performer is None:
            self.runs[main] = self.runs[main].model_copy(update={"status": "done", "left_at": at})
            self._check_total(node)
            self._complete(at)
            return
        for edge in self.definition.out_edges(node.id):
            if edge.loop is not None and self.loop_counts[edge.key] >= edge.loop.cap:
                self._wait_at_cap(node, edge, at)

    def _leave_if_complete(self, at: datetime) -> None:
        index = self._open_run(self.current)
        run = self.runs[index]
        node = self.definition.node(run.node)
        if run.status != "finished":
            return
        checks = {p.id for p in self.definition.contained(node.id) if p.kind == "check"}
        if checks - run.passed_checks:
            return
        if any(r.status != "done" for r in self.runs[index + 1 :] if r.parent == node.id):
            return
        left = run.model_copy(update={"status": "done", "left_at": at})
        self.runs[index] = left
        if left.over_budget:
            self.effects.append(
                Effect(
                    kind="over_budget",
                    node=node.id,
                    budget_minutes=left.budget_minutes,
                    actual_minutes=left.duration_minutes,
                )
            )
        self._check_total(node)
        if node.kind == "end":
            self._complete(at)
        else:
            self.follow(self.definition.out_edges(node.id)[0], at)

    def _check_total(self, node: Node) -> None:
        if node.total_budget_minutes is None:
            return
        actual = sum(
            r.duration_minutes or 0.0
            for r in self.runs
            if r.budget_minutes is not None and r.status == "done"
        )
        if actual > node.total_budget_minutes:
            self.effects.append(
                Effect(
                    kind="over_budget",
                    node=node.id,
                    budget_minutes=node.total_budget_minutes,
                    actual_minutes=actual,
                )
            )

    def _wait_at_cap(self, node: Node, edge: Edge, at: datetime) -> None:
        assert edge.loop is not None
        action = edge.loop.at_cap
        effect = Effect(
            kind=action.effect,
            node=node.id,
            problem_type=action.problem_type,
            escalate_to=action.escalate_to,
            loop=edge.key,
            attempts=self.loop_counts[edge.key],
            note=action.note,
        )
        self.effects.append(effect)
        self.status = "waiting"
        self.waiting = Wait(loop=edge.key, node=node.id, effect=effect, since=at)

    def _complete(self, at: datetime) -> None:
        self.status = "completed"
        self.completed_at = at
        self.effects.append(Effect(kind="completed", node=self.current))

    # -- lookups -----------------------------------------------------------------------

    def _known(self, node_id: str) -> Node:
        if not self.definition.has_node(node_id):
            raise EngineError(f"{self.definition.id} has no node {node_id!r}", node=node_id)
        return self.definition.node(node_id)

    def _step_node(self, node_id: str, event_type: str) -> Node:
        node = self._known(node_id)
        if node.kind in ("task", "end"):
            return node
        hint = {
            "decision": "send decision_taken",
            "check": "send check_passed or check_failed",
            "start": "entry points are passed when the instance starts",
        }[node.kind]
        raise EngineError(f"{event_type}: {node_id} is a {node.kind}; {hint}", node=node_id)

    def _open_run(self, node_id: str) -> int:
        """Index of the run of ``node_id`` that is due now, or raise why it is not."""
        container = self.definition.container_of(node_id)
        expected_parent = None if container is None else self.current
        if (container is None and node_id == self.current) or container == self.current:
            for index in range(len(self.runs) - 1, -1, -1):
                run = self.runs[index]
                if run.node == node_id and run.parent == expected_parent:
                    return index
        where = f"activity of {container}" if container else "step"
        raise EngineError(
            f"{where} {node_id} is not due; the current node is {self.current}", node=node_id
        )
