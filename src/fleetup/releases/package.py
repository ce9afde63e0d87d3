"""Checking an IPC program package before it is stored: the same rules the agent applies.

A package is a tar (any compression) or zip with ``manifest.json`` at its top (see
docs/agent.md "The package format"). The server refuses what the agent would refuse later, so
a bad package is caught at ``fleetup release add`` and never reaches a machine.
"""

from __future__ import annotations

import json
import re
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from fleetup.core.errors import FieldProblem, InvalidInput

MANIFEST = "manifest.json"
HOOK_PHASES = ("pre_install", "migrate_data", "self_test")
OS_NAMES = ("linux", "windows")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def _refuse(path: Path, field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{path.name} is not a valid IPC program package: {message}",
        [FieldProblem(field, message)],
    )


def _check_entry(path: Path, name: str) -> None:
    pure = PurePosixPath(name)
    if (
        name.startswith(("/", "\\"))
        or "\\" in name
        or ".." in pure.parts
        or re.match(r"[A-Za-z]:", name)
    ):
        raise _refuse(path, "entries", f"entry {name!r} has an unsafe path")


def _read(path: Path) -> bytes:
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    _check_entry(path, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise _refuse(path, "entries", f"entry {info.filename!r} is a link")
                return archive.read(MANIFEST)
        with tarfile.open(path, "r:*") as tar:
            manifest: bytes | None = None
            for member in tar.getmembers():
                _check_entry(path, member.name)
                if not (member.isfile() or member.isdir()):
                    raise _refuse(path, "entries", f"entry {member.name!r} is a link or device")
                if member.name in (MANIFEST, f"./{MANIFEST}") and member.isfile():
                    extracted = tar.extractfile(member)
                    manifest = extracted.read() if extracted else None
            if manifest is None:
                raise KeyError(MANIFEST)
            return manifest
    except KeyError:
        raise _refuse(path, "manifest", f"there is no {MANIFEST} at its top") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        raise _refuse(path, "file", f"it is not a readable tar or zip ({error})") from error


def _check_hooks(path: Path, hooks: Any) -> None:
    if not isinstance(hooks, dict):
        raise _refuse(path, "manifest.hooks", "hooks must be an object")
    for phase, commands in hooks.items():
        where = f"manifest.hooks.{phase}"
        if phase not in HOOK_PHASES:
            raise _refuse(path, where, f"unknown hook {phase!r}; use {', '.join(HOOK_PHASES)}")
        if not isinstance(commands, list):
            raise _refuse(path, where, "must be a list of commands")
        for command in commands:
            argv_ok = (
                isinstance(command, list)
                and command
                and all(isinstance(part, str) for part in command)
            )
            if not (argv_ok or (isinstance(command, str) and command.strip())):
                raise _refuse(path, where, f"{command!r} is not a command")


def read_manifest(path: Path) -> dict[str, Any]:
    """Return the checked manifest of the package at ``path``.

    Raises:
        InvalidInput: not a tar or zip, unsafe entries, or a missing or invalid manifest;
            the message names the problem.
    """
    raw = _read(path)
    try:
        manifest = json.loads(raw)
    except ValueError as error:
        raise _refuse(path, "manifest", f"{MANIFEST} is not valid JSON ({error})") from error
    if not isinstance(manifest, dict):
        raise _refuse(path, "manifest", f"{MANIFEST} must hold an object")
    version = manifest.get("version")
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise _refuse(
            path,
            "manifest.version",
            f"version {version!r} must be letters, digits and ._+- (at most 64)",
        )
    for name in ("models", "os"):
        value = manifest.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _refuse(path, f"manifest.{name}", f"{name} must be a list of strings")
    unknown_os = [v for v in manifest.get("os", []) if v not in OS_NAMES]
    if unknown_os:
        raise _refuse(path, "manifest.os", f"unknown OS {unknown_os}; use linux or windows")
    _check_hooks(path, manifest.get("hooks", {}))
    return manifest


def target_name(version: str, path: Path) -> str:
    """The TUF target name of a release: ``ipc-<version>`` with the package's suffix."""
    suffix = ".zip" if zipfile.is_zipfile(path) else ".tar.gz"
    return f"ipc-{version}{suffix}"
