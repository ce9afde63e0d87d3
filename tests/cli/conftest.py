"""What the CLI's tests share: a runner with the environment a command reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetup.cli import common


@pytest.fixture
def runner(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[CliRunner, dict[str, str]]:
    monkeypatch.chdir(tmp_path)  # no stray fleetup.toml is read
    # Rich fixes a console's width when it is made if COLUMNS is set then (pytest-xdist's
    # workers set 80), so the consoles get the width the commands' environment asks for.
    for shown in (common.console, common.errors):
        monkeypatch.setattr(shown, "_width", 200)
    env = {
        "FLEETUP_DATABASE_URL": database_url,
        "FLEETUP_VAR_DIR": str(tmp_path / "var"),
        "FLEETUP_SECRET_KEY": "test-secret-key-not-for-production",
        "FLEETUP_CONFIG": "",
        "COLUMNS": "200",  # Rich reads it, so tables are not wrapped mid-sentence
    }
    return CliRunner(), env
