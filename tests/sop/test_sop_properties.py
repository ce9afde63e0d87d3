"""Property tests: whatever events arrive, the engine never reaches an invalid state.

Invariants, checked after every accepted event:
- the instance stands on a node of the flow (not a check or activity), and its run is open;
- every loop count is between 0 and the loop's cap;
- ``completed`` exactly when a completion time is set, and only on an end node;
- ``waiting`` exactly when a wait is recorded, on the loop's source, with the loop at its cap;
- a running instance always has something due (it can never get stuck);
- every step that was left had all its checks passed and activities done;
- the history is a chain: each entry starts where the previous one ended, the last ends on
  the current node, one entry per accepted event.
A refused event must leave the state exactly as it was.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import event as note_statistic
from hypothesis import given, settings
from hypothesis import strategies as st
from sop_helpers import T0

from fleetup.sop import (
    BUILTIN_CHARTS,
    CheckFailed,
    CheckPassed,
    DecisionTaken,
    Definition,
    Effect,
    EngineError,
    InstanceState,
    Resumed,
    StepFinished,
    StepStarted,
    apply,
    due,
    load_builtin,
    parse_definition,
    start,
)
from fleetup.sop.events import Event

DEFINITIONS = {chart_id: load_builtin(chart_id) for chart_id in BUILTIN_CHARTS}


def _with_caps_of_one(chart_id: str) -> Definition:
    """The shipped chart with every loop capped at 1, so random runs meet caps often."""
    content = Path(DEFINITIONS[chart_id].source).read_bytes()
    return parse_definition(content.replace(b"cap: 3", b"cap: 1"), source=f"{chart_id}-cap1")


FUZZED = {**DEFINITIONS, **{f"{c}-cap1": _with_caps_of_one(c) for c in ("chart2", "chart5")}}


def check_invariants(definition: Definition, state: InstanceState, accepted: int) -> None:
    node = definition.node(state.current)
    assert definition.container_of(node.id) is None
    open_runs = [r for r in state.runs if r.parent is None and r.left_at is None]
    if state.status == "completed":
        assert node.kind == "end" and state.completed_at is not None and open_runs == []
    else:
        assert state.completed_at is None
        assert [r.node for r in open_runs] == [state.current]
    for edge in definition.loops:
        assert edge.loop is not None
        assert 0 <= state.loop_counts[edge.key] <= edge.loop.cap
    if state.status == "waiting":
        wait = state.waiting
        assert wait is not None and wait.node == state.current
        loop = next(e.loop for e in definition.loops if e.key == wait.loop)
        assert loop is not None and state.loop_counts[wait.loop] == loop.cap
    else:
        assert state.waiting is None
    if state.status == "running":
        assert due(definition, state), "a running instance must have something due"
    for index, run in enumerate(state.runs):
        assert definition.has_node(run.node)
        assert all(a.finished_at is not None for a in run.attempts[:-1])
        if run.status == "done" and run.parent is None:
            checks = {p.id for p in definition.contained(run.node) if p.kind == "check"}
            assert checks <= run.passed_checks
            parts = [r for r in state.runs[index + 1 :] if r.parent == run.node]
            latest = {r.node: r for r in parts if r.visit == run.visit}
            assert all(r.status == "done" for r in latest.values())
    assert len(state.history) == accepted
    for before, after in zip(state.history, state.history[1:], strict=False):
        assert before.to_node == after.from_node
    if state.history:
        assert state.history[-1].to_node == state.current


def sensible_events(definition: Definition, state: InstanceState) -> list[Event]:
    """Events that fit what is due (some may still be refused, e.g. a check not yet due)."""
    at, actor = T0, "tester"
    events: list[Event] = []
    if state.status == "waiting":
        events.append(Resumed(at=at, actor=actor))
    for item in due(definition, state):
        if item.kind == "decision":
            events += [
                DecisionTaken(node=item.node, outcome=o, at=at, actor=actor) for o in item.outcomes
            ]
        elif item.kind == "check":
            events += [
                CheckPassed(node=item.node, at=at, actor=actor),
                CheckFailed(node=item.node, at=at, actor=actor),
            ]
        elif item.started_at is None:
            events.append(StepStarted(node=item.node, at=at, actor=actor))
        else:
            events += [
                StepFinished(node=item.node, at=at, actor=actor),
                StepFinished(node=item.node, at=at, actor=actor, result="failed"),
            ]
    return events


def random_event(definition: Definition) -> st.SearchStrategy[Event]:
    nodes = st.sampled_from([n.id for n in definition.nodes] + ["NOPE"])
    outcomes = st.sampled_from(
        sorted({o for n in definition.nodes for o in n.outcomes} | {"maybe"})
    )
    at, actor = st.just(T0), st.just("fuzzer")
    return st.one_of(
        st.builds(StepStarted, node=nodes, at=at, actor=actor),
        st.builds(
            StepFinished, node=nodes, at=at, actor=actor, result=st.sampled_from(["ok", "failed"])
        ),
        st.builds(CheckPassed, node=nodes, at=at, actor=actor),
        st.builds(CheckFailed, node=nodes, at=at, actor=actor),
        st.builds(DecisionTaken, node=nodes, outcome=outcomes, at=at, actor=actor),
        st.builds(Resumed, at=at, actor=actor),
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data(), chart_id=st.sampled_from(sorted(FUZZED)))
def test_random_event_sequences_never_break_an_invariant(
    data: st.DataObject, chart_id: str
) -> None:
    definition = FUZZED[chart_id]
    entry = data.draw(st.sampled_from(definition.starts))
    state = start(definition, at=T0, entry=entry)
    now, accepted, waited = T0, 0, False
    check_invariants(definition, state, accepted)
    for _ in range(data.draw(st.integers(10, 80))):
        now += timedelta(minutes=data.draw(st.integers(0, 30)))
        options = sensible_events(definition, state)
        if options and data.draw(st.integers(0, 9)) < 8:
            event = data.draw(st.sampled_from(options))
        else:
            event = data.draw(random_event(definition))
        event = event.model_copy(update={"at": now})
        before = state.model_dump()
        try:
            state = apply(definition, state, event).state
        except EngineError:
            assert state.model_dump() == before
            continue
        accepted += 1
        waited = waited or state.status == "waiting"
        check_invariants(definition, state, accepted)
    # Shown by --hypothesis-show-statistics: how far the sequences got.
    note_statistic(f"{chart_id} ended {state.status}{', waited on a cap' if waited else ''}")


LOOPS = [(cid, e.key) for cid, d in DEFINITIONS.items() for e in d.loops]


def _distances_to(definition: Definition, target: str) -> dict[str, int]:
    backward: dict[str, list[str]] = {}
    for edge in definition.edges:
        if edge.kind == "then":
            backward.setdefault(edge.to, []).append(edge.source)
    distance = {target: 0}
    queue = deque([target])
    while queue:
        node = queue.popleft()
        for previous in backward.get(node, []):
            if previous not in distance:
                distance[previous] = distance[node] + 1
                queue.append(previous)
    return distance


@settings(max_examples=40, deadline=None)
@pytest.mark.parametrize(("chart_id", "loop_key"), LOOPS)
@given(data=st.data())
def test_every_loop_stops_at_its_cap_with_the_configured_effect(
    chart_id: str, loop_key: str, data: st.DataObject
) -> None:
    definition = DEFINITIONS[chart_id]
    loop_edge = next(e for e in definition.loops if e.key == loop_key)
    assert loop_edge.loop is not None
    distance = _distances_to(definition, loop_edge.source)
    state = start(definition, at=T0)
    now = T0
    effects: list[Effect] = []
    failures = 0  # in a row; bounded so that every run reaches the cap
    for _ in range(400):
        if state.status == "waiting":
            break
        now += timedelta(minutes=data.draw(st.integers(0, 20)))
        item = due(definition, state)[0]
        event: Event
        if item.kind == "decision":
            # Head for the loop: take the outcome whose target is closest to its source.
            edges = definition.out_edges(item.node)
            edge = min(edges, key=lambda e: distance.get(e.to, 10_000))
            event = DecisionTaken(node=item.node, outcome=edge.outcome or "", at=now, actor="t")
        elif item.kind == "check":
            fail = failures < 2 and data.draw(st.booleans())
            failures = failures + 1 if fail else 0
            check = CheckFailed if fail else CheckPassed
            event = check(node=item.node, at=now, actor="t")
        elif item.started_at is None:
            event = StepStarted(node=item.node, at=now, actor="t")
        else:
            fail = failures < 2 and data.draw(st.booleans())
            failures = failures + 1 if fail else 0
            result = "failed" if fail else "ok"
            event = StepFinished(node=item.node, at=now, actor="t", result=result)
        transition = apply(definition, state, event)
        state = transition.state
        effects.extend(transition.effects)
    assert state.status == "waiting"
    assert state.current == loop_edge.source
    assert state.loop_counts[loop_key] == loop_edge.loop.cap
    action = loop_edge.loop.at_cap
    cap_effects = [e for e in effects if e.kind == action.effect]
    assert len(cap_effects) == 1
    effect = cap_effects[0]
    assert (effect.loop, effect.problem_type, effect.escalate_to, effect.attempts) == (
        loop_key,
        action.problem_type,
        action.escalate_to,
        loop_edge.loop.cap,
    )
    # The step closing the loop was never started beyond the cap.
    closing_runs = state.runs_of(loop_edge.source)
    assert sum(1 for r in closing_runs if r.status == "done") == loop_edge.loop.cap
    resumed = apply(definition, state, Resumed(at=now, actor="oncall"))
    assert resumed.state.status == "running" and resumed.state.loop_counts[loop_key] == 0
