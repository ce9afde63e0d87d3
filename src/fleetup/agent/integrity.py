"""Data anomalies the heartbeat reports: changed immutable files, damaged SQLite files.

The baseline is the newest backup manifest in ``work_dir/backups/`` (an upgrade's backup, a
snapshot, or the archive a restore put back). Files it marks ``immutable`` must still hash to
what the backup holds; a file that differs or is gone is a ``checksum_mismatch``. SQLite files
in the data folders (named ``*.db``, ``*.sqlite``, ``*.sqlite3``) must pass ``PRAGMA
integrity_check`` opened read-only; one that does not is a ``db_integrity``.

The check runs with every heartbeat, so it is bounded: a file whose size and modification
time are what they were at the last check keeps its last result (``work_dir/integrity.json``),
and one call hashes at most ``max_bytes`` and opens at most ``max_databases`` databases (the
rest waits for the next heartbeat). It never raises: a check that cannot run is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from fleetup.agent._internal.files import atomic_write_json

CACHE_FILE = "integrity.json"
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
MAX_BYTES = 256 * 1024**2
MAX_DATABASES = 4
MAX_DATABASE_BYTES = 512 * 1024**2


def anomalies(
    work_dir: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_databases: int = MAX_DATABASES,
) -> list[dict[str, Any]]:
    """The data anomalies found now: ``[{kind, detail, path}]``, empty when all is well."""
    baseline = _newest_manifest(work_dir / "backups")
    if baseline is None:
        return []
    name, manifest = baseline
    cache_path = work_dir / CACHE_FILE
    cache = _load_cache(cache_path, name)
    budget = {"bytes": max_bytes, "databases": max_databases}
    found: list[dict[str, Any]] = []
    roots = {str(d["prefix"]): Path(d["path"]) for d in manifest.get("dirs", [])}
    for arcname, entry in sorted(manifest.get("files", {}).items()):
        prefix, _, relative = arcname.partition("/")
        root = roots.get(prefix)
        if root is None or not relative:
            continue
        path = root / relative
        checks = []
        if entry.get("immutable"):
            checks.append("checksum")
        if path.suffix.lower() in DB_SUFFIXES:
            checks.append("database")
        for check in checks:
            result = _checked(cache, check, path, entry, budget)
            if result is not None:
                found.append(result)
    with contextlib.suppress(OSError):
        atomic_write_json(cache_path, cache)
    return found


def _checked(
    cache: dict[str, Any], check: str, path: Path, entry: dict[str, Any], budget: dict[str, int]
) -> dict[str, Any] | None:
    key = f"{check}:{path}"
    try:
        stat = path.stat()
    except FileNotFoundError:
        if check == "checksum":
            return {"kind": "checksum_mismatch", "detail": "file is missing", "path": str(path)}
        return None
    except OSError:
        return None
    fingerprint = [stat.st_size, stat.st_mtime_ns]
    known = cache["results"].get(key)
    if isinstance(known, dict) and known.get("stat") == fingerprint:
        anomaly: dict[str, Any] | None = known.get("anomaly")
        return anomaly
    if check == "checksum":
        if budget["bytes"] < stat.st_size:
            return None
        budget["bytes"] -= stat.st_size
        anomaly = _checksum(path, entry, stat.st_size)
    else:
        if budget["databases"] <= 0 or stat.st_size > MAX_DATABASE_BYTES:
            return None
        budget["databases"] -= 1
        anomaly = _database(path)
    cache["results"][key] = {"stat": fingerprint, "anomaly": anomaly}
    return anomaly


def _checksum(path: Path, entry: dict[str, Any], size: int) -> dict[str, Any] | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as e:
        return {"kind": "checksum_mismatch", "detail": f"unreadable: {e}", "path": str(path)}
    if digest.hexdigest() == entry.get("sha256") and size == entry.get("size"):
        return None
    return {
        "kind": "checksum_mismatch",
        "detail": f"sha256 {digest.hexdigest()[:12]}…, the backup has {str(entry['sha256'])[:12]}…",
        "path": str(path),
    }


def _database(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                return {"kind": "db_integrity", "detail": "not a SQLite file", "path": str(path)}
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            rows = connection.execute("PRAGMA integrity_check(5)").fetchall()
        finally:
            connection.close()
    except sqlite3.OperationalError as e:
        if "locked" in str(e):
            return None  # the machine's program is writing; try again next time
        return {"kind": "db_integrity", "detail": str(e), "path": str(path)}
    except (OSError, sqlite3.DatabaseError) as e:
        return {"kind": "db_integrity", "detail": str(e), "path": str(path)}
    messages = [str(row[0]) for row in rows]
    if messages == ["ok"]:
        return None
    return {"kind": "db_integrity", "detail": "; ".join(messages)[:300], "path": str(path)}


def _newest_manifest(backups: Path) -> tuple[str, dict[str, Any]] | None:
    try:
        candidates = sorted(
            backups.glob("*.manifest.json"), key=lambda p: (p.stat().st_mtime_ns, p.name)
        )
    except OSError:
        return None
    for path in reversed(candidates):
        with contextlib.suppress(OSError, ValueError):
            manifest = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
                return path.name, manifest
    return None


def _load_cache(path: Path, baseline: str) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        cache = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cache, dict) and cache.get("baseline") == baseline:
            cache.setdefault("results", {})
            return cache
    return {"baseline": baseline, "results": {}}
