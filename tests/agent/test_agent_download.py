"""TUF-verified downloads: good releases pass; tampered, older, expired, unsigned are refused."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from agent_helpers import FakeDeviceServer, TufRepo

from fleetup.agent.config import AgentConfig
from fleetup.agent.download import DownloadedRelease, download_release
from fleetup.agent.errors import DownloadRefused
from fleetup.agent.transport import Transport

TARGET = "ipc-program-2.0.0.tar.gz"
PAYLOAD = os.urandom(300_000)


def _release(data: bytes = PAYLOAD, target: str = TARGET) -> dict[str, Any]:
    return {
        "version": "2.0.0",
        "target": target,
        "sha256": hashlib.sha256(data).hexdigest(),
        "length": len(data),
    }


@pytest.fixture
def published(tuf_repo: TufRepo, agent_config: AgentConfig) -> TufRepo:
    tuf_repo.add_target(TARGET, PAYLOAD)
    tuf_repo.publish()
    agent_config.tuf_root.write_bytes(tuf_repo.root_bytes())
    return tuf_repo


def _download(
    config: AgentConfig, server: FakeDeviceServer, release: dict[str, Any] | None = None
) -> DownloadedRelease:
    with Transport(
        primary_url=server.url, credential=server.credential, retries=2, backoff_s=0
    ) as transport:
        return download_release(
            transport,
            release or _release(),
            trusted_root=config.tuf_root,
            metadata_dir=config.metadata_dir,
            downloads_dir=config.downloads_dir,
        )


def _downloads(config: AgentConfig) -> list[str]:
    folder = config.downloads_dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_verified_download_succeeds_and_is_reused(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    result = _download(agent_config, device_server)
    assert result.path.read_bytes() == PAYLOAD
    assert _downloads(agent_config) == [result.path.name]
    served = device_server.target_bytes_served

    again = _download(agent_config, device_server)
    assert again.path == result.path
    assert again.bytes_received == 0
    assert device_server.target_bytes_served == served


def test_tampered_target_is_refused_and_nothing_is_kept(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    evil = bytearray(PAYLOAD)
    evil[1000] ^= 1
    (published.targets_dir / f"{digest}.{TARGET}").write_bytes(bytes(evil))
    with pytest.raises(DownloadRefused) as caught:
        _download(agent_config, device_server)
    assert caught.value.reason == "tampered"
    assert _downloads(agent_config) == []


def test_older_metadata_is_refused_as_a_rollback_attack(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    old_timestamp = (published.metadata_dir / "timestamp.json").read_bytes()
    published.publish()
    _download(agent_config, device_server)  # the device has now seen timestamp version 3
    for name in _downloads(agent_config):
        (agent_config.downloads_dir / name).unlink()

    (published.metadata_dir / "timestamp.json").write_bytes(old_timestamp)
    with pytest.raises(DownloadRefused) as caught:
        _download(agent_config, device_server)
    assert caught.value.reason == "rollback"
    assert _downloads(agent_config) == []


def test_expired_timestamp_is_refused(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    published.publish(expired_timestamp=True)
    with pytest.raises(DownloadRefused) as caught:
        _download(agent_config, device_server)
    assert caught.value.reason == "expired"
    assert _downloads(agent_config) == []


def test_unsigned_metadata_is_refused(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    published.publish(unsigned_targets=True)
    with pytest.raises(DownloadRefused) as caught:
        _download(agent_config, device_server)
    assert caught.value.reason == "unsigned"
    assert _downloads(agent_config) == []


def test_action_that_disagrees_with_signed_metadata_is_refused(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    with pytest.raises(DownloadRefused) as caught:
        _download(agent_config, device_server, _release(b"something else"))
    assert caught.value.reason == "mismatch"
    with pytest.raises(DownloadRefused) as caught:
        _download(agent_config, device_server, _release(target="not-published.tar.gz"))
    assert caught.value.reason == "unknown_target"
    assert _downloads(agent_config) == []


def test_cut_download_resumes_without_resending_finished_bytes(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    device_server.cut_target_after = 120_000
    result = _download(agent_config, device_server)
    assert result.path.read_bytes() == PAYLOAD
    assert device_server.target_bytes_served == len(PAYLOAD)
    assert not result.path.with_name(result.path.name + ".part").exists()


def test_part_file_left_by_a_crash_is_resumed_by_the_next_run(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    agent_config.downloads_dir.mkdir(parents=True)
    part = agent_config.downloads_dir / f"{digest}-{TARGET}.part"
    part.write_bytes(PAYLOAD[:200_000])
    result = _download(agent_config, device_server)
    assert result.path.read_bytes() == PAYLOAD
    assert device_server.target_bytes_served == len(PAYLOAD) - 200_000


def test_corrupt_part_file_is_discarded_after_refusal(
    published: TufRepo, agent_config: AgentConfig, device_server: FakeDeviceServer
) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    agent_config.downloads_dir.mkdir(parents=True)
    part = agent_config.downloads_dir / f"{digest}-{TARGET}.part"
    part.write_bytes(b"\0" * 1000)
    with pytest.raises(DownloadRefused):
        _download(agent_config, device_server)
    assert not part.exists()
    assert _download(agent_config, device_server).path.read_bytes() == PAYLOAD
