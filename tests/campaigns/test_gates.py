"""The gate rules, as pure functions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleetup.campaigns.gates import GateRule, WaveCounts, evaluate

RULE = GateRule(success_share=0.95, advance="auto", error_count=3, error_share=0.2)


def test_success_threshold_exactly_met_opens_the_gate() -> None:
    assert evaluate(WaveCounts(total=20, succeeded=19, running=1), RULE, gate_state="closed") == (
        "open"
    )


def test_success_threshold_missed_by_one_holds() -> None:
    assert evaluate(WaveCounts(total=20, succeeded=18, running=2), RULE, gate_state="closed") == (
        "hold"
    )


def test_success_threshold_exceeded_opens_the_gate_once() -> None:
    counts = WaveCounts(total=20, succeeded=20)
    assert evaluate(counts, RULE, gate_state="closed") == "open"
    assert evaluate(counts, RULE, gate_state="open") == "hold"


def test_approval_rule_waits_for_a_manager() -> None:
    rule = RULE.model_copy(update={"advance": "approval"})
    assert evaluate(WaveCounts(total=4, succeeded=4), rule, gate_state="closed") == (
        "await_approval"
    )


def test_error_count_reached_exactly_pauses_before_anything_else() -> None:
    counts = WaveCounts(total=100, succeeded=97, failed=3)
    assert evaluate(counts, RULE, gate_state="closed") == "pause"


def test_error_share_reached_pauses() -> None:
    rule = GateRule(error_count=None, error_share=0.25)
    assert evaluate(WaveCounts(total=8, failed=2, running=6), rule, gate_state="closed") == "pause"
    assert evaluate(WaveCounts(total=9, failed=2, running=7), rule, gate_state="closed") == "hold"


def test_failures_accepted_at_resume_no_longer_count() -> None:
    counts = WaveCounts(total=100, failed=4, running=96)
    assert evaluate(counts, RULE, gate_state="closed", accepted_failures=2) == "hold"
    assert evaluate(counts, RULE, gate_state="closed", accepted_failures=1) == "pause"


def test_an_empty_wave_never_opens() -> None:
    assert evaluate(WaveCounts(total=0), RULE, gate_state="closed") == "hold"


def test_a_rule_without_any_error_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="error_count, error_share or both"):
        GateRule(error_count=None, error_share=None)
