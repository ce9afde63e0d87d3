"""Backing up the customer's data: archive, verify, keep, upload, restore.

:func:`create` streams every data folder into one tar archive compressed with zstandard
(level 3, multithreaded where the library allows), hashing each file as it is read, and
writes a manifest (``<archive>.manifest.json``, also stored as the archive's last member)
listing every file with its sha256 and size. :func:`verify` reads the archive back and checks
every file against the manifest, both ways: nothing missing, nothing extra, nothing changed.
Nothing on the machine is changed before that check passes (SOP chart 3, B1).

Archives are kept under ``work_dir/backups/``. :func:`upload` sends one to the server in
chunks and can be interrupted at any point: it asks the server how much it already has and
continues from there. :func:`restore` unpacks an archive (used by rollback and a later system
restore), refusing entries that would land outside the target.

Inside the archive, folder ``data_dirs[i]`` is stored under the prefix ``d<i>/``; only
regular files and folders are kept (links and devices are listed as ``skipped``). Files a
data folder's ``.fleetup-immutable`` names (glob patterns, one a line, relative to that
folder) are marked ``"immutable": true`` in the manifest: the data-anomaly check
(``integrity.py``) reports any later change to them. :func:`restore_to_dirs` puts an archive
back into the configured folders (a spare IPC's folders, not the paths it was taken from).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import zstandard

from fleetup.agent._internal.clock import SystemClock, iso
from fleetup.agent._internal.files import atomic_write_json, fsync_dir, sha256_file
from fleetup.agent.errors import BackupCorrupt, BackupError
from fleetup.agent.transport import Transport

FORMAT = "fleetup-backup/1"
MANIFEST_MEMBER = "fleetup-backup-manifest.json"
IMMUTABLE_LIST = ".fleetup-immutable"
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class BackupArchive:
    """A backup archive on disk and its manifest."""

    path: Path
    sha256: str
    size: int
    manifest: dict[str, Any]

    @property
    def manifest_path(self) -> Path:
        """Where the manifest is kept beside the archive."""
        return manifest_path_for(self.path)


def manifest_path_for(archive: Path) -> Path:
    """The manifest file that belongs to ``archive``."""
    return archive.with_name(archive.name + ".manifest.json")


def create(data_dirs: Sequence[Path], archive: Path) -> BackupArchive:
    """Archive ``data_dirs`` into ``archive`` (``.tar.zst``) and write its manifest.

    The archive is written under a temporary name and renamed when complete.

    Args:
        data_dirs: the folders to back up; each must exist.
        archive: the archive to write.

    Returns:
        The archive, its hash, size and manifest.

    Raises:
        BackupError: a folder is missing or a file could not be read.
    """
    for data_dir in data_dirs:
        if not data_dir.is_dir():
            raise BackupError(f"data folder {data_dir} does not exist")
    archive.parent.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": iso(SystemClock().now()),
        "dirs": [{"prefix": f"d{i}", "path": str(d)} for i, d in enumerate(data_dirs)],
        "files": {},
        "skipped": [],
        "total_bytes": 0,
    }
    partial = archive.with_name(archive.name + ".partial")
    try:
        with partial.open("wb") as raw:
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1, write_checksum=True)
            with (
                compressor.stream_writer(raw, closefd=False) as zstd_out,
                tarfile.open(fileobj=zstd_out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for index, data_dir in enumerate(data_dirs):
                    _add_tree(tar, data_dir, f"d{index}", manifest, _immutable_patterns(data_dir))
                body = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST_MEMBER)
                info.size = len(body)
                info.mtime = int(SystemClock().now().timestamp())
                tar.addfile(info, _BytesReader(body))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, archive)
        fsync_dir(archive.parent)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup into {archive} failed: {e}") from e
    atomic_write_json(manifest_path_for(archive), manifest)
    return BackupArchive(archive, sha256_file(archive), archive.stat().st_size, manifest)


def load(archive: Path) -> BackupArchive:
    """Describe an existing archive from its manifest file.

    Raises:
        BackupError: the archive or its manifest is missing or unreadable.
    """
    try:
        manifest = json.loads(manifest_path_for(archive).read_text(encoding="utf-8"))
        return BackupArchive(archive, sha256_file(archive), archive.stat().st_size, manifest)
    except (OSError, ValueError) as e:
        raise BackupError(f"backup {archive} cannot be read: {e}") from e


def verify(archive: Path, manifest: dict[str, Any]) -> int:
    """Read ``archive`` back and check every file against ``manifest``.

    Returns:
        The number of files checked.

    Raises:
        BackupCorrupt: a file is missing, extra, changed, or the archive is unreadable.
    """
    expected: dict[str, dict[str, Any]] = manifest["files"]
    seen: set[str] = set()
    seen_manifest = False
    try:
        with _open_tar(archive) as tar:
            for member in tar:
                if member.name == MANIFEST_MEMBER:
                    embedded = tar.extractfile(member)
                    assert embedded is not None
                    if json.loads(embedded.read()) != manifest:
                        raise BackupCorrupt(f"{archive.name}: its own manifest differs")
                    seen_manifest = True
                    continue
                if not member.isfile():
                    continue
                entry = expected.get(member.name)
                if entry is None:
                    raise BackupCorrupt(f"{archive.name}: {member.name} is not in the manifest")
                source = tar.extractfile(member)
                assert source is not None
                digest, size = _hash_stream(source)
                if digest != entry["sha256"] or size != entry["size"]:
                    raise BackupCorrupt(f"{archive.name}: {member.name} does not match its hash")
                seen.add(member.name)
    except (OSError, tarfile.TarError, zstandard.ZstdError, EOFError, ValueError) as e:
        raise BackupCorrupt(f"{archive.name} cannot be read back: {e}") from e
    if not seen_manifest:
        raise BackupCorrupt(f"{archive.name} has no manifest member; it is incomplete")
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupCorrupt(f"{archive.name}: {len(missing)} files missing, e.g. {missing[0]}")
    return len(seen)


def restore(archive: Path, target: Path) -> dict[str, Any]:
    """Verify ``archive`` and unpack it under ``target`` (folder ``i`` lands in ``target/d<i>``).

    Returns:
        The archive's manifest, to map ``d<i>`` back to the original folders.

    Raises:
        BackupCorrupt: the archive does not match its manifest.
        BackupError: unpacking failed.
    """
    manifest = _embedded_manifest(archive)
    verify(archive, manifest)
    target.mkdir(parents=True, exist_ok=True)
    try:
        with _open_tar(archive) as tar:
            tar.extractall(target, filter="data")
    except (OSError, tarfile.TarError, zstandard.ZstdError) as e:
        raise BackupError(f"restore of {archive.name} into {target} failed: {e}") from e
    (target / MANIFEST_MEMBER).unlink(missing_ok=True)
    return manifest


def restore_in_place(archive: Path, stamp: str) -> list[Path]:
    """Put every backed-up folder back where it was, keeping today's content aside.

    Each folder is restored next to itself and swapped in with renames; what it held before
    is kept as ``<folder>.before-restore-<stamp>`` so that nothing is lost.

    Returns:
        The folders restored.

    Raises:
        BackupError, BackupCorrupt: the archive is bad or a folder could not be swapped.
    """
    staging = archive.with_name(f"{archive.name}.restore-{stamp}")
    shutil.rmtree(staging, ignore_errors=True)
    manifest = restore(archive, staging)
    restored: list[Path] = []
    try:
        for entry in manifest["dirs"]:
            original = Path(entry["path"])
            source = staging / entry["prefix"]
            if not source.exists():
                source.mkdir(parents=True)
            aside = original.with_name(f"{original.name}.before-restore-{stamp}")
            if original.exists() and not aside.exists():
                os.replace(original, aside)
            elif original.exists():
                shutil.rmtree(original)
            original.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(original))
            restored.append(original)
    except OSError as e:
        raise BackupError(f"restore into place failed: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return restored


def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest stored inside ``archive`` (not yet checked against the files).

    Raises:
        BackupCorrupt: the archive is unreadable or has no manifest.
    """
    return _embedded_manifest(archive)


