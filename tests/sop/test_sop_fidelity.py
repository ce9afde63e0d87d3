"""The shipped definitions say what the operator's six Mermaid charts say, and no more.

Every node, label and edge of the original (``../shared/sop/upgrade-sop.zh-TW.md`` from the
repository root) must be in the definition of the same chart, and the definition's own nodes
and edges must be exactly the chart's. Data that the chart does not draw is allowed only as:
attributes (kinds, performers, budgets, outcomes, loop caps) and, in chart 2, the ✅ checks
borrowed from chart 3 (marked ``imported_from``), which the chart leaves to chart 3.
"""

from __future__ import annotations

import re

import pytest
from sop_helpers import ORIGINAL, Chart, mermaid_blocks, parse_flowchart

from fleetup.sop import BUILTIN_CHARTS, Definition, load_builtin


def _original_charts() -> list[Chart]:
    blocks = mermaid_blocks(ORIGINAL.read_text(encoding="utf-8"))
    assert len(blocks) == 6, f"expected six charts in {ORIGINAL}"
    return [parse_flowchart(block) for block in blocks]


ORIGINALS = dict(zip(BUILTIN_CHARTS, _original_charts(), strict=True))


def _own(
    definition: Definition,
) -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str], str | None]]:
    nodes = {
        n.id: ("decision" if n.kind == "decision" else "box", n.label.zh_tw)
        for n in definition.nodes
        if n.imported_from is None
    }
    edges = {
        (e.source, e.to): (e.label.zh_tw if e.label is not None and e.label_in_chart else None)
        for e in definition.edges
        if e.source in nodes and e.to in nodes
    }
    return nodes, edges


@pytest.mark.parametrize("chart_id", BUILTIN_CHARTS)
def test_every_original_node_has_its_label_and_shape(chart_id: str) -> None:
    nodes, _ = _own(load_builtin(chart_id))
    assert nodes == ORIGINALS[chart_id].nodes


@pytest.mark.parametrize("chart_id", BUILTIN_CHARTS)
def test_every_original_edge_has_its_label_and_no_edge_is_added(chart_id: str) -> None:
    _, edges = _own(load_builtin(chart_id))
    assert edges == ORIGINALS[chart_id].edges


@pytest.mark.parametrize("chart_id", BUILTIN_CHARTS)
def test_only_borrowed_checks_are_beyond_the_chart(chart_id: str) -> None:
    definition = load_builtin(chart_id)
    extra = [n for n in definition.nodes if n.id not in ORIGINALS[chart_id].nodes]
    assert all(n.imported_from is not None and n.kind == "check" for n in extra)
    for edge in definition.edges:
        if edge.to in {n.id for n in extra}:
            assert edge.kind == "contains"


def test_chart3_budgets_are_the_minutes_its_labels_state() -> None:
    chart3 = load_builtin("chart3")
    steps = [n for n in chart3.nodes if n.kind == "task"]
    for node in steps:
        minutes = re.search(r"<br/>(\d+)分鐘$", node.label.zh_tw)
        assert minutes is not None, node.id
        assert node.budget_minutes == float(minutes.group(1))
    budgets = {n.id: n.budget_minutes for n in steps}
    assert budgets == {"B": 10, "C": 15, "D": 10, "E": 5, "F": 15, "G": 10}
    end = chart3.node("H")
    assert end.total_budget_minutes == 65 == sum(n.budget_minutes or 0 for n in steps)


def test_chart3_every_step_contains_its_check() -> None:
    chart3 = load_builtin("chart3")
    for step in "BCDEFG":
        assert [n.id for n in chart3.contained(step)] == [f"{step}1"]
        assert chart3.node(f"{step}1").kind == "check"


def test_chart1_weeks_and_batches_match_the_labels() -> None:
    chart1 = load_builtin("chart1")
    for node in chart1.nodes:
        found = re.search(r"第(\d+)(?:-(\d+))?週", node.label.zh_tw)
        if found:
            assert node.weeks is not None, node.id
            first = int(found.group(1))
            assert (node.weeks.first, node.weeks.last) == (first, int(found.group(2) or first))
    phases = {p: chart1.node(p).weeks for p in "BCDEF"}
    assert [(w.first, w.last) for w in phases.values() if w] == [
        (1, 2),
        (3, 8),
        (9, 10),
        (11, 14),
        (15, 16),
    ]
    batches = {n: chart1.node(n).machines for n in ("E1", "E2", "E3")}
    assert batches == {"E1": 20, "E2": 40, "E3": 30}
    assert sum(m or 0 for m in batches.values()) == 90


def test_chart1_phases_follow_each_other_and_contain_their_activities() -> None:
    chart1 = load_builtin("chart1")
    then = [(e.source, e.to) for e in chart1.edges if e.kind == "then"]
    assert then == [("A", "B"), ("B", "C"), ("C", "D"), ("D", "E"), ("E", "F")]
    assert [n.id for n in chart1.contained("E")] == ["E1", "E2", "E3", "E4"]


def test_chart2_steps_borrow_chart3_budgets_and_checks() -> None:
    chart2 = load_builtin("chart2")
    expected = {
        "F": (10, "B1"),
        "J": (15, "C1"),
        "L": (10, "D1"),
        "N": (5, "E1"),
        "O": (15, "F1"),
        "Q": (10, "G1"),
    }
    for step, (minutes, check) in expected.items():
        assert chart2.node(step).budget_minutes == minutes
        assert [n.id for n in chart2.contained(step)] == [check]
    assert chart2.node("S").total_budget_minutes == 65
    assert [ref.id for ref in chart2.composed_from] == ["chart3"]
    assert chart2.effective_hash != chart2.content_hash


def test_chart2_loops_are_capped_as_the_operator_asked() -> None:
    loops = {e.key: e.loop for e in load_builtin("chart2").loops}
    reinstall = loops["M->J"]
    assert reinstall is not None and reinstall.cap == 3
    assert reinstall.at_cap.effect == "open_problem"
    assert reinstall.at_cap.problem_type == "software"
    troubleshoot = loops["R->O"]
    assert troubleshoot is not None and troubleshoot.cap == 3
    assert troubleshoot.at_cap.effect == "open_problem"


def test_chart4_problem_types_are_the_outcomes_of_b() -> None:
    chart4 = load_builtin("chart4")
    assert chart4.node("B").outcomes == ("network", "hardware", "software", "user")
    targets = {e.outcome: e.to for e in chart4.out_edges("B")}
    assert targets == {"network": "C", "hardware": "D", "software": "E", "user": "F"}


def test_chart6_has_two_entry_points() -> None:
    assert load_builtin("chart6").starts == ("A", "I")


def test_every_label_has_both_languages_with_the_same_line_count() -> None:
    for chart_id in BUILTIN_CHARTS:
        for node in load_builtin(chart_id).nodes:
            assert len(node.label.lines("zh-TW")) == len(node.label.lines("en")), node.id
