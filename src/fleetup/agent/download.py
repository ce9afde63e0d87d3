"""Downloading a release, verified by TUF metadata (python-tuf's ``ngclient.Updater``).

The agent trusts one root of trust shipped with it (``paths.tuf_root``); python-tuf walks
root rotations from there, then loads timestamp, snapshot and targets from
``/device/v1/tuf/metadata/`` and refuses anything tampered, unsigned, expired or older than
what it has seen before (the metadata cache lives in ``work_dir/tuf/``, which is what makes
rollback attacks visible). The action's claim about the package (target name, sha256, length)
must agree with the signed targets metadata; the file itself comes from
``/device/v1/tuf/targets/`` through a fetcher that resumes cut downloads from a ``.part``
file, and the Updater checks its length and hashes before it is used.

Refusals surface as :class:`~fleetup.agent.errors.DownloadRefused` with a short ``reason``;
network trouble as :class:`~fleetup.agent.errors.DownloadInterrupted` (the step is retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tuf.api import exceptions
from tuf.ngclient.updater import Updater

from fleetup.agent._internal.fetcher import BASE, ServerFetcher
from fleetup.agent.errors import (
    AgentError,
    ConfigError,
    DownloadError,
    DownloadInterrupted,
    DownloadRefused,
    ServerUnreachable,
)
from fleetup.agent.transport import Transport

METADATA_PATH = "/device/v1/tuf/metadata/"
TARGETS_PATH = "/device/v1/tuf/targets/"


@dataclass(frozen=True)
class DownloadedRelease:
    """A verified package on disk."""

    path: Path
    target: str
    sha256: str
    length: int
    bytes_received: int


def download_release(
    transport: Transport,
    release: dict[str, Any],
    *,
    trusted_root: Path,
    metadata_dir: Path,
    downloads_dir: Path,
) -> DownloadedRelease:
    """Download and verify the package that ``release`` names.

    Safe to call again after a crash or a cut: a complete verified file is reused, a
    ``.part`` file is resumed.

    Args:
        transport: the server seam.
        release: the action's ``release`` object: ``{version, target, sha256, length}``.
        trusted_root: the root metadata shipped with the agent (the trust anchor).
        metadata_dir: where trusted metadata is cached between runs.
        downloads_dir: where the package is written.

    Returns:
        Where the verified package is, and how many bytes this call received.

    Raises:
        DownloadRefused: the metadata or the package failed verification.
        DownloadInterrupted: the network failed; the next call resumes.
        ConfigError: the trusted root file is missing.
    """
    try:
        root_bytes = trusted_root.read_bytes()
    except OSError as e:
        raise ConfigError("paths.tuf_root", f"{trusted_root} cannot be read: {e}") from e
    metadata_dir.mkdir(parents=True, exist_ok=True)
    downloads_dir.mkdir(parents=True, exist_ok=True)
    fetcher = ServerFetcher(transport)
    target = str(release["target"])
    with _converted():
        updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=BASE + METADATA_PATH,
            target_dir=str(downloads_dir),
            target_base_url=BASE + TARGETS_PATH,
            fetcher=fetcher,
            bootstrap=root_bytes,
        )
        updater.refresh()
        info = updater.get_targetinfo(target)
    if info is None:
        raise DownloadRefused("unknown_target", f"{target} is not in the signed targets")
    signed_sha256 = info.hashes.get("sha256", "")
    if signed_sha256 != release.get("sha256") or info.length != release.get("length"):
        raise DownloadRefused(
            "mismatch",
            f"action says sha256={release.get('sha256')} length={release.get('length')}, "
            f"signed metadata says sha256={signed_sha256} length={info.length}",
        )
    destination = downloads_dir / f"{signed_sha256}-{Path(target).name}"
    if updater.find_cached_target(info, str(destination)):
        return DownloadedRelease(destination, target, signed_sha256, info.length, 0)
    part = destination.with_name(destination.name + ".part")
    fetcher.part_file = part
    try:
        with _converted(part):
            updater.download_target(info, str(destination))
    except DownloadRefused:
        destination.unlink(missing_ok=True)
        raise
    part.unlink(missing_ok=True)
    return DownloadedRelease(
        destination, target, signed_sha256, info.length, fetcher.bytes_received
    )


class _converted:
    """Turn python-tuf and network errors into the agent's error tree.

    A refused target's ``.part`` file is deleted: its bytes are not to be trusted again.
    """

    def __init__(self, part: Path | None = None) -> None:
        self._part = part

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        if error is None or not isinstance(error, Exception):
            return
        converted = _convert(error)
        if converted is error:
            return
        if isinstance(converted, DownloadRefused) and self._part is not None:
            self._part.unlink(missing_ok=True)
        raise converted from error


def _convert(error: Exception) -> Exception:
    if isinstance(error, DownloadError):
        return error
    if isinstance(error, AgentError):
        if isinstance(error, ServerUnreachable):
            return DownloadInterrupted(str(error))
        return error
    refusals: list[tuple[type[Exception], str]] = [
        (exceptions.ExpiredMetadataError, "expired"),
        (exceptions.UnsignedMetadataError, "unsigned"),
        (exceptions.BadVersionNumberError, "rollback"),
        (exceptions.LengthOrHashMismatchError, "tampered"),
        (exceptions.DownloadLengthMismatchError, "tampered"),
        (exceptions.RepositoryError, "invalid"),
    ]
    for kind, reason in refusals:
        if isinstance(error, kind):
            return DownloadRefused(reason, str(error) or kind.__name__)
    if isinstance(error, exceptions.DownloadHTTPError) and error.status_code in (403, 404, 410):
        return DownloadRefused("unavailable", str(error))
    if isinstance(error, exceptions.DownloadError | httpx.TransportError):
        return DownloadInterrupted(str(error) or type(error).__name__)
    if isinstance(error, OSError):
        return DownloadError(f"cannot write the download: {error}")
    if isinstance(error, ValueError):
        return DownloadRefused("invalid", str(error))
    return error