def restore_to_dirs(archive: Path, data_dirs: Sequence[Path], stamp: str) -> list[Path]:
    """Put folder ``d<i>`` of ``archive`` back as ``data_dirs[i]``, keeping today's content.

    The archive is verified first; each folder is unpacked beside its target (same file
    system) and swapped in with ``os.replace``; what the target held is kept as
    ``<folder>.before-restore-<stamp>``. Safe to repeat with the same ``stamp``: a folder
    already moved aside is not moved again.

    Returns:
        The folders restored.

    Raises:
        BackupCorrupt: the archive does not match its manifest, or has more folders than
            ``data_dirs``.
        BackupError: unpacking or a swap failed.
    """
    manifest = _embedded_manifest(archive)
    verify(archive, manifest)
    prefixes = [str(entry["prefix"]) for entry in manifest["dirs"]]
    if len(prefixes) > len(data_dirs):
        raise BackupCorrupt(
            f"{archive.name} holds {len(prefixes)} folders; {len(data_dirs)} are configured"
        )
    restored: list[Path] = []
    for prefix, target in zip(prefixes, data_dirs, strict=False):
        staging = target.with_name(f".{target.name}.restoring-{stamp}")
        aside = target.with_name(f"{target.name}.before-restore-{stamp}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with _open_tar(archive) as tar:
                for member in tar:
                    if member.name != prefix and not member.name.startswith(prefix + "/"):
                        continue
                    tar.extract(member, staging, filter="data")
            source = staging / prefix
            source.mkdir(exist_ok=True)
            if target.exists() and not aside.exists():
                os.replace(target, aside)
            elif target.exists():
                shutil.rmtree(target)  # a restored copy from an interrupted earlier run
            os.replace(source, target)
            fsync_dir(target.parent)
        except (OSError, tarfile.TarError, zstandard.ZstdError) as e:
            raise BackupError(f"restore of {archive.name} into {target} failed: {e}") from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        restored.append(target)
    return restored


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: the server's id, and bytes sent by this call."""

    backup_id: str
    bytes_sent: int
    resumed_from: int


def upload(
    transport: Transport,
    backup: BackupArchive,
    *,
    action_id: str,
    chunk_bytes: int,
    backup_id: str | None = None,
    on_backup_id: Callable[[str], None] | None = None,
) -> UploadResult:
    """Upload ``backup`` in chunks, resuming from what the server already holds.

    Args:
        transport: the server seam.
        backup: the verified archive.
        action_id: the action the backup belongs to.
        chunk_bytes: bytes per ``PUT``.
        backup_id: the id from an earlier, interrupted call (kept in the journal).
        on_backup_id: called with a new id before any chunk is sent, to journal it.

    Returns:
        The backup id and how many bytes this call sent.

    Raises:
        ServerError: the server could not be reached or refused the upload.
        BackupError: the server's answer does not make sense or its hash check failed.
    """
    if backup_id is None:
        answer = transport.post_json(
            "/device/v1/backups",
            {
                "action_id": action_id,
                "sha256": backup.sha256,
                "size": backup.size,
                "manifest": backup.manifest,
            },
        )
        backup_id = str(answer["backup_id"])
        if on_backup_id:
            on_backup_id(backup_id)
        received = int(answer.get("received", 0))
    else:
        answer = transport.get_json(f"/device/v1/backups/{backup_id}")
        received = int(answer["received"])
        if answer.get("complete"):
            return UploadResult(backup_id, 0, received)
    resumed_from = offset = received
    sent = 0
    with backup.path.open("rb") as source:
        while offset < backup.size:
            source.seek(offset)
            chunk = source.read(chunk_bytes)
            response = transport.request(
                "PUT",
                f"/device/v1/backups/{backup_id}",
                params={"offset": offset},
                content=chunk,
                headers={"Content-Type": "application/octet-stream"},
                ok=(200, 409),
            )
            if response.status_code == 200:
                sent += len(chunk)
            offset = int(response.json()["received"])
            if offset > backup.size:
                raise BackupError(f"server claims {offset} bytes of a {backup.size}-byte backup")
    result = transport.request(
        "POST", f"/device/v1/backups/{backup_id}/complete", ok=(200, 409, 422)
    )
    if result.status_code != 200:
        raise BackupError(f"server refused the uploaded backup: {result.text[:200]}")
    return UploadResult(backup_id, sent, resumed_from)


def _immutable_patterns(data_dir: Path) -> list[str]:
    try:
        text = (data_dir / IMMUTABLE_LIST).read_text(encoding="utf-8")
    except OSError:
        return []
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _add_tree(
    tar: tarfile.TarFile,
    root: Path,
    prefix: str,
    manifest: dict[str, Any],
    immutable: Sequence[str] = (),
) -> None:
    tar.add(root, arcname=prefix, recursive=False)
    for folder, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(folder)
        for name in [*dirnames, *sorted(filenames)]:
            path = here / name
            arcname = f"{prefix}/{path.relative_to(root).as_posix()}"
            info = tar.gettarinfo(str(path), arcname)
            if info.isdir():
                tar.addfile(info)
            elif info.isfile():
                with path.open("rb") as handle:
                    reader = _HashingReader(handle)
                    tar.addfile(info, reader)
                entry: dict[str, Any] = {"sha256": reader.hexdigest(), "size": info.size}
                relative = path.relative_to(root).as_posix()
                if any(fnmatch.fnmatchcase(relative, pattern) for pattern in immutable):
                    entry["immutable"] = True
                manifest["files"][arcname] = entry
                manifest["total_bytes"] += info.size
            else:
                manifest["skipped"].append(arcname)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]


@contextlib.contextmanager
def _open_tar(archive: Path) -> Iterator[tarfile.TarFile]:
    with (
        archive.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as reader,
        tarfile.open(fileobj=reader, mode="r|") as tar,
    ):
        yield tar


def _embedded_manifest(archive: Path) -> dict[str, Any]:
    try:
        with _open_tar(archive) as tar:
            for member in tar:
                if member.name == MANIFEST_MEMBER:
                    source = tar.extractfile(member)
                    assert source is not None
                    manifest: dict[str, Any] = json.loads(source.read())
                    return manifest
    except (OSError, tarfile.TarError, zstandard.ZstdError, ValueError) as e:
        raise BackupCorrupt(f"{archive.name} cannot be read back: {e}") from e
    raise BackupCorrupt(f"{archive.name} has no manifest")


def _hash_stream(source: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class _HashingReader:
    """A read-only file wrapper that hashes what tarfile reads through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._digest.update(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk
