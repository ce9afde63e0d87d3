"""Fixtures for the agent's tests: a configuration in tmp_path, a TUF repository, a server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import FakeDeviceServer, TufRepo

from fleetup.agent.config import AgentConfig


@pytest.fixture
def agent_config(tmp_path: Path) -> AgentConfig:
    data = tmp_path / "site" / "data"
    (data / "recipes").mkdir(parents=True)
    (data / "recipes" / "bread.txt").write_text("flour 500g\n")
    (data / "counters.csv").write_text("shift,count\n1,42\n")
    logs = tmp_path / "site" / "logs"
    logs.mkdir()
    (logs / "machine.log").write_bytes(bytes(range(256)) * 40)
    return AgentConfig(
        primary_url="http://127.0.0.1:9",
        fallback_url=None,
        serial="IPC-0001",
        data_dirs=(data, logs),
        install_root=tmp_path / "program",
        work_dir=tmp_path / "work",
        tuf_root=tmp_path / "root.json",
        credential_file=tmp_path / "work" / "credential.json",
        cloud_settings_file=tmp_path / "program" / "cloud-connection.json",
        enrollment_token="token-1",
        retries=2,
        backoff_s=0.0,
        timeout_s=5.0,
        upload_chunk_bytes=4096,
        hook_timeout_s=30.0,
        self_test_timeout_s=30.0,
    )


@pytest.fixture
def tuf_repo(tmp_path: Path) -> TufRepo:
    return TufRepo(tmp_path / "repo")


@pytest.fixture
def device_server(tuf_repo: TufRepo) -> Iterator[FakeDeviceServer]:
    with FakeDeviceServer(tuf_repo) as server:
        yield server
