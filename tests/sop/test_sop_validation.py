"""Definitions that break a rule are refused with every problem, each naming file and node."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetup.sop import (
    DefinitionError,
    effective_definitions,
    load_builtin,
    load_definition,
    parse_definition,
)


def _label(zh: str, en: str) -> dict[str, str]:
    return {"zh-TW": zh, "en": en}


BASE: dict[str, Any] = {
    "id": "mini",
    "version": "1",
    "title": _label("小流程", "Mini flow"),
    "nodes": [
        {"id": "A", "kind": "start", "label": _label("開始", "Start")},
        {
            "id": "B",
            "kind": "task",
            "performer": "technician",
            "budget_minutes": 5,
            "label": _label("安裝", "Install"),
        },
        {
            "id": "C",
            "kind": "decision",
            "performer": "technician",
            "outcomes": ["ok", "retry"],
            "label": _label("成功?", "OK?"),
        },
        {"id": "D", "kind": "task", "performer": "agent", "label": _label("重試", "Retry")},
        {"id": "E", "kind": "end", "label": _label("完成", "Done")},
    ],
    "edges": [
        {"from": "A", "to": "B"},
        {"from": "B", "to": "C"},
        {"from": "C", "to": "E", "outcome": "ok", "label": _label("是", "yes")},
        {"from": "C", "to": "D", "outcome": "retry", "label": _label("否", "no")},
        {"from": "D", "to": "B", "loop": {"cap": 2, "at_cap": {"effect": "open_incident"}}},
    ],
}


def _write(tmp_path: Path, data: dict[str, Any], name: str = "mini.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _refusal(tmp_path: Path, data: dict[str, Any]) -> DefinitionError:
    path = _write(tmp_path, data)
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    for problem in caught.value.problems:
        assert problem.file == str(path)
    return caught.value


def _node(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in data["nodes"] if n["id"] == node_id)
    return found


def _messages_for(error: DefinitionError, node: str | None) -> list[str]:
    return [p.message for p in error.problems if p.node == node]


def test_base_definition_is_accepted_and_hashed(tmp_path: Path) -> None:
    definition = load_definition(_write(tmp_path, BASE))
    assert definition.id == "mini"
    assert len(definition.content_hash) == 64
    assert definition.effective_hash == definition.content_hash


def test_unreachable_node_is_refused_naming_it(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["nodes"].append(
        {"id": "X", "kind": "task", "performer": "agent", "label": _label("孤兒", "Orphan")}
    )
    data["edges"].append({"from": "X", "to": "E"})
    error = _refusal(tmp_path, data)
    assert any("cannot be reached" in m for m in _messages_for(error, "X"))


def test_unmapped_outcome_is_refused_naming_the_decision(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    _node(data, "C")["outcomes"] = ["ok", "retry", "skip"]
    error = _refusal(tmp_path, data)
    assert any("'skip' is not mapped" in m for m in _messages_for(error, "C"))


def test_decision_edge_without_outcome_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del data["edges"][3]["outcome"]
    error = _refusal(tmp_path, data)
    messages = _messages_for(error, "C")
    assert any("C->D" in m and "names no outcome" in m for m in messages)
    assert any("'retry' is not mapped" in m for m in messages)


def test_dead_end_loop_without_an_end_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["nodes"].append(
        {"id": "F", "kind": "task", "performer": "agent", "label": _label("空轉", "Spin")}
    )
    data["edges"][4] = {"from": "D", "to": "F"}
    data["edges"].append({"from": "F", "to": "D"})
    error = _refusal(tmp_path, data)
    for node in ("D", "F"):
        assert any("no end node can be reached" in m for m in _messages_for(error, node))


def test_duplicate_id_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["nodes"].append(copy.deepcopy(_node(data, "D")))
    error = _refusal(tmp_path, data)
    assert any("used by 2 nodes" in m for m in _messages_for(error, "D"))


def test_missing_english_label_is_refused_naming_the_node(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del _node(data, "B")["label"]["en"]
    error = _refusal(tmp_path, data)
    assert any(m.startswith("label.en:") for m in _messages_for(error, "B"))


def test_empty_chinese_label_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    _node(data, "D")["label"]["zh-TW"] = ""
    error = _refusal(tmp_path, data)
    assert any(m.startswith("label.zh-TW:") for m in _messages_for(error, "D"))


def test_negative_budget_is_refused_naming_the_node(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    _node(data, "B")["budget_minutes"] = -5
    error = _refusal(tmp_path, data)
    assert any(m.startswith("budget_minutes:") for m in _messages_for(error, "B"))


def test_loop_cap_below_one_is_refused_naming_the_edge(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["edges"][4]["loop"]["cap"] = 0
    error = _refusal(tmp_path, data)
    assert any("D->B" in m and "loop.cap" in m for m in _messages_for(error, "D"))


def test_edge_to_missing_node_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["edges"][1] = {"from": "B", "to": "Z"}
    error = _refusal(tmp_path, data)
    assert any("'Z', which does not exist" in m for m in _messages_for(error, "Z"))


def test_task_without_performer_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del _node(data, "D")["performer"]
    error = _refusal(tmp_path, data)
    assert any("needs a performer" in m for m in _messages_for(error, "D"))


def test_unknown_field_is_named(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    _node(data, "B")["budget"] = 5
    error = _refusal(tmp_path, data)
    assert any(m.startswith("budget:") for m in _messages_for(error, "B"))


def test_unquoted_yes_outcome_is_refused_rather_than_read_as_true(tmp_path: Path) -> None:
    text = _write(tmp_path, BASE).read_text(encoding="utf-8").replace("- ok", "- yes", 1)
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text.encode(), source="mini.yaml")
    assert any(p.node == "C" and "outcomes" in p.message for p in caught.value.problems)


def test_all_problems_are_reported_together_in_a_readable_message(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    _node(data, "B")["budget_minutes"] = -1
    del _node(data, "D")["label"]["en"]
    error = _refusal(tmp_path, data)
    assert {p.node for p in error.problems} >= {"B", "D"}
    text = str(error)
    assert text.startswith("SOP definition refused (2 problems):")
    assert "node B: budget_minutes" in text and "node D: label.en" in text
    assert len(text.splitlines()) == 3


def test_invalid_yaml_names_the_file_and_line() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(b"id: x\nnodes: [\n", source="broken.yaml")
    problem = caught.value.problems[0]
    assert problem.file == "broken.yaml" and "not valid YAML (line" in problem.message


def test_missing_file_is_a_definition_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read"):
        load_definition(tmp_path / "absent.yaml")


def test_timing_reference_to_missing_chart_is_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del _node(data, "B")["budget_minutes"]
    _node(data, "B")["timing"] = {"chart": "chart9", "node": "B"}
    error = _refusal(tmp_path, data)
    assert any("chart 'chart9'" in m for m in _messages_for(error, "B"))


def test_timing_and_own_budget_together_are_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    _node(data, "B")["timing"] = {"chart": "chart3", "node": "B"}
    error = _refusal(tmp_path, data)
    assert any("keep one" in m for m in _messages_for(error, "B"))


def test_timing_borrows_budget_and_check_from_the_shipped_chart3(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    del _node(data, "B")["budget_minutes"]
    _node(data, "B")["timing"] = {"chart": "chart3", "node": "C"}
    definition = load_definition(_write(tmp_path, data))
    assert definition.node("B").budget_minutes == 15
    assert [n.id for n in definition.contained("B")] == ["C1"]


def _chart3_with_backup_budget(tmp_path: Path, minutes: int) -> Path:
    source = Path(load_builtin("chart3").source).read_text(encoding="utf-8")
    changed = source.replace(
        "budget_minutes: 10,\n     label: {zh-TW: 現場資料備份",
        f"budget_minutes: {minutes},\n     label: {{zh-TW: 現場資料備份",
    )
    assert changed != source
    path = tmp_path / "chart3.yaml"
    path.write_text(changed.replace('version: "1.0"', 'version: "1.1"'), encoding="utf-8")
    return path


def test_replacing_chart3_changes_chart2_budgets_and_hash(tmp_path: Path) -> None:
    path = _chart3_with_backup_budget(tmp_path, 20)
    effective = effective_definitions({"chart3": path})
    assert effective["chart3"].node("B").budget_minutes == 20
    assert effective["chart2"].node("F").budget_minutes == 20
    assert effective["chart2"].composed_from[0].version == "1.1"
    assert effective["chart2"].effective_hash != load_builtin("chart2").effective_hash
    assert effective["chart4"] == load_builtin("chart4")


def test_replacement_must_declare_the_id_it_replaces(tmp_path: Path) -> None:
    path = _chart3_with_backup_budget(tmp_path, 20)
    with pytest.raises(DefinitionError) as caught:
        effective_definitions({"chart5": path})
    assert "configured to replace 'chart5'" in str(caught.value)


def test_replacement_problems_from_several_files_are_reported_together(tmp_path: Path) -> None:
    bad = copy.deepcopy(BASE)
    bad["id"] = "chart4"
    _node(bad, "B")["budget_minutes"] = -1
    with pytest.raises(DefinitionError) as caught:
        effective_definitions({"chart4": _write(tmp_path, bad), "chart5": tmp_path / "no.yaml"})
    files = {p.file for p in caught.value.problems}
    assert files == {str(tmp_path / "mini.yaml"), str(tmp_path / "no.yaml")}


def test_no_overrides_gives_the_shipped_charts() -> None:
    assert effective_definitions(None).keys() == {f"chart{i}" for i in range(1, 7)}
