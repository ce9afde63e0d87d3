"""The heartbeat's data-anomaly check: immutable files against the last backup, SQLite health."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from fleetup.agent import backup, integrity
from fleetup.agent.config import AgentConfig
from fleetup.agent.heartbeat import send_heartbeat
from fleetup.agent.transport import Transport


def _baseline(config: AgentConfig) -> Path:
    data = config.data_dirs[0]
    (data / ".fleetup-immutable").write_text("# recipes never change on site\nrecipes/*\n")
    with sqlite3.connect(data / "machine.db") as db:
        db.execute("create table counts (shift int, n int)")
        db.execute("insert into counts values (1, 42)")
    archive = backup.create(config.data_dirs, config.backups_dir / "snap.tar.zst")
    return archive.path


def test_a_backup_marks_the_files_its_immutable_list_names(agent_config: AgentConfig) -> None:
    manifest = backup.load(_baseline(agent_config)).manifest
    assert manifest["files"]["d0/recipes/bread.txt"]["immutable"] is True
    assert "immutable" not in manifest["files"]["d0/counters.csv"]


def test_unchanged_data_has_no_anomaly(agent_config: AgentConfig) -> None:
    _baseline(agent_config)
    assert integrity.anomalies(agent_config.work_dir) == []


def test_a_changed_or_missing_immutable_file_is_a_checksum_mismatch(
    agent_config: AgentConfig,
) -> None:
    _baseline(agent_config)
    data = agent_config.data_dirs[0]
    (data / "recipes" / "bread.txt").write_text("flour 50g\n")
    (data / "counters.csv").write_text("shift,count\n1,43\n")
    found = integrity.anomalies(agent_config.work_dir)
    assert found == [
        {
            "kind": "checksum_mismatch",
            "detail": found[0]["detail"],
            "path": str(data / "recipes" / "bread.txt"),
        }
    ]
    (data / "recipes" / "bread.txt").unlink()
    assert integrity.anomalies(agent_config.work_dir)[0]["detail"] == "file is missing"


def test_a_damaged_sqlite_file_is_a_db_integrity_anomaly(agent_config: AgentConfig) -> None:
    _baseline(agent_config)
    db = agent_config.data_dirs[0] / "machine.db"
    raw = bytearray(db.read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)  # the first page's b-tree, header kept
    db.write_bytes(bytes(raw))
    found = integrity.anomalies(agent_config.work_dir)
    assert [(a["kind"], a["path"]) for a in found] == [("db_integrity", str(db))]


def test_the_check_is_bounded_and_remembers_unchanged_files(agent_config: AgentConfig) -> None:
    _baseline(agent_config)
    data = agent_config.data_dirs[0]
    (data / "recipes" / "bread.txt").write_text("flour 50g\n")
    assert integrity.anomalies(agent_config.work_dir, max_bytes=0, max_databases=0) == []
    assert len(integrity.anomalies(agent_config.work_dir)) == 1
    cache = json.loads((agent_config.work_dir / integrity.CACHE_FILE).read_text())
    assert cache["baseline"] == "snap.tar.zst.manifest.json"
    # Nothing is hashed again: the remembered result stands even with no budget left.
    assert len(integrity.anomalies(agent_config.work_dir, max_bytes=0, max_databases=0)) == 1


def test_the_heartbeat_carries_the_anomalies_in_its_health(agent_config: AgentConfig) -> None:
    _baseline(agent_config)
    (agent_config.data_dirs[0] / "recipes" / "bread.txt").write_text("tampered\n")
    sent: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={})

    transport = Transport(primary_url="http://fleetup.test", http=httpx.MockTransport(server))
    send_heartbeat(
        transport,
        version="1.0.0",
        work_dir=agent_config.work_dir,
        state_file=agent_config.heartbeat_file,
    )
    anomalies = sent[0]["health"]["anomalies"]
    assert [a["kind"] for a in anomalies] == ["checksum_mismatch"]
    assert anomalies[0]["path"].endswith("bread.txt")
