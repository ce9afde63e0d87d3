"""Running package hooks and self-tests: the agent's one seam to child processes.

Commands are argument lists (no shell); a string is split like a POSIX shell would (on
Windows it is passed as it is). The argument ``{python}`` is replaced by the interpreter
running the agent, so a package can ship Python hook scripts that work on Linux and on a
Windows embeddable Python alike. A command that runs past its timeout is killed together with
the processes it started (its own process group on POSIX, ``taskkill /T`` on Windows).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PYTHON_PLACEHOLDER = "{python}"


@dataclass(frozen=True)
class CommandResult:
    """How a command ended; ``returncode`` is ``None`` when it was killed for its timeout."""

    command: list[str]
    returncode: int | None
    output: str
    duration_s: float

    @property
    def ok(self) -> bool:
        """Whether it exited 0 in time."""
        return self.returncode == 0


def as_argv(command: str | list[str]) -> list[str]:
    """A hook entry as an argument list, with ``{python}`` replaced.

    Raises:
        ValueError: the entry is neither a string nor a list of strings.
    """
    if isinstance(command, str):
        argv = shlex.split(command, posix=os.name != "nt") if os.name != "nt" else [command]
    elif isinstance(command, list) and all(isinstance(part, str) for part in command):
        argv = list(command)
    else:
        raise ValueError(f"a command must be a string or a list of strings: {command!r}")
    if not argv:
        raise ValueError("a command is empty")
    return [sys.executable if part == PYTHON_PLACEHOLDER else part for part in argv]


def run_command(
    command: list[str], *, cwd: Path, env: Mapping[str, str], timeout_s: float
) -> CommandResult:
    """Run ``command`` and collect its output (stdout and stderr together).

    Args:
        command: the argument list.
        cwd: the working folder.
        env: variables added to the agent's own environment.
        timeout_s: seconds before it is killed.

    Returns:
        Its exit code (``None`` on timeout; 127 when it cannot be started) and output.
    """
    started = time.monotonic()
    full_env = {**os.environ, **env}
    extra: dict[str, object] = {}
    if os.name == "nt":
        extra["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        extra["start_new_session"] = True
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **extra,  # type: ignore[call-overload]
        )
    except OSError as e:
        return CommandResult(command, 127, f"cannot start: {e}", time.monotonic() - started)
    try:
        output, _ = process.communicate(timeout=max(timeout_s, 0.001))
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        try:
            output, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            output = b""
        returncode = None
    text = output.decode("utf-8", errors="replace") if output else ""
    return CommandResult(command, returncode, text, time.monotonic() - started)


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    if os.name == "nt":
        with contextlib.suppress(OSError):
            subprocess.run(
                ["taskkill", "/T", "/F", "/PID", str(process.pid)],
                capture_output=True,
                check=False,
                timeout=10,
            )
        process.kill()
        return
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()
