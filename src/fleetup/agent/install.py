"""Installing a package into a versioned folder and switching to it with one rename.

Layout under ``install_root``::

    versions/<version>/      one folder per installed version (the package, unpacked)
    current                  a small text file naming the version that runs
    previous                 the version that ran before, kept for rollback

A package is a ``.tar.gz`` (or any tar) or ``.zip`` with ``manifest.json`` at its top::

    {"version": "2.0.0", "models": ["XK-200"], "os": ["linux", "windows"],
     "hooks": {"pre_install": [cmd, ...], "migrate_data": [...], "self_test": [...]}}

where each ``cmd`` is a list of arguments (``"{python}"`` is the agent's interpreter) or a
string. :func:`unpack` refuses absolute paths, ``..``, links and device entries, unpacks into
a temporary folder and renames it into place, so ``versions/<version>`` is complete or absent.
:func:`switch` writes ``previous`` and then ``current``, each with ``os.replace``; no symlinks,
so it works the same on Windows. :func:`roll_back` points ``current`` at ``previous`` again.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from fleetup.agent._internal.files import atomic_write_text, fsync_dir, tail
from fleetup.agent._internal.process import CommandResult, as_argv, run_command
from fleetup.agent.errors import HookFailed, PackageRejected

MANIFEST = "manifest.json"
HOOK_PHASES = ("pre_install", "migrate_data", "self_test")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


@dataclass(frozen=True)
class PackageManifest:
    """What a package says about itself."""

    version: str
    models: tuple[str, ...] = ()
    os: tuple[str, ...] = ()
    hooks: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)

    def commands(self, phase: str) -> list[list[str]]:
        """The argument lists of one hook phase (``{python}`` already replaced)."""
        return [list(argv) for argv in self.hooks.get(phase, ())]


def parse_manifest(raw: Any) -> PackageManifest:
    """Check a decoded ``manifest.json``.

    Raises:
        PackageRejected: a field is missing or has the wrong type.
    """
    if not isinstance(raw, dict):
        raise PackageRejected("manifest.json must hold an object")
    version = raw.get("version")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise PackageRejected(f"manifest.json: version {version!r} is not a plain version name")
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("models", "os"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PackageRejected(f"manifest.json: {name} must be a list of strings")
        lists[name] = tuple(value)
    hooks_raw = raw.get("hooks", {})
    if not isinstance(hooks_raw, dict):
        raise PackageRejected("manifest.json: hooks must be an object")
    hooks: dict[str, tuple[tuple[str, ...], ...]] = {}
    for phase, commands in hooks_raw.items():
        if phase not in HOOK_PHASES:
            raise PackageRejected(f"manifest.json: unknown hook {phase!r}")
        if not isinstance(commands, list):
            raise PackageRejected(f"manifest.json: hooks.{phase} must be a list of commands")
        try:
            hooks[phase] = tuple(tuple(as_argv(command)) for command in commands)
        except ValueError as e:
            raise PackageRejected(f"manifest.json: hooks.{phase}: {e}") from e
    return PackageManifest(version, lists["models"], lists["os"], hooks)


def read_manifest(package: Path) -> PackageManifest:
    """Read ``manifest.json`` from a package without unpacking it.

    Raises:
        PackageRejected: not a tar or zip, or no valid manifest.
    """
    try:
        if zipfile.is_zipfile(package):
            with zipfile.ZipFile(package) as archive:
                data = archive.read(MANIFEST)
        else:
            with tarfile.open(package, "r:*") as archive:
                member = archive.extractfile(MANIFEST)
                if member is None:
                    raise KeyError(MANIFEST)
                data = member.read()
        return parse_manifest(json.loads(data))
    except KeyError:
        raise PackageRejected(f"{package.name} has no {MANIFEST} at its top") from None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError) as e:
        raise PackageRejected(f"{package.name} is not a readable tar or zip: {e}") from e


def check_fits(manifest: PackageManifest, *, model: str | None) -> None:
    """Refuse a package made for another machine model or operating system.

    Raises:
        PackageRejected: the model or OS is not listed (an empty list allows any).
    """
    if manifest.models and model is not None and model not in manifest.models:
        raise PackageRejected(f"package is for models {list(manifest.models)}, not {model}")
    system = platform.system().lower()
    if manifest.os and system not in manifest.os:
        raise PackageRejected(f"package is for {list(manifest.os)}, not {system}")


def version_dir(install_root: Path, version: str) -> Path:
    """The folder of one installed version."""
    return install_root / "versions" / version


def unpack(package: Path, install_root: Path, version: str, *, fresh: bool = False) -> Path:
    """Unpack ``package`` into ``versions/<version>``; a no-op when it is already there.

    Args:
        fresh: unpack again even when the folder exists (a reinstall); the new copy is
            complete before it replaces the old one, and the old one is then removed.

    Raises:
        PackageRejected: an entry is unsafe (absolute, ``..``, link, device) or unreadable.
    """
    final = version_dir(install_root, version)
    if final.is_dir() and not fresh:
        return final
    staging = final.with_name(f".{version}.unpacking")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(package):
            _unpack_zip(package, staging)
        else:
            _unpack_tar(package, staging)
    except PackageRejected:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackageRejected(f"{package.name} cannot be unpacked: {e}") from e
    if final.is_dir():
        # A crash between the two renames leaves no version folder: the next run unpacks again.
        replaced = final.with_name(f".{version}.replaced")
        shutil.rmtree(replaced, ignore_errors=True)
        final.replace(replaced)
        staging.replace(final)
        shutil.rmtree(replaced, ignore_errors=True)
    else:
        staging.replace(final)
    fsync_dir(final.parent)
    return final


def current_version(install_root: Path) -> str | None:
    """The version ``current`` names, or ``None`` before the first install."""
    return _read_pointer(install_root / "current")


def previous_version(install_root: Path) -> str | None:
    """The version ``previous`` names, or ``None``."""
    return _read_pointer(install_root / "previous")


def switch(install_root: Path, version: str) -> str | None:
    """Make ``version`` current, keeping the old one as ``previous``; safe to repeat.

    Returns:
        The version that was current before (``previous`` after the call).

    Raises:
        PackageRejected: ``versions/<version>`` does not exist.
    """
    if not version_dir(install_root, version).is_dir():
        raise PackageRejected(f"version {version} is not unpacked")
    old = current_version(install_root)
    if old == version:
        return previous_version(install_root)
    if old is not None:
        atomic_write_text(install_root / "previous", old + "\n")
    atomic_write_text(install_root / "current", version + "\n")
    return old


def roll_back(install_root: Path, *, to: str | None) -> str | None:
    """Point ``current`` back at ``to`` (the version before the upgrade); safe to repeat.

    Args:
        install_root: the install root.
        to: the version to run again; ``None`` when there was none (``current`` is removed).

    Returns:
        The version now current.
    """
    if to is None:
        (install_root / "current").unlink(missing_ok=True)
        fsync_dir(install_root)
        return None
    if current_version(install_root) != to:
        atomic_write_text(install_root / "current", to + "\n")
    return to


def hook_env(
    *,
    install_root: Path,
    version: str,
    previous: str | None,
    data_dirs: list[Path],
    work_dir: Path,
    backup_archive: str | None,
) -> dict[str, str]:
    """The environment hooks and self-tests see (documented in docs/agent.md)."""
    return {
        "FLEETUP_VERSION": version,
        "FLEETUP_PREVIOUS_VERSION": previous or "",
        "FLEETUP_INSTALL_ROOT": str(install_root),
        "FLEETUP_VERSION_DIR": str(version_dir(install_root, version)),
        "FLEETUP_DATA_DIRS": os.pathsep.join(str(d) for d in data_dirs),
        "FLEETUP_WORK_DIR": str(work_dir),
        "FLEETUP_BACKUP_ARCHIVE": backup_archive or "",
    }


def run_hooks(
    phase: str,
    manifest: PackageManifest,
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
) -> list[CommandResult]:
    """Run one hook phase's commands in order, stopping at the first failure.

    Returns:
        The result of every command run.

    Raises:
        HookFailed: a command exited non-zero or timed out.
    """
    results: list[CommandResult] = []
    for argv in manifest.commands(phase):
        result = run_command(argv, cwd=cwd, env=env, timeout_s=timeout_s)
        results.append(result)
        if not result.ok:
            raise HookFailed(phase, argv, result.returncode, tail(result.output))
    return results


def _safe_name(name: str) -> PurePosixPath:
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise PackageRejected(f"unsafe entry {name!r}: absolute or Windows path")
    path = PurePosixPath(name)
    if any(part == ".." for part in path.parts):
        raise PackageRejected(f"unsafe entry {name!r}: leaves the package folder")
    return path


def _unpack_zip(package: Path, staging: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        infos = archive.infolist()
        for info in infos:
            _safe_name(info.filename)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise PackageRejected(f"unsafe entry {info.filename!r}: a symbolic link")
        for info in infos:
            target = staging / _safe_name(info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            mode = (info.external_attr >> 16) & 0o777
            if mode & 0o100:
                target.chmod(mode | 0o600)


def _unpack_tar(package: Path, staging: Path) -> None:
    with tarfile.open(package, "r:*") as archive:
        members = archive.getmembers()
        for member in members:
            _safe_name(member.name)
            if not (member.isfile() or member.isdir()):
                raise PackageRejected(f"unsafe entry {member.name!r}: not a file or folder")
        archive.extractall(staging, members=members, filter="data")


def _read_pointer(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None
