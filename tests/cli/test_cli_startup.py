"""The ``fleetup`` command loads the server, the PDF writer and the migrations only for the
commands that use them, so ``fleetup --help`` and the light commands start quickly (the
commands that serve are run by ``test_demo_cli``, ``tests/worker`` and ``tests/e2e``)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("fleetup.api.app", "fleetup.web", "fleetup.sim.runner", "uvicorn", "fpdf", "alembic")


def _loaded_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(json.loads(shown.stdout.splitlines()[-1]))


def test_the_command_starts_without_the_server_the_pdf_writer_or_the_migrations() -> None:
    loaded = _loaded_after("import fleetup.cli")
    assert not loaded & set(HEAVY)
