"""A gate that parks a real ``fleetup-agent`` process at an exact moment, so a test can SIGKILL it.

Polling the journal from outside cannot catch states that last microseconds
(``backup_uploaded``, ``downloaded``, ``installed``), so the agent process itself is made to
stop there: :func:`gate_dir` writes a ``sitecustomize.py`` that, when ``FLEETUP_KILL_AT`` is
set, imports this module inside the agent and calls :func:`install_gate`. The gate wraps one
seam, and when the moment comes it writes ``FLEETUP_KILL_MARKER`` and sleeps; the test sees
the marker, checks the moment on disk or on the server, and sends SIGKILL. Nothing of the
agent's own behaviour is changed: the gate only waits.

Moments (``FLEETUP_KILL_AT``):

* ``state:<name>``: right after the journal has saved ``<name>`` (before its step runs);
* ``download_mid``: the package's ``.part`` file holds at least ``FLEETUP_KILL_BYTES``;
* ``upload_mid``: the server has acknowledged ``FLEETUP_KILL_CHUNKS`` backup chunks.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent


def gate_dir(where: Path) -> Path:
    """Write the ``sitecustomize.py`` that loads the gate; put the folder on PYTHONPATH."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if os.environ.get('FLEETUP_KILL_AT'):\n"
        f"    sys.path.insert(0, {str(HERE)!r})\n"
        "    import kill_helpers\n"
        "    kill_helpers.install_gate()\n"
    )
    return where


def _park(**facts: Any) -> None:
    marker = Path(os.environ["FLEETUP_KILL_MARKER"])
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **facts}))
    os.replace(tmp, marker)
    while True:  # wait for SIGKILL
        time.sleep(60)


def install_gate() -> None:
    """Wrap the seam that ``FLEETUP_KILL_AT`` names (runs inside the agent process)."""
    moment = os.environ["FLEETUP_KILL_AT"]
    if moment.startswith("state:"):
        from fleetup.agent.journal import Journal

        target = moment.removeprefix("state:")
        enter = Journal.enter

        def gated_enter(self: Journal, state: Any) -> None:
            enter(self, state)
            if self.state.value == target:
                _park(state=target)

        Journal.enter = gated_enter  # type: ignore[method-assign]
    elif moment == "download_mid":
        from fleetup.agent._internal.fetcher import ServerFetcher

        threshold = int(os.environ["FLEETUP_KILL_BYTES"])
        resumable = ServerFetcher._resumable

        def gated(self: ServerFetcher, path: str, part: Path) -> Iterator[bytes]:
            for chunk in resumable(self, path, part):
                yield chunk
                size = part.stat().st_size
                if size >= threshold:
                    _park(part=str(part), size=size)

        ServerFetcher._resumable = gated  # type: ignore[method-assign]
    elif moment == "upload_mid":
        from fleetup.agent.transport import Transport

        chunks = int(os.environ["FLEETUP_KILL_CHUNKS"])
        request = Transport.request
        puts = 0

        def gated_request(self: Transport, method: str, path: str, **kwargs: Any) -> Any:
            nonlocal puts
            response = request(self, method, path, **kwargs)
            if method == "PUT" and path.startswith("/device/v1/backups/"):
                puts += 1
                if puts >= chunks:
                    _park(backup=path.rsplit("/", 1)[-1], received=response.json()["received"])
            return response

        Transport.request = gated_request  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown FLEETUP_KILL_AT {moment!r}")


@contextlib.contextmanager
def serve(fleetup: Path, env: dict[str, str], cwd: Path) -> Iterator[str]:
    """``fleetup serve`` on a free 127.0.0.1 port, as in ``test_agent_upgrade``; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log_path = cwd / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(fleetup), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env | {"FLEETUP_BASE_URL": url},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text())
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def root_conftest(config: Any) -> Any:
    """``tests/conftest.py`` as pytest loaded it (``import conftest`` may find another one)."""
    wanted = HERE.parent / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == wanted:
            return plugin
    raise LookupError(f"{wanted} is not loaded")
