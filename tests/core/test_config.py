"""Settings come from defaults, a TOML file and FLEETUP_* variables, in that order of weight."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fleetup.core.config import Settings


def test_defaults_need_nothing_and_live_under_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLEETUP_CONFIG", raising=False)
    settings = Settings()
    assert settings.effective_database_url == "sqlite:///var/fleetup.db"
    assert settings.effective_blob_dir == Path("var/blobs")
    key = settings.effective_secret_key()
    assert key == (tmp_path / "var" / "secret_key").read_text()
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert Settings().effective_secret_key() == key


def test_environment_wins_over_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    config.write_text('port = 9000\ndefault_language = "en"\n')
    monkeypatch.setenv("FLEETUP_CONFIG", str(config))
    monkeypatch.setenv("FLEETUP_PORT", "9100")
    settings = Settings()
    assert settings.port == 9100
    assert settings.default_language == "en"


def test_a_bad_value_is_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('default_language = "fr"\nprot = 1\n')
    monkeypatch.setenv("FLEETUP_CONFIG", str(config))
    with pytest.raises(ValidationError) as caught:
        Settings()
    text = str(caught.value)
    assert "default_language" in text
    assert "prot" in text
