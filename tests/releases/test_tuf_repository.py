"""The TUF repository as python-tuf's client (the agent's ngclient) sees it."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata
from tuf.ngclient.updater import Updater

from fleetup.core.errors import Conflict
from fleetup.releases.blobs import LocalBlobStore
from fleetup.releases.tuf_repo import TufRepository
from releases.release_helpers import RepositoryFetcher

NOW = datetime.now(UTC)


def _publish(
    repository: TufRepository, store: LocalBlobStore, tmp: Path, name: str, data: bytes
) -> str:
    source = tmp / name
    source.write_bytes(data)
    info = store.add_file(source)
    repository.add_target(NOW, name=name, sha256=info.sha256, length=info.length)
    return info.sha256


def _updater(
    repository: TufRepository, store: LocalBlobStore, cache: Path, trusted: bytes
) -> Updater:
    cache.mkdir(parents=True, exist_ok=True)
    return Updater(
        metadata_dir=str(cache),
        metadata_base_url="fleetup-repo://metadata/",
        target_dir=str(cache / "targets"),
        target_base_url="fleetup-repo://targets/",
        fetcher=RepositoryFetcher(repository, store),
        bootstrap=trusted,
    )


def test_a_released_target_verifies_and_downloads_with_the_tuf_updater(
    repository: TufRepository, store: LocalBlobStore, tmp_path: Path
) -> None:
    _publish(repository, store, tmp_path, "ipc-2.0.0.tar.gz", b"package two")
    updater = _updater(repository, store, tmp_path / "client", repository.root_bytes())
    updater.refresh()
    info = updater.get_targetinfo("ipc-2.0.0.tar.gz")
    assert info is not None
    (tmp_path / "client" / "targets").mkdir()
    path = updater.download_target(info)
    assert Path(path).read_bytes() == b"package two"
    root = Metadata.from_bytes(repository.root_bytes())
    assert root.signed.consistent_snapshot is True


def test_keys_are_private_files_and_the_root_key_is_kept_apart(
    repository: TufRepository,
) -> None:
    repository.ensure(NOW)
    online = sorted(repository.online_key_dir.glob("*.pem"))
    offline = sorted(repository.offline_key_dir.glob("*.pem"))
    assert len(online) == 3 and len(offline) == 1
    for key in online + offline:
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    [root_info] = [info for info in repository.roles() if info.role == "root"]
    assert offline[0].stem in root_info.keyids


def test_key_rotation_keeps_clients_updating(
    repository: TufRepository, store: LocalBlobStore, tmp_path: Path
) -> None:
    _publish(repository, store, tmp_path, "ipc-1.0.0.tar.gz", b"one")
    trusted = repository.root_bytes()
    cache = tmp_path / "client"
    _updater(repository, store, cache, trusted).refresh()
    old_targets_key = repository.roles()[1].keyids
    repository.rotate("targets", NOW)
    repository.rotate("root", NOW)
    repository.rotate("timestamp", NOW)
    assert repository.roles()[1].keyids != old_targets_key
    _publish(repository, store, tmp_path, "ipc-2.0.0.tar.gz", b"two")
    updater = _updater(repository, store, cache, trusted)
    updater.refresh()
    assert updater.get_targetinfo("ipc-2.0.0.tar.gz") is not None
    assert Metadata.from_file(str(cache / "root.json")).signed.version == 4


def test_rotation_needs_the_offline_root_key(repository: TufRepository, tmp_path: Path) -> None:
    repository.ensure(NOW)
    away = tmp_path / "usb-stick"
    repository.offline_key_dir.rename(away)
    with pytest.raises(Conflict, match="bring the offline root key back"):
        repository.rotate("targets", NOW)
    # Releases need only the online keys.
    repository.add_target(NOW, name="ipc-3.tar.gz", sha256="a" * 64, length=3)


def test_the_timestamp_is_signed_again_before_it_expires(
    repository: TufRepository, store: LocalBlobStore, tmp_path: Path
) -> None:
    _publish(repository, store, tmp_path, "ipc-1.0.0.tar.gz", b"one")
    assert repository.refresh_timestamp(NOW) is False
    before = repository.roles()[3]
    assert repository.refresh_timestamp(NOW + timedelta(hours=20)) is True
    after = repository.roles()[3]
    assert after.version == before.version + 1
    assert after.expires > before.expires
    updater = _updater(repository, store, tmp_path / "client", repository.root_bytes())
    updater.refresh()


def test_a_client_refuses_a_rolled_back_timestamp(
    repository: TufRepository, store: LocalBlobStore, tmp_path: Path
) -> None:
    from tuf.api.exceptions import BadVersionNumberError

    _publish(repository, store, tmp_path, "ipc-1.0.0.tar.gz", b"one")
    old = (repository.metadata_dir / "timestamp.json").read_bytes()
    _publish(repository, store, tmp_path, "ipc-2.0.0.tar.gz", b"two")
    cache = tmp_path / "client"
    _updater(repository, store, cache, repository.root_bytes()).refresh()
    (repository.metadata_dir / "timestamp.json").write_bytes(old)
    with pytest.raises(BadVersionNumberError):
        _updater(repository, store, cache, repository.root_bytes()).refresh()
