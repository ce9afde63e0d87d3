"""``fleetup import machines``: a summary on success, a row/column table and exit 1 on refusal."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from fleetup.api.deps import Server
from fleetup.cli import app
from fleetup.core import audit
from fleetup.fleet.models import Customer, Machine

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "inventory.csv"
BAD = REPO / "examples" / "inventory-bad.csv"


def counts(server_parts: Server) -> tuple[int, int, int]:
    with server_parts.sessions() as session:
        return (
            session.scalar(select(func.count(Machine.id))) or 0,
            session.scalar(select(func.count(Customer.id))) or 0,
            audit.count(session),
        )


def test_import_prints_a_summary_and_a_second_import_changes_nothing(
    runner: tuple[CliRunner, dict[str, str]], server_parts: Server
) -> None:
    cli, env = runner
    first = cli.invoke(app, ["import", "machines", str(SAMPLE), "--lang", "en"], env=env)
    assert first.exit_code == 0, first.output
    assert "Imported inventory.csv: 90 rows" in first.stdout
    machines, customers, events = counts(server_parts)
    assert machines == 90 and customers >= 15

    second = cli.invoke(app, ["import", "machines", str(SAMPLE), "--lang", "zh-TW"], env=env)
    assert second.exit_code == 0, second.output
    assert "已匯入 inventory.csv：共 90 列" in second.stdout
    machine_line = next(line for line in second.stdout.splitlines() if "機台" in line)
    assert [cell.strip() for cell in machine_line.split("│")[2:5]] == ["0", "0", "90"]
    assert counts(server_parts) == (machines, customers, events)


def test_bad_file_exits_1_with_a_table_of_rows_in_english_and_writes_nothing(
    runner: tuple[CliRunner, dict[str, str]], server_parts: Server
) -> None:
    cli, env = runner
    before = counts(server_parts)

    result = cli.invoke(app, ["import", "machines", str(BAD), "--lang", "en"], env=env)

    assert result.exit_code == 1
    table = [line for line in result.stderr.splitlines() if line.startswith("│")]
    cells = [[cell.strip() for cell in line.split("│")[1:4]] for line in table]
    assert [(r, c) for r, c, _ in cells] == [("3", "serial"), ("7", "site_code"), ("8", "serial")]
    assert cells[0][2] == "A value is required in serial."
    assert "Unknown site WG9" in cells[1][2]
    assert "Nothing was imported" in result.stderr
    assert counts(server_parts) == before


def test_bad_file_table_in_traditional_chinese(
    runner: tuple[CliRunner, dict[str, str]], server_parts: Server
) -> None:
    cli, env = runner
    result = cli.invoke(app, ["import", "machines", str(BAD), "--lang", "zh-TW"], env=env)

    assert result.exit_code == 1
    assert "檔案未匯入" in result.stderr
    assert "serial 為必填欄位。" in result.stderr
    assert "未知的場域" in result.stderr and "也出現在第 2 列" in result.stderr
    assert counts(server_parts)[0] == 0


def test_dry_run_reports_what_would_change_and_writes_nothing(
    runner: tuple[CliRunner, dict[str, str]], server_parts: Server
) -> None:
    cli, env = runner
    result = cli.invoke(
        app, ["import", "machines", str(SAMPLE), "--dry-run", "--lang", "en"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "Dry run of inventory.csv: 90 rows checked" in result.stdout
    assert "nothing was written" in result.stdout
    assert counts(server_parts) == (0, 0, 0)


def test_unknown_language_is_a_usage_error(runner: tuple[CliRunner, dict[str, str]]) -> None:
    cli, env = runner
    result = cli.invoke(app, ["import", "machines", str(SAMPLE), "--lang", "fr"], env=env)
    assert result.exit_code == 2
    assert "zh-TW" in result.stderr
