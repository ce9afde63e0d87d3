"""Crash-safe file writes and small filesystem helpers.

A file the agent relies on after a power cut (journal, ``current`` pointer, credentials,
settings) is written to a temporary name in the same directory, flushed and fsynced, then
moved over the old one with ``os.replace`` (atomic on Linux and Windows), and the directory
is fsynced where the platform allows it, so a reader sees either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry to disk; a no-op where directories cannot be opened (Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new content.

    Args:
        path: the destination; its directory is created when missing.
        data: the full new content.
        private: restrict the file to its owner (credentials); ignored on Windows.

    Raises:
        OSError: the file could not be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if private and os.name != "nt":
            tmp.chmod(0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, private: bool = False) -> None:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"), private=private)


def atomic_write_json(path: Path, value: Any, *, private: bool = False) -> None:
    """Write ``value`` as indented JSON atomically (see :func:`atomic_write_bytes`)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(path, text, private=private)


def read_json(path: Path) -> Any:
    """Read a JSON file; ``None`` when it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def tail(text: str, lines: int = 20, limit: int = 4000) -> str:
    """The last ``lines`` lines of ``text``, at most ``limit`` characters, for evidence."""
    kept = "\n".join(text.splitlines()[-lines:])
    return kept[-limit:]


def join_paths(paths: Iterable[Path]) -> str:
    """Paths joined with the platform's separator, for environment variables."""
    return os.pathsep.join(str(p) for p in paths)
