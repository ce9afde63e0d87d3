"""The state of one running SOP instance, and what the engine hands back with it.

Everything here is immutable: the engine returns new values and never changes old ones, so
the server can store any state as-is (``model_dump(mode="json")``) and a refused event leaves
the caller's state exactly as it was.

A *run* is one visit of one node: chart 2's install step J visited four times (three
reinstalls) has four runs, each with its own attempts, checks and timing. Checks live in the
run of the step that contains them; chart 1's activities get runs of their own whose
``parent`` is their phase.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from fleetup.sop.events import Event, Evidence, StepResult
from fleetup.sop.model import BudgetClock, NodeKind, Performer, Text

RunStatus = Literal["due", "in_progress", "finished", "done"]
InstanceStatus = Literal["running", "waiting", "completed"]
EffectKind = Literal["open_problem", "open_incident", "escalate", "over_budget", "completed"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Attempt(BaseModel):
    """One try at a step, from ``step_started`` to ``step_finished``."""

    model_config = _FROZEN

    number: int
    started_at: datetime
    started_by: str
    finished_at: datetime | None = None
    finished_by: str | None = None
    result: StepResult | None = None
    evidence: Evidence = Evidence()

    @property
    def duration_minutes(self) -> float | None:
        """Minutes from start to finish, ``None`` while the attempt is open."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds() / 60


class CheckRecord(BaseModel):
    """One ``check_passed`` or ``check_failed`` on the run of the step that contains it."""

    model_config = _FROZEN

    node: str
    passed: bool
    at: datetime
    actor: str
    evidence: Evidence = Evidence()


class StepRun(BaseModel):
    """One visit of one node.

    ``status``: ``due`` (waiting to be started, or to be started again after a failed
    attempt), ``in_progress``, ``finished`` (done, but a check or activity is outstanding)
    and ``done`` (left).
    """

    model_config = _FROZEN

    node: str
    parent: str | None = None
    visit: int
    entered_at: datetime
    status: RunStatus = "due"
    budget_minutes: float | None = None
    budget_clock: BudgetClock = "step"
    attempts: tuple[Attempt, ...] = ()
    checks: tuple[CheckRecord, ...] = ()
    outcome: str | None = None
    left_at: datetime | None = None

    @property
    def started_at(self) -> datetime | None:
        """When the first attempt began."""
        return self.attempts[0].started_at if self.attempts else None

    @property
    def finished_at(self) -> datetime | None:
        """When the last attempt ended."""
        return self.attempts[-1].finished_at if self.attempts else None

    @property
    def performers(self) -> tuple[str, ...]:
        """Everyone who started or finished an attempt, first one first."""
        seen: dict[str, None] = {}
        for attempt in self.attempts:
            seen[attempt.started_by] = None
            if attempt.finished_by is not None:
                seen[attempt.finished_by] = None
        return tuple(seen)

    @property
    def passed_checks(self) -> frozenset[str]:
        """The checks that passed on this visit."""
        return frozenset(record.node for record in self.checks if record.passed)

    @property
    def duration_minutes(self) -> float | None:
        """Time the step took: its attempts added up, or since it became due (arrival clock)."""
        finished = [a.duration_minutes for a in self.attempts if a.duration_minutes is not None]
        if not finished:
            return None
        if self.budget_clock == "arrival" and self.finished_at is not None:
            return (self.finished_at - self.entered_at).total_seconds() / 60
        return sum(finished)

    @property
    def over_budget(self) -> bool:
        """True when the step has a budget and took longer."""
        duration = self.duration_minutes
        return (
            self.budget_minutes is not None
            and duration is not None
            and (duration > self.budget_minutes)
        )


class Effect(BaseModel):
    """Something the engine asks the outside world to do; the engine itself does nothing.

    ``open_problem``, ``open_incident`` and ``escalate`` come from a loop cap (``loop``,
    ``attempts``, ``problem_type`` / ``escalate_to`` and ``note`` from the definition);
    ``over_budget`` reports a step (or a total) that took longer than its budget;
    ``completed`` reports that the instance reached its end.
    """

    model_config = _FROZEN

    kind: EffectKind
    node: str
    problem_type: str | None = None
    escalate_to: Performer | None = None
    loop: str | None = None
    attempts: int | None = None
    budget_minutes: float | None = None
    actual_minutes: float | None = None
    note: Text | None = None


class Wait(BaseModel):
    """Why an instance is waiting: a loop reached its cap and asked for outside help."""

    model_config = _FROZEN

    loop: str
    node: str
    effect: Effect
    since: datetime


class HistoryEntry(BaseModel):
    """One accepted event and where the instance stood before and after it."""

    model_config = _FROZEN

    event: Event
    from_node: str
    to_node: str


class InstanceState(BaseModel):
    """Everything about one running (or finished) instance of a definition.

    ``definition_hash`` pins the definition it started with; the engine refuses to apply
    events with another one, so a replaced definition never changes a running instance.
    """

    model_config = _FROZEN

    instance_id: str
    definition_id: str
    definition_version: str
    definition_hash: str
    subject: dict[str, str]
    entry: str
    status: InstanceStatus
    current: str
    started_at: datetime
    completed_at: datetime | None = None
    runs: tuple[StepRun, ...]
    loop_counts: dict[str, int]
    waiting: Wait | None = None
    history: tuple[HistoryEntry, ...] = ()

    @property
    def current_run(self) -> StepRun:
        """The run of the node the instance stands on."""
        return next(r for r in reversed(self.runs) if r.node == self.current and r.parent is None)

    def runs_of(self, node: str) -> tuple[StepRun, ...]:
        """Every visit of ``node``, in order."""
        return tuple(run for run in self.runs if run.node == node)

    def attempts_of(self, node: str) -> int:
        """How many attempts ``node`` had over all its visits."""
        return sum(len(run.attempts) for run in self.runs_of(node))


class DueItem(BaseModel):
    """Something someone should do now.

    ``deadline`` is when the budget runs out: the current attempt's start plus the budget,
    or, for a step timed from arrival (a response time), the moment it became due plus the
    budget. ``None`` when there is no budget or the clock has not started.
    """

    model_config = _FROZEN

    node: str
    kind: NodeKind
    label: Text
    performer: Performer | None
    parent: str | None = None
    outcomes: tuple[str, ...] = ()
    budget_minutes: float | None = None
    started_at: datetime | None = None
    deadline: datetime | None = None
    attempt: int


class Transition(BaseModel):
    """What :func:`fleetup.sop.engine.apply` returns: the new state, effects, what is due."""

    model_config = _FROZEN

    state: InstanceState
    effects: tuple[Effect, ...]
    due: tuple[DueItem, ...]
