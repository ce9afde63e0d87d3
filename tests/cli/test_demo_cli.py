"""``fleetup demo``: what a newcomer runs first, started as a separate process.

It is started outside the repository, with its own state directory and port, and must load
the sample fleet, serve, and move the campaign on simulated time until it is stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fleetup.cli import app

FLEETUP = Path(sys.executable).parent / "fleetup"
# Simulated seconds per real second: fast enough that the first waves start within seconds.
SPEED = "100000000"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = _free_port()
    log = tmp_path / "demo.log"
    env = {
        **os.environ,
        "FLEETUP_VAR_DIR": str(tmp_path / "var"),
        "FLEETUP_PORT": str(port),
        "FLEETUP_SECRET_KEY": "test-secret-key-for-the-demo",
        "COLUMNS": "200",
    }
    env.pop("FLEETUP_DATABASE_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FLEETUP), "demo", "--speed", SPEED],
            cwd=tmp_path,  # not the repository: the sample inventory is found all the same
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # As in a terminal, where Ctrl-C interrupts: a test run started in the background
            # of a shell would hand the demo SIGINT ignored, and Python keeps it ignored.
            preexec_fn=_interruptible,
        )
    try:
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait(
    what: str, check: Callable[[], bool], process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 240
    while True:
        try:
            if check():
                return
        except httpx.TransportError:
            pass  # not serving yet
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what}; the demo printed:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def test_demo_serves_the_sample_fleet_and_moves_its_campaign_until_interrupted(
    demo: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, process, log = demo
    _wait(
        "the demo did not answer /healthz",
        lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
        process,
        log,
    )
    printed = log.read_text()
    assert "Sample fleet from" in printed and "90 machines" in printed
    assert "manager-demo-1" in printed  # the demo accounts' table
    assert f"open {url}" in printed

    with httpx.Client(base_url=url, timeout=10) as manager:
        signed_in = manager.post(
            "/api/v1/auth/login", json={"username": "manager", "password": "manager-demo-1"}
        )
        assert signed_in.status_code == 200, signed_in.text
        (campaign,) = manager.get("/api/v1/campaigns").json()

        def upgraded() -> int:
            waves = manager.get(f"/api/v1/campaigns/{campaign['id']}").json()["waves"]
            return sum(wave["counts"]["succeeded"] for wave in waves)

        _wait("no machine was upgraded", lambda: upgraded() > 0, process, log)
        first = upgraded()
        _wait("the campaign stopped moving", lambda: upgraded() > first, process, log)

        page = manager.get(f"/campaigns/{campaign['id']}")
        assert page.status_code == 200
        assert "D1" in page.text and "E3" in page.text

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) in (0, 130), log.read_text()


def test_a_missing_inventory_file_is_named_and_nothing_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETUP_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FLEETUP_SECRET_KEY", "test-secret-key-for-the-demo")
    monkeypatch.setenv("COLUMNS", "200")
    outcome = CliRunner().invoke(
        app, ["demo", "--no-serve", "--inventory", str(tmp_path / "missing.csv")]
    )
    assert outcome.exit_code == 2
    assert "--inventory" in outcome.output and "does not exist" in outcome.output
    assert not (tmp_path / "var").exists()
