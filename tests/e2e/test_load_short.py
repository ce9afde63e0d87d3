"""The short load run (``bench/L1_load_10k.py --quick``) as a test: 2,000 agents, no errors.

It runs the benchmark script itself, as ``make bench`` would, against the test database
(emptied first, as every database test does): two ``fleetup serve --no-worker`` processes and
a worker, 2,000 simulated agents polling every 30 s and heartbeating every 60 s (an agent's
defaults) and 20 of them reporting upgrade steps, for 90 s. Latency is not asserted here (CI
machines are shared and noisy); failed requests and step reports stored other than exactly
once are.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("FLEETUP_TEST_DATABASE_URL", "")
REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not POSTGRES_URL,
        reason="the load run uses two API processes on one database, which needs PostgreSQL: "
        "set FLEETUP_TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:5432/DB",
    ),
]


def _figures(output: str) -> dict[str, tuple[float, str]]:
    """``{name: (value, verdict)}`` from the script's ``BENCH`` lines."""
    found = {}
    for line in output.splitlines():
        if line.startswith("BENCH L1 "):
            parts = line.split()
            found[parts[2]] = (float(parts[3]), parts[-1])
    return found


def test_two_thousand_agents_for_ninety_seconds_get_no_failed_request() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETUP_")}
    env["FLEETUP_BENCH_DATABASE_URL"] = POSTGRES_URL
    done = subprocess.run(
        [sys.executable, "-m", "bench.L1_load_10k", "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    figures = _figures(done.stdout)
    assert figures["failed_requests"] == (0.0, "PASS"), done.stdout
    assert figures["step_reports_not_stored_once"] == (0.0, "PASS"), done.stdout
    assert "poll_p99" in figures, done.stdout
    polls = re.search(r"^# polls (\d+) ", done.stdout, re.MULTILINE)
    stored = re.search(r"(\d+) stored \((\d+) distinct\)", done.stdout)
    assert polls is not None and stored is not None, done.stdout
    assert int(polls.group(1)) >= 2_000  # every agent polled, most of them three times
    assert int(stored.group(1)) > 0  # the upgrading agents' step reports went through
