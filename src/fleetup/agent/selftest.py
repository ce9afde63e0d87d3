"""The function test (SOP chart 3, F and F1): the package's ``self_test`` commands.

Each command runs in the new version's folder with the hook environment; together they get
``agent.self_test_timeout_s`` (15 minutes by default, the SOP's budget). The first failure
raises :class:`~fleetup.agent.errors.SelfTestFailed`, which makes the runner roll back to the
previous version.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fleetup.agent._internal.files import tail
from fleetup.agent._internal.process import run_command
from fleetup.agent.errors import SelfTestFailed
from fleetup.agent.install import PackageManifest


def run_self_test(
    manifest: PackageManifest, *, cwd: Path, env: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """Run every ``self_test`` command within one overall time budget.

    Returns:
        Evidence: commands run, their exit codes and the tail of their output.

    Raises:
        SelfTestFailed: a command failed, or the budget ran out.
    """
    deadline = time.monotonic() + timeout_s
    ran: list[dict[str, Any]] = []
    for argv in manifest.commands("self_test"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SelfTestFailed(argv, None, "the self-test budget ran out before this command")
        result = run_command(argv, cwd=cwd, env=env, timeout_s=remaining)
        ran.append(
            {
                "command": argv,
                "returncode": result.returncode,
                "duration_s": round(result.duration_s, 3),
                "output_tail": tail(result.output, lines=10, limit=1000),
            }
        )
        if not result.ok:
            raise SelfTestFailed(argv, result.returncode, tail(result.output))
    return {"commands": ran, "passed": len(ran)}
