"""``fleetup sop show`` and ``fleetup sop check`` through Typer's test runner."""

from __future__ import annotations

from pathlib import Path

from sop_helpers import parse_flowchart
from typer.testing import CliRunner

from fleetup.sop import load_builtin
from fleetup.sop.cli import app

runner = CliRunner()


def test_show_prints_chart2_in_chinese_by_default() -> None:
    result = runner.invoke(app, ["show", "2"])
    assert result.exit_code == 0, result.output
    chart = parse_flowchart(result.output)
    assert chart.nodes["K"] == ("decision", "安裝成功?")
    assert chart.edges[("P", "R")] == "否"


def test_show_prints_english_labels() -> None:
    result = runner.invoke(app, ["show", "5", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert parse_flowchart(result.output).edges[("E", "F")] == "≥8 points"


def test_show_refuses_an_unknown_chart_or_language() -> None:
    assert runner.invoke(app, ["show", "7"]).exit_code != 0
    result = runner.invoke(app, ["show", "1", "--lang", "fr"])
    assert result.exit_code != 0
    assert "zh-TW, en" in result.output


def test_check_summarises_a_sound_file() -> None:
    result = runner.invoke(app, ["check", load_builtin("chart2").source])
    assert result.exit_code == 0, result.output
    assert "chart2 1.0: OK" in result.output
    assert "M->J cap 3" in result.output


def test_check_lists_problems_in_a_table_and_exits_1(tmp_path: Path) -> None:
    source = Path(load_builtin("chart4").source).read_text(encoding="utf-8")
    broken = source.replace("en: Hardware diagnosis", "en: ''").replace("{from: H, to: I}", "")
    path = tmp_path / "chart4.yaml"
    path.write_text(broken, encoding="utf-8")
    result = runner.invoke(app, ["check", str(path)], terminal_width=200)
    assert result.exit_code == 1
    assert "D1" in result.output and "label.en" in result.output
    assert "problem(s)" in result.output


def test_check_reports_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "none.yaml")], terminal_width=200)
    assert result.exit_code == 1
    assert "cannot read" in result.output
