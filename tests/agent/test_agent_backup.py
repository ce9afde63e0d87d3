"""Backups round-trip with verification, corruption is caught, uploads resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
import zstandard

from fleetup.agent import backup
from fleetup.agent.config import AgentConfig
from fleetup.agent.errors import BackupCorrupt, ServerUnreachable
from fleetup.agent.transport import Transport


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_backup_round_trip_verifies_every_file_and_restores_them(
    agent_config: AgentConfig, tmp_path: Path
) -> None:
    data, logs = agent_config.data_dirs
    (data / "empty-folder").mkdir()
    archive = backup.create(agent_config.data_dirs, tmp_path / "b" / "one.tar.zst")

    assert set(archive.manifest["files"]) == {
        "d0/counters.csv",
        "d0/recipes/bread.txt",
        "d1/machine.log",
    }
    assert (
        archive.manifest["files"]["d0/counters.csv"]["sha256"]
        == hashlib.sha256((data / "counters.csv").read_bytes()).hexdigest()
    )
    assert backup.verify(archive.path, archive.manifest) == 3
    assert json.loads(archive.manifest_path.read_text()) == archive.manifest
    with archive.path.open("rb") as raw:
        assert raw.read(4) == b"\x28\xb5\x2f\xfd"  # a zstandard frame

    restored = tmp_path / "restored"
    backup.restore(archive.path, restored)
    assert _tree(restored / "d0") == _tree(data)
    assert _tree(restored / "d1") == _tree(logs)
    assert (restored / "d0" / "empty-folder").is_dir()


def test_corrupted_archive_is_detected(agent_config: AgentConfig, tmp_path: Path) -> None:
    archive = backup.create(agent_config.data_dirs, tmp_path / "b.tar.zst")
    raw = bytearray(archive.path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    archive.path.write_bytes(bytes(raw))
    with pytest.raises(BackupCorrupt):
        backup.verify(archive.path, archive.manifest)


def test_archive_whose_file_differs_from_the_manifest_is_corrupt(
    agent_config: AgentConfig, tmp_path: Path
) -> None:
    archive = backup.create(agent_config.data_dirs, tmp_path / "b.tar.zst")
    manifest = json.loads(json.dumps(archive.manifest))
    manifest["files"]["d0/counters.csv"]["sha256"] = "0" * 64
    with pytest.raises(BackupCorrupt, match=r"counters\.csv"):
        backup.verify(archive.path, manifest)
    manifest = json.loads(json.dumps(archive.manifest))
    manifest["files"]["d0/lost.txt"] = {"sha256": "0" * 64, "size": 1}
    with pytest.raises(BackupCorrupt, match=r"missing|manifest differs"):
        backup.verify(archive.path, manifest)


def test_truncated_archive_is_corrupt(agent_config: AgentConfig, tmp_path: Path) -> None:
    archive = backup.create(agent_config.data_dirs, tmp_path / "b.tar.zst")
    archive.path.write_bytes(archive.path.read_bytes()[:-200])
    with pytest.raises(BackupCorrupt):
        backup.verify(archive.path, archive.manifest)


def test_restore_in_place_keeps_todays_data_aside(
    agent_config: AgentConfig, tmp_path: Path
) -> None:
    data = agent_config.data_dirs[0]
    before = _tree(data)
    archive = backup.create(agent_config.data_dirs, tmp_path / "b.tar.zst")
    (data / "counters.csv").write_text("migrated\n")
    (data / "new.txt").write_text("new\n")

    restored = backup.restore_in_place(archive.path, "20260101T000000Z")
    assert restored == list(agent_config.data_dirs)
    assert _tree(data) == before
    aside = data.with_name("data.before-restore-20260101T000000Z")
    assert (aside / "counters.csv").read_text() == "migrated\n"


class _BackupServer:
    """The backup endpoints over httpx.MockTransport, with a network that can go down."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.meta: dict[str, object] = {}
        self.puts: list[tuple[int, int]] = []
        self.down_after_puts: int | None = None
        self.completed = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/device/v1/backups":
            self.meta = json.loads(request.content)
            return httpx.Response(200, json={"backup_id": "bk-1", "received": 0})
        if request.method == "GET" and path == "/device/v1/backups/bk-1":
            return httpx.Response(200, json={"received": len(self.data), "complete": False})
        if request.method == "PUT" and path == "/device/v1/backups/bk-1":
            if self.down_after_puts is not None and len(self.puts) >= self.down_after_puts:
                raise httpx.ConnectError("network down", request=request)
            offset = int(request.url.params["offset"])
            assert offset == len(self.data)
            self.puts.append((offset, len(request.content)))
            self.data += request.content
            return httpx.Response(200, json={"received": len(self.data)})
        if request.method == "POST" and path == "/device/v1/backups/bk-1/complete":
            ok = hashlib.sha256(self.data).hexdigest() == self.meta["sha256"]
            self.completed = ok
            return httpx.Response(200 if ok else 422, json={"complete": ok})
        return httpx.Response(404)


def test_upload_resumes_from_what_the_server_has_without_resending(
    agent_config: AgentConfig, tmp_path: Path
) -> None:
    archive = backup.create(agent_config.data_dirs, tmp_path / "b.tar.zst")
    server = _BackupServer()
    server.down_after_puts = 1
    transport = Transport(
        primary_url="http://fleetup.test", http=httpx.MockTransport(server), retries=2, backoff_s=0
    )
    ids: list[str] = []
    with pytest.raises(ServerUnreachable):
        backup.upload(
            transport, archive, action_id="act-1", chunk_bytes=1024, on_backup_id=ids.append
        )
    assert ids == ["bk-1"]
    assert len(server.data) == 1024

    server.down_after_puts = None
    result = backup.upload(
        transport, archive, action_id="act-1", chunk_bytes=1024, backup_id="bk-1"
    )

    assert result.resumed_from == 1024
    assert result.bytes_sent == archive.size - 1024
    offsets = [offset for offset, _ in server.puts]
    assert len(offsets) == len(set(offsets))
    assert sum(size for _, size in server.puts) == archive.size
    assert bytes(server.data) == archive.path.read_bytes()
    assert server.completed
    assert server.meta["manifest"] == archive.manifest


def test_multithreaded_compression_output_is_standard_zstd(
    agent_config: AgentConfig, tmp_path: Path
) -> None:
    archive = backup.create(agent_config.data_dirs, tmp_path / "b.tar.zst")
    with archive.path.open("rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        assert len(reader.read()) > 0
