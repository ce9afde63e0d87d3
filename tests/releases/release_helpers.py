"""Helpers for release tests: packages, and a python-tuf fetcher reading the server's files."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient.fetcher import FetcherInterface

from fleetup.releases.blobs import LocalBlobStore
from fleetup.releases.tuf_repo import TufRepository


def make_package(
    path: Path,
    *,
    version: str,
    manifest: dict[str, Any] | None = None,
    files: dict[str, bytes] | None = None,
    fmt: str = "tar.gz",
    hooks: dict[str, list[Any]] | None = None,
) -> Path:
    """Write an IPC program package (``manifest`` replaces the generated one if given)."""
    body = (
        manifest
        if manifest is not None
        else {
            "version": version,
            "models": [],
            "os": [],
            "hooks": hooks or {},
        }
    )
    entries = {"manifest.json": json.dumps(body).encode(), **(files or {})}
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as archive:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    return path


class RepositoryFetcher(FetcherInterface):
    """Serves ``fleetup-repo://metadata/<name>`` and ``.../targets/<sha256>.<name>`` from disk."""

    def __init__(self, repository: TufRepository, store: LocalBlobStore) -> None:
        self.repository = repository
        self.store = store

    def _fetch(self, url: str) -> Iterator[bytes]:
        kind, _, name = url.removeprefix("fleetup-repo://").partition("/")
        if kind == "metadata":
            path = self.repository.metadata_file(name)
        else:
            digest = name.split(".", 1)[0]
            path = self.store.path(digest) if self.store.exists(digest) else None
        if path is None:
            raise DownloadHTTPError(f"{url} not found", 404)
        return iter([path.read_bytes()])
