"""``fleetup simulate`` runs in-process and prints the final counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetup.cli import app


def test_simulate_prints_the_wave_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETUP_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("FLEETUP_SECRET_KEY", "test-secret-key-simulator")
    outcome = CliRunner().invoke(app, ["simulate", "--machines", "20", "--seed", "1"])
    assert outcome.exit_code == 0, outcome.output
    assert "Waves" in outcome.output
    for wave in ("D1", "D2", "E1", "E2", "E3"):
        assert wave in outcome.output
    assert "20 machines" in outcome.output
