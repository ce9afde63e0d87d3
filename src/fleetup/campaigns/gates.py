"""Gate rules between waves: pure functions over a wave's counts.

A wave's gate has two thresholds. The success threshold is a share of the wave's machines
that must have completed their upgrade; when it is met, the next wave may start (``auto``)
or waits for a manager's approval (``approval``). The error threshold is a count or a share
of failed machines; reaching it pauses the running wave at once. Thresholds are inclusive:
exactly 95 % completed meets a 95 % threshold, exactly 3 failures reach a limit of 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Advance = Literal["auto", "approval"]
Verdict = Literal["hold", "open", "await_approval", "pause"]


class GateRule(BaseModel):
    """The thresholds of one wave's gate (stored as the wave's ``gate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    success_share: float = Field(default=0.95, ge=0, le=1)
    advance: Advance = "auto"
    error_count: int | None = Field(default=3, ge=1)
    error_share: float | None = Field(default=0.2, gt=0, le=1)

    @model_validator(mode="after")
    def _some_error_limit(self) -> GateRule:
        if self.error_count is None and self.error_share is None:
            raise ValueError("give error_count, error_share or both")
        return self


@dataclass(frozen=True)
class WaveCounts:
    """Where a wave's machines stand."""

    total: int
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    pending: int = 0
    held: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_share(self) -> float:
        return self.succeeded / self.total if self.total else 0.0


def errors_reached(counts: WaveCounts, rule: GateRule, *, accepted_failures: int = 0) -> bool:
    """True when the failures since the last resume reach the error threshold."""
    new_failures = counts.failed - accepted_failures
    if new_failures <= 0:
        return False
    if rule.error_count is not None and new_failures >= rule.error_count:
        return True
    return (
        rule.error_share is not None
        and counts.total > 0
        and new_failures / counts.total >= rule.error_share
    )


def success_reached(counts: WaveCounts, rule: GateRule) -> bool:
    """True when the completed share meets the success threshold (a wave of none never does)."""
    return counts.total > 0 and counts.succeeded >= rule.success_share * counts.total - 1e-9


def evaluate(
    counts: WaveCounts, rule: GateRule, *, gate_state: str, accepted_failures: int = 0
) -> Verdict:
    """What the gate does now for a running wave.

    Args:
        counts: The wave's machines by status.
        rule: Its thresholds.
        gate_state: ``closed``, ``open`` or ``awaiting_approval``.
        accepted_failures: Failures a manager already resumed the wave with.

    Returns:
        ``pause`` when the error threshold is reached (before anything else: a wave that
        fails does not open the next one), ``open`` or ``await_approval`` when the success
        threshold is met for the first time, ``hold`` otherwise.
    """
    if errors_reached(counts, rule, accepted_failures=accepted_failures):
        return "pause"
    if gate_state == "closed" and success_reached(counts, rule):
        return "open" if rule.advance == "auto" else "await_approval"
    return "hold"
