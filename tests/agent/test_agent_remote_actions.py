"""The agent's remote actions against a small in-memory server: restore safety, resumption,
reinstall."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_helpers import make_package

from fleetup.agent import backup, install
from fleetup.agent.config import AgentConfig
from fleetup.agent.journal import Journal, State
from fleetup.agent.runner import Outcome, UpgradeRunner
from fleetup.agent.transport import Transport


class Killed(BaseException):
    """Stands for the power going off: nothing in the agent catches it."""


class _CutStream(httpx.SyncByteStream):
    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset")


class BlobServer:
    """``/device/v1`` blobs (with ``Range``) and step events, in memory."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.events: list[dict[str, Any]] = []
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/events"):
            self.events.append(json.loads(request.content))
            return httpx.Response(200, json={"accepted": True, "duplicate": False})
        match = re.fullmatch(r"/device/v1/blobs/([0-9a-f]{64})", path)
        if match and match.group(1) in self.blobs:
            data = self.blobs[match.group(1)]
            self.ranges.append(request.headers.get("range"))
            start = int(re.sub(r"\D", "", request.headers.get("range", "")) or 0)
            body = data[start:]
            status = 206 if start else 200
            if self.cut_after is not None:
                cut, self.cut_after = self.cut_after, None
                return httpx.Response(status, stream=_CutStream(body[:cut]))
            return httpx.Response(status, content=body)
        return httpx.Response(404, json={"detail": "not found"})

    def steps(self) -> list[tuple[str, str, int]]:
        return [(e["step"], e["status"], e["evidence"]["attempt"]) for e in self.events]


def _program(config: AgentConfig) -> None:
    root = config.install_root
    for version in ("1.0.0", "2.0.0"):
        folder = root / "versions" / version
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"version": version}))
    (root / "current").write_text("2.0.0\n")
    (root / "previous").write_text("1.0.0\n")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def server() -> BlobServer:
    return BlobServer()


def _runner(config: AgentConfig, server: BlobServer) -> UpgradeRunner:
    transport = Transport(
        primary_url="http://fleetup.test",
        credential="cred",
        http=httpx.MockTransport(server),
        retries=1,
        backoff_s=0,
    )
    return UpgradeRunner(config, transport, device_id="dev-1")


def _restore_action(
    config: AgentConfig, server: BlobServer, *, serve: bytes | None = None
) -> tuple[dict[str, Any], dict[str, dict[str, bytes]]]:
    """Back up the data folders, then change them; the action restores the backup."""
    archive = backup.create(config.data_dirs, config.work_dir / "elsewhere" / "b.tar.zst")
    saved = {str(d): _files(d) for d in config.data_dirs}
    server.blobs[archive.sha256] = serve if serve is not None else archive.path.read_bytes()
    for folder in config.data_dirs:
        for file in folder.rglob("*"):
            if file.is_file():
                file.write_bytes(b"changed after the backup")
        (folder / "new-file.txt").write_bytes(b"new")
    action = {
        "id": "act-9",
        "kind": "restore",
        "install_window": None,
        "params": {
            "program": "previous",
            "backup": {
                "backup_id": "bk-3",
                "sha256": archive.sha256,
                "size": archive.size,
                "manifest": archive.manifest,
            },
        },
    }
    return action, saved


def test_a_restore_cut_by_a_power_loss_resumes_and_ends_with_the_backup(
    agent_config: AgentConfig, server: BlobServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _program(agent_config)
    action, saved = _restore_action(agent_config, server)

    def dies_after_the_first_swap(folder: Path) -> None:
        raise Killed

    # The first folder is swapped in, the second not yet, when the power goes.
    monkeypatch.setattr(backup, "fsync_dir", dies_after_the_first_swap)
    with pytest.raises(Killed):
        _runner(agent_config, server).run_action(action)
    assert Journal.open(agent_config.journal_file).state is State.RESTORE
    first, second = agent_config.data_dirs
    assert _files(first) == saved[str(first)]
    assert (second / "new-file.txt").exists()
    monkeypatch.undo()

    again = _runner(agent_config, server)
    assert again.resume() is Outcome.DONE
    for folder in agent_config.data_dirs:
        assert _files(folder) == saved[str(folder)]
    kept = sorted(first.parent.glob("*.before-restore-*"))
    assert [p.name.split(".before-restore-")[0] for p in kept] == ["data", "logs"]
    assert all((p / "new-file.txt").read_bytes() == b"new" for p in kept)  # nothing lost
    assert (agent_config.install_root / "current").read_text().strip() == "1.0.0"
    assert server.steps() == [
        ("restore", "started", 1),
        ("restore", "started", 2),
        ("restore", "succeeded", 2),
    ]


def test_a_cut_backup_download_resumes_from_where_it_stopped(
    agent_config: AgentConfig, server: BlobServer
) -> None:
    _program(agent_config)
    action, saved = _restore_action(agent_config, server)
    server.cut_after = 100
    runner = _runner(agent_config, server)
    assert runner.run_action(action) is Outcome.PAUSED
    assert runner.resume() is Outcome.DONE
    assert server.ranges == [None, "bytes=100-"]
    assert _files(agent_config.data_dirs[0]) == saved[str(agent_config.data_dirs[0])]


def test_a_restore_from_a_tampered_blob_fails_without_touching_the_data(
    agent_config: AgentConfig, server: BlobServer
) -> None:
    _program(agent_config)
    action, _ = _restore_action(agent_config, server, serve=b"not the backup at all")
    before = {str(d): _files(d) for d in agent_config.data_dirs}
    assert _runner(agent_config, server).run_action(action) is Outcome.FAILED
    assert {str(d): _files(d) for d in agent_config.data_dirs} == before
    assert (agent_config.install_root / "current").read_text().strip() == "2.0.0"
    failed = server.events[-1]
    assert (failed["step"], failed["status"]) == ("restore", "failed")
    assert failed["evidence"]["error_kind"] == "BackupCorrupt"


def test_a_reinstall_unpacks_the_same_version_afresh(tmp_path: Path) -> None:
    package = tmp_path / "ipc-2.0.0.tar.gz"
    make_package(package, version="2.0.0", files={"bin/run": "good"})
    root = tmp_path / "program"
    folder = install.unpack(package, root, "2.0.0")
    (folder / "bin" / "run").write_text("damaged on site")
    (folder / "junk").write_text("left over")
    assert install.unpack(package, root, "2.0.0") == folder
    assert (folder / "bin" / "run").read_text() == "damaged on site"
    install.unpack(package, root, "2.0.0", fresh=True)
    assert (folder / "bin" / "run").read_text() == "good"
    assert not (folder / "junk").exists()
    assert sorted(p.name for p in (root / "versions").iterdir()) == ["2.0.0"]
