"""Bad configuration gives one clear error naming the field, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetup.agent import cli
from fleetup.agent.config import load
from fleetup.agent.errors import ConfigError

GOOD = """
[server]
primary_url = "https://fleetup.example.com/"
fallback_url = "https://fleetup-4g.example.com"

[device]
serial = "IPC-0001"
enrollment_token = "tok"

[paths]
data_dirs = ["data", "/srv/logs"]
install_root = "program"
work_dir = "work"
tuf_root = "root.json"

[agent]
heartbeat_interval_s = 30
state_loop_cap = 4
"""


def test_good_config_resolves_relative_paths_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD)
    config = load(path)
    assert config.primary_url == "https://fleetup.example.com"
    assert config.data_dirs == (tmp_path / "data", Path("/srv/logs"))
    assert config.credential_file == tmp_path / "work" / "credential.json"
    assert config.state_loop_cap == 4
    assert config.heartbeat_interval_s == 30.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            ('primary_url = "https://fleetup.example.com/"', 'primary_url = "ftp://x"'),
            "server.primary_url",
        ),
        (('primary_url = "https://fleetup.example.com/"', ""), "server.primary_url"),
        (("state_loop_cap = 4", "state_loop_cap = 0"), "agent.state_loop_cap"),
        (
            ("heartbeat_interval_s = 30", 'heartbeat_interval_s = "often"'),
            "agent.heartbeat_interval_s",
        ),
        (('data_dirs = ["data", "/srv/logs"]', "data_dirs = []"), "paths.data_dirs"),
        (('serial = "IPC-0001"', 'serail = "IPC-0001"'), "device.serail"),
        (("[agent]", "[agnet]"), "agnet"),
    ],
)
def test_bad_field_is_named(tmp_path: Path, change: tuple[str, str], field: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.field == field


def test_cli_prints_the_field_and_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(GOOD.replace("state_loop_cap = 4", "state_loop_cap = -1"))
    assert cli.main(["status", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "agent.state_loop_cap" in err
    assert "Traceback" not in err
    assert cli.main(["status", "--config", str(tmp_path / "missing.toml")]) == 2
    path.write_text("[server\n")
    assert cli.main(["once", "--config", str(path)]) == 2
