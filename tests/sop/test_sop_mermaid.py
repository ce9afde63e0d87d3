"""Mermaid export: charts re-parse into the same graph; instances show where they stand."""

from __future__ import annotations

import pytest
from sop_helpers import T0, Script, parse_flowchart

from fleetup.sop import BUILTIN_CHARTS, Definition, load_builtin, start
from fleetup.sop.mermaid import definition_to_mermaid, instance_to_mermaid
from fleetup.sop.model import Lang


def _expected(
    definition: Definition, lang: Lang
) -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str], str | None]]:
    nodes = {
        n.id: ("decision" if n.kind == "decision" else "box", n.label.in_lang(lang))
        for n in definition.nodes
        if n.imported_from is None
    }
    edges = {
        (e.source, e.to): e.label.in_lang(lang) if e.label and e.label_in_chart else None
        for e in definition.edges
        if e.source in nodes and e.to in nodes
    }
    return nodes, edges


@pytest.mark.parametrize("chart_id", BUILTIN_CHARTS)
@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_export_reparses_into_the_same_graph(chart_id: str, lang: Lang) -> None:
    definition = load_builtin(chart_id)
    text = definition_to_mermaid(definition, lang)
    assert text.startswith("graph TD\n")
    chart = parse_flowchart(text)
    assert (chart.nodes, chart.edges) == _expected(definition, lang)


def test_chart2_in_chinese_uses_the_originals_notation() -> None:
    text = definition_to_mermaid(load_builtin("chart2"), "zh-TW")
    assert "    B{是否為現有客戶?}" in text
    assert "    K -->|否| M" in text
    assert "    M --> J" in text


def test_chart3_keeps_its_line_breaks() -> None:
    text = definition_to_mermaid(load_builtin("chart3"), "zh-TW")
    assert "    B[現場資料備份<br/>10分鐘]" in text
    assert "    H[轉移完成<br/>總計65分鐘]" in text


def test_borrowed_checks_are_drawn_only_when_asked() -> None:
    chart2 = load_builtin("chart2")
    assert "B1" not in parse_flowchart(definition_to_mermaid(chart2)).nodes
    with_checks = parse_flowchart(definition_to_mermaid(chart2, include_imported=True))
    assert with_checks.nodes["B1"] == ("box", "✅ 資料完整性確認")
    assert ("F", "B1") in with_checks.edges


def test_labels_that_would_break_mermaid_are_quoted() -> None:
    chart4 = load_builtin("chart4")
    odd = chart4.model_copy(deep=True)
    node = odd.nodes[2]
    relabelled = node.model_copy(
        update={"label": node.label.model_copy(update={"en": 'Net (4G) "x"'})}
    )
    changed = Definition(
        id=odd.id,
        version=odd.version,
        title=odd.title,
        nodes=(*odd.nodes[:2], relabelled, *odd.nodes[3:]),
        edges=odd.edges,
    )
    text = definition_to_mermaid(changed, "en")
    assert '    C["Net (4G) #quot;x#quot;"]' in text
    assert parse_flowchart(text).nodes["C"] == ("box", 'Net (4G) "x"')


def test_instance_export_highlights_current_visited_and_followed_edges() -> None:
    definition = load_builtin("chart2")
    script = Script(definition, start(definition, at=T0))
    script.decide("B", "yes")
    script.step("C")
    script.decide("E", "yes")
    text = instance_to_mermaid(definition, script.state, "en")
    assert "classDef current" in text and "classDef visited" in text
    assert "    class A,B,C,E visited" in text
    assert "    class F current" in text
    edges = list(parse_flowchart(definition_to_mermaid(definition)).edges)
    followed = [edges.index(pair) for pair in [("A", "B"), ("B", "C"), ("C", "E"), ("E", "F")]]
    assert f"    linkStyle {','.join(map(str, followed))} " in text
    # The styled chart is still the same chart.
    assert (
        parse_flowchart(text).edges
        == parse_flowchart(definition_to_mermaid(definition, "en")).edges
    )


def test_instance_export_marks_a_waiting_instance() -> None:
    definition = load_builtin("chart2")
    script = Script(definition, start(definition, at=T0))
    script.decide("B", "yes")
    script.step("C")
    script.decide("E", "yes")
    script.step("F", 5, ("B1",))
    script.step("I")
    for _ in range(3):
        script.step("J", 5, ("C1",))
        script.decide("K", "no")
        script.step("M")
    script.step("J", 5, ("C1",))
    script.decide("K", "no")
    text = instance_to_mermaid(definition, script.state)
    assert "    class M waiting" in text
