"""The engine walks instances through the charts, refuses what does not fit, caps loops."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sop_helpers import T0, Script

from fleetup.sop import (
    CheckFailed,
    CheckPassed,
    DecisionTaken,
    Effect,
    EngineError,
    Resumed,
    StepFinished,
    StepStarted,
    apply,
    due,
    load_builtin,
    parse_definition,
    parse_event,
    start,
)
from fleetup.sop.events import Event


def _chart2() -> Script:
    definition = load_builtin("chart2")
    return Script(definition, start(definition, at=T0, subject={"machine": "IPC-042"}))


def _to_install(script: Script) -> None:
    """Existing customer, network fine, backup and download done: J is due."""
    script.decide("B", "yes")
    script.step("C")
    script.decide("E", "yes")
    script.step("F", 8, ("B1",))
    script.step("I", 3)


def _effects(script: Script, kind: str) -> list[Effect]:
    return [e for e in script.effects if isinstance(e, Effect) and e.kind == kind]


def test_start_stands_on_the_node_after_the_entry() -> None:
    script = _chart2()
    assert script.state.current == "B"
    assert script.state.status == "running"
    assert script.state.subject == {"machine": "IPC-042"}
    assert [item.node for item in due(script.definition, script.state)] == ["B"]
    assert script.state.runs[0].node == "A" and script.state.runs[0].status == "done"


def test_happy_path_of_chart2_reaches_v_and_completes() -> None:
    script = _chart2()
    _to_install(script)
    script.step("J", 12, ("C1",))
    script.decide("K", "yes")
    script.step("L", 9, ("D1",))
    script.step("N", 4, ("E1",))
    script.step("O", 14, ("F1",))
    script.decide("P", "yes")
    script.step("Q", 10, ("G1",))
    script.step("S")
    script.step("T")
    script.step("U")
    state = script.state
    assert state.status == "completed" and state.current == "V"
    assert state.completed_at == script.now
    assert due(script.definition, state) == ()
    assert _effects(script, "completed") == [Effect(kind="completed", node="V")]
    assert _effects(script, "over_budget") == []
    visited = [run.node for run in state.runs]
    assert visited == list("ABCEFIJKLNOPQSTUV")


def test_a_new_customer_and_a_network_fault_take_the_side_branches() -> None:
    script = _chart2()
    script.decide("B", "no")
    assert script.state.current == "D"
    script.step("D")
    script.decide("E", "no")
    script.step("G")
    script.step("H")
    assert script.state.current == "F"


def test_reinstall_loop_goes_back_to_install_and_counts() -> None:
    script = _chart2()
    _to_install(script)
    script.step("J", 12, ("C1",))
    script.decide("K", "no")
    script.step("M")
    assert script.state.current == "J"
    assert script.state.loop_counts["M->J"] == 1
    assert [run.visit for run in script.state.runs_of("J")] == [1, 2]
    assert script.state.current_run.passed_checks == frozenset()


def test_reinstall_cap_opens_a_software_problem_and_waits_until_resumed() -> None:
    script = _chart2()
    _to_install(script)
    for _ in range(3):
        script.step("J", 5, ("C1",))
        script.decide("K", "no")
        script.step("M")
    script.step("J", 5, ("C1",))
    script.decide("K", "no")
    state = script.state
    assert state.status == "waiting" and state.current == "M"
    assert state.loop_counts["M->J"] == 3
    assert len(state.runs_of("M")) == 4 and state.attempts_of("M") == 3
    [effect] = _effects(script, "open_problem")
    assert (effect.node, effect.problem_type, effect.loop, effect.attempts) == (
        "M",
        "software",
        "M->J",
        3,
    )
    assert state.waiting is not None and state.waiting.effect == effect
    assert due(script.definition, state) == ()
    with pytest.raises(EngineError, match="send 'resumed'"):
        script.send(StepStarted(node="M", at=script.now, actor="agent"))

    script.send(Resumed(at=script.now, actor="oncall-1", note="problem P-7 solved"))
    assert script.state.status == "running" and script.state.loop_counts["M->J"] == 0
    script.step("M")
    script.step("J", 5, ("C1",))
    script.decide("K", "yes")
    assert script.state.current == "L"


def test_troubleshooting_cap_opens_a_problem_without_a_type() -> None:
    script = _chart2()
    _to_install(script)
    script.step("J", 5, ("C1",))
    script.decide("K", "yes")
    script.step("L", 5, ("D1",))
    script.step("N", 5, ("E1",))
    for _ in range(3):
        script.step("O", 5, ("F1",))
        script.decide("P", "no")
        script.step("R")
    script.step("O", 5, ("F1",))
    script.decide("P", "no")
    [effect] = _effects(script, "open_problem")
    assert (effect.node, effect.problem_type, effect.loop) == ("R", None, "R->O")


def test_chart5_cap_escalates_to_the_manager() -> None:
    definition = load_builtin("chart5")
    script = Script(definition, start(definition, at=T0))
    script.step("B")
    script.step("C")
    for _ in range(3):
        script.step("D")
        script.decide("E", "below_8")
        script.step("G")
        script.step("H")
        script.step("I")
    script.step("D")
    script.decide("E", "below_8")
    script.step("G")
    script.step("H")
    assert script.state.status == "waiting" and script.state.current == "I"
    [effect] = _effects(script, "escalate")
    assert effect.escalate_to == "manager" and effect.loop == "I->D"


def test_over_budget_step_is_tracked_and_reported() -> None:
    script = _chart2()
    _to_install(script)
    script.step("J", 25, ("C1",))
    run = script.state.runs_of("J")[-1]
    assert run.budget_minutes == 15 and run.duration_minutes == 25 and run.over_budget
    assert run.performers == ("tech-1",)
    [effect] = _effects(script, "over_budget")
    assert (effect.node, effect.budget_minutes, effect.actual_minutes) == ("J", 15, 25)
    backup = script.state.runs_of("F")[0]
    assert backup.duration_minutes == 8 and not backup.over_budget


def test_total_budget_is_checked_when_the_upgrade_is_confirmed() -> None:
    script = _chart2()
    _to_install(script)
    script.step("J", 30, ("C1",))
    script.decide("K", "yes")
    for node, check in (("L", "D1"), ("N", "E1"), ("O", "F1")):
        script.step(node, 10, (check,))
    script.decide("P", "yes")
    script.step("Q", 10, ("G1",))
    script.step("S")
    totals = [e for e in _effects(script, "over_budget") if e.node == "S"]
    assert totals == [Effect(kind="over_budget", node="S", budget_minutes=65, actual_minutes=78)]


def test_step_with_required_check_cannot_be_left_until_it_passes() -> None:
    script = _chart2()
    _to_install(script)
    script.send(StepStarted(node="J", at=script.now, actor="agent"))
    script.send(StepFinished(node="J", at=script.now, actor="agent"))
    assert script.state.current == "J"
    assert [i.node for i in due(script.definition, script.state)] == ["C1"]
    script.send(CheckFailed(node="C1", at=script.now, actor="agent"))
    assert script.state.current == "J"
    with pytest.raises(EngineError):
        script.decide("K", "yes")
    script.send(CheckPassed(node="C1", at=script.now, actor="agent"))
    assert script.state.current == "K"
    checks = script.state.runs_of("J")[0].checks
    assert [c.passed for c in checks] == [False, True]


def test_failed_attempt_leaves_the_step_due_again() -> None:
    script = _chart2()
    _to_install(script)
    script.send(StepStarted(node="J", at=script.now, actor="agent"))
    script.wait(4)
    script.send(StepFinished(node="J", at=script.now, actor="agent", result="failed"))
    [item] = due(script.definition, script.state)
    assert (item.node, item.attempt) == ("J", 2)
    script.step("J", 6, ("C1",))
    run = script.state.runs_of("J")[0]
    assert [a.result for a in run.attempts] == ["failed", "ok"]
    assert run.duration_minutes == 10


def test_due_gives_performer_budget_and_deadline() -> None:
    script = _chart2()
    _to_install(script)
    [pending] = due(script.definition, script.state)
    assert (pending.performer, pending.budget_minutes, pending.deadline) == ("agent", 15, None)
    transition = script.send(StepStarted(node="J", at=script.now, actor="agent"))
    item = transition.due[0]
    assert item.started_at == script.now
    assert item.deadline == script.now + timedelta(minutes=15)
    assert [(i.node, i.kind, i.parent) for i in transition.due[1:]] == [("C1", "check", "J")]


def test_response_time_is_counted_from_arrival() -> None:
    definition = load_builtin("chart6")
    script = Script(definition, start(definition, at=T0, entry="A"))
    script.step("B", 1)
    [item] = due(definition, script.state)
    assert item.node == "C" and item.deadline == script.now + timedelta(minutes=15)
    script.wait(20)
    script.step("C", 1)
    run = script.state.runs_of("C")[0]
    assert run.duration_minutes == 21 and run.over_budget


def test_chart6_needs_an_entry_and_starts_at_the_named_one() -> None:
    definition = load_builtin("chart6")
    with pytest.raises(EngineError, match="several entry points"):
        start(definition, at=T0)
    with pytest.raises(EngineError, match="not an entry point"):
        start(definition, at=T0, entry="B")
    assert start(definition, at=T0, entry="I").current == "J"


def test_chart1_phase_waits_for_its_activities() -> None:
    definition = load_builtin("chart1")
    script = Script(definition, start(definition, at=T0))
    with pytest.raises(EngineError, match="start B before its activity B1"):
        script.send(StepStarted(node="B1", at=script.now, actor="pm"))
    script.send(StepStarted(node="B", at=script.now, actor="pm"))
    script.step("B1")
    script.send(StepFinished(node="B", at=script.now, actor="pm"))
    assert script.state.current == "B"
    assert [i.node for i in due(definition, script.state)] == ["B2", "B3"]
    script.step("B2")
    script.step("B3")
    assert script.state.current == "C"
    with pytest.raises(EngineError, match="not due"):
        script.send(StepStarted(node="B1", at=script.now, actor="pm"))


def test_chart1_completes_when_the_last_phase_and_its_activities_are_done() -> None:
    definition = load_builtin("chart1")
    script = Script(definition, start(definition, at=T0))
    for phase in "BCDEF":
        script.send(StepStarted(node=phase, at=script.now, actor="pm"))
        for activity in definition.contained(phase):
            script.step(activity.id)
        script.wait(7 * 24 * 60)
        script.send(StepFinished(node=phase, at=script.now, actor="pm"))
    assert script.state.status == "completed" and script.state.current == "F"


REFUSED: list[tuple[str, Event, str]] = [
    ("wrong node", StepStarted(node="L", at=T0, actor="x"), "not due"),
    ("unknown node", StepStarted(node="ZZ", at=T0, actor="x"), "no node 'ZZ'"),
    ("finish before start", StepFinished(node="J", at=T0, actor="x"), "was not started"),
    ("decision as step", StepStarted(node="K", at=T0, actor="x"), "send decision_taken"),
    ("decision not due", DecisionTaken(node="K", outcome="yes", at=T0, actor="x"), "not due"),
    ("check of other step", CheckPassed(node="D1", at=T0, actor="x"), "belongs to step L"),
    ("check before start", CheckPassed(node="C1", at=T0, actor="x"), "start step J"),
    ("resume while running", Resumed(at=T0, actor="x"), "not waiting"),
]


@pytest.mark.parametrize(("case", "event", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_events_leave_the_state_unchanged(case: str, event: Event, message: str) -> None:
    script = _chart2()
    _to_install(script)
    before = script.state.model_dump()
    with pytest.raises(EngineError, match=message):
        script.send(event.model_copy(update={"at": script.now}))
    assert script.state.model_dump() == before


def test_unknown_outcome_is_refused_listing_the_outcomes() -> None:
    script = _chart2()
    with pytest.raises(EngineError, match=r"'maybe' is not an outcome of B; choose one of yes, no"):
        script.decide("B", "maybe")


def test_finishing_before_the_start_time_is_refused() -> None:
    script = _chart2()
    _to_install(script)
    script.send(StepStarted(node="J", at=script.now, actor="agent"))
    earlier = script.now - timedelta(minutes=1)
    with pytest.raises(EngineError, match="before it started"):
        script.send(StepFinished(node="J", at=earlier, actor="agent"))


def test_events_after_completion_are_refused() -> None:
    definition = load_builtin("chart4")
    script = Script(definition, start(definition, at=T0))
    script.decide("B", "software")
    for node in ("E", "E1", "E2", "G", "H"):
        script.step(node)
    assert script.state.status == "completed" and script.state.current == "I"
    with pytest.raises(EngineError, match="is completed"):
        script.send(StepStarted(node="H", at=script.now, actor="x"))


def test_an_instance_keeps_the_definition_version_it_started_with() -> None:
    script = _chart2()
    content = Path(script.definition.source).read_bytes()
    newer = parse_definition(content.replace(b'version: "1.0"', b'version: "1.1"'), source="new")
    event = DecisionTaken(node="B", outcome="yes", at=T0, actor="x")
    with pytest.raises(EngineError, match=r"runs chart2 version 1\.0; pass that definition"):
        apply(newer, script.state, event)
    assert apply(script.definition, script.state, event).state.current == "C"


def test_history_records_every_accepted_event_with_from_and_to() -> None:
    script = _chart2()
    script.decide("B", "yes")
    script.step("C")
    history = script.state.history
    assert [(h.event.type, h.from_node, h.to_node) for h in history] == [
        ("decision_taken", "B", "C"),
        ("step_started", "C", "C"),
        ("step_finished", "C", "E"),
    ]


def test_state_and_events_round_trip_through_json() -> None:
    script = _chart2()
    _to_install(script)
    dumped = script.state.model_dump(mode="json")
    assert type(script.state).model_validate(dumped) == script.state
    event = parse_event(
        {
            "type": "check_failed",
            "node": "C1",
            "at": "2025-03-03T09:00:00+08:00",
            "actor": "agent",
            "evidence": {
                "text": "checksum mismatch",
                "numbers": {"retries": 2},
                "files": [{"name": "log", "uri": "blob:1"}],
            },
        }
    )
    assert isinstance(event, CheckFailed) and event.evidence.files[0].uri == "blob:1"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_event({"type": "resumed", "at": "2025-03-03T09:00:00", "actor": "x"})
    with pytest.raises(EngineError, match="time zone"):
        start(load_builtin("chart2"), at=datetime(2025, 3, 3))
