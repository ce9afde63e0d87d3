"""What can happen to a running SOP instance: the events the engine accepts.

Events are the only way time enters the engine: each carries ``at`` (timezone-aware) and
``actor`` (who did it: a user name, a technician's id, ``agent:IPC-042``). They are
discriminated by ``type`` so the server can store them as JSON and read them back with
:func:`parse_event`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

StepResult = Literal["ok", "failed"]


class FileRef(BaseModel):
    """A file kept as evidence (a photo, a backup manifest, a log), stored elsewhere."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    uri: str = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, ge=0)


class Evidence(BaseModel):
    """What a performer hands in with a step, check or decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = None
    numbers: dict[str, float] = Field(default_factory=dict)
    files: tuple[FileRef, ...] = ()


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    actor: str = Field(min_length=1)


class StepStarted(_EventBase):
    """Someone began a step (or an activity of the current phase); opens an attempt."""

    type: Literal["step_started"] = "step_started"
    node: str


class StepFinished(_EventBase):
    """A started step ended; ``failed`` closes the attempt and the step is due again."""

    type: Literal["step_finished"] = "step_finished"
    node: str
    result: StepResult = "ok"
    evidence: Evidence = Field(default_factory=Evidence)


class CheckPassed(_EventBase):
    """A ✅ check of the current step holds."""

    type: Literal["check_passed"] = "check_passed"
    node: str
    evidence: Evidence = Field(default_factory=Evidence)


class CheckFailed(_EventBase):
    """A ✅ check of the current step does not hold (yet); the step cannot be left."""

    type: Literal["check_failed"] = "check_failed"
    node: str
    evidence: Evidence = Field(default_factory=Evidence)


class DecisionTaken(_EventBase):
    """The current decision was taken; the flow follows the edge of ``outcome``."""

    type: Literal["decision_taken"] = "decision_taken"
    node: str
    outcome: str
    evidence: Evidence = Field(default_factory=Evidence)


class Resumed(_EventBase):
    """What a loop cap asked for (a problem, an incident, an escalation) is settled."""

    type: Literal["resumed"] = "resumed"
    note: str = ""


Event = Annotated[
    StepStarted | StepFinished | CheckPassed | CheckFailed | DecisionTaken | Resumed,
    Field(discriminator="type"),
]

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: Mapping[str, object]) -> Event:
    """Build an event from its JSON form, choosing the class by ``type``.

    Args:
        data: A mapping with ``type`` and that event's fields.

    Returns:
        The event.

    Raises:
        pydantic.ValidationError: Unknown ``type``, a missing field, or a naive ``at``.
    """
    return _EVENT_ADAPTER.validate_python(dict(data))
