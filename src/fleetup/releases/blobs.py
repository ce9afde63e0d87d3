"""Content-addressed storage for packages and backups: a blob's name is its sha256.

:class:`BlobStore` is the seam (a local folder today, S3-compatible storage later);
:class:`LocalBlobStore` keeps ``<root>/<aa>/<sha256>`` files, each written under a temporary
name and moved into place with ``os.replace``, so a blob is complete or absent. Adding the same
content twice stores it once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its sha256 (hex) and length in bytes."""

    sha256: str
    length: int


class BlobStore(Protocol):
    """Where blobs live; every method takes or returns a lower-case hex sha256."""

    def add_file(self, source: Path, *, move: bool = False) -> BlobInfo: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def open(self, sha256: str) -> BinaryIO: ...


def is_sha256(value: str) -> bool:
    return _SHA256.fullmatch(value) is not None


def file_sha256(path: Path) -> BlobInfo:
    """Hash a file in chunks (packages and backups may be large)."""
    digest = hashlib.sha256()
    length = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            length += len(chunk)
    return BlobInfo(digest.hexdigest(), length)


class LocalBlobStore:
    """Blobs in a local folder (``settings.effective_blob_dir``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"{sha256!r} is not a sha256 in hex")
        return self.root / sha256[:2] / sha256

    def add_file(self, source: Path, *, move: bool = False) -> BlobInfo:
        """Store ``source`` under its hash; with ``move`` the source file is consumed."""
        info = file_sha256(source)
        target = self.path(info.sha256)
        if target.is_file():
            if move:
                source.unlink()
            return info
        target.parent.mkdir(parents=True, exist_ok=True)
        if move and source.stat().st_dev == target.parent.stat().st_dev:
            os.replace(source, target)
            return info
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        if move:
            source.unlink()
        return info

    def exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")


def read_range(store: BlobStore, sha256: str, start: int, end: int) -> Iterator[bytes]:
    """Yield bytes ``start..end`` (inclusive) of a blob in chunks, never the whole blob."""
    with store.open(sha256) as handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
