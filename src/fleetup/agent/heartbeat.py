"""Heartbeats: a small ``POST /device/v1/heartbeat`` every ``agent.heartbeat_interval_s``.

Each heartbeat says which version runs, which link reached the server and how the machine
is (free disk, uptime, load, and any data anomalies ``integrity.py`` finds). A link the
server moved to 4G (``work_dir/link.json``) is used and reported as ``4g``.
The outcome of the last one is kept in ``work_dir/heartbeat.json``
for ``fleetup-agent status``. :class:`HeartbeatThread` sends them in the background while an
upgrade step runs, with its own :class:`~fleetup.agent.transport.Transport`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetup.agent._internal.clock import Clock, SystemClock, iso
from fleetup.agent._internal.files import atomic_write_json
from fleetup.agent.errors import AgentError
from fleetup.agent.integrity import anomalies
from fleetup.agent.network import apply_link_state
from fleetup.agent.transport import Transport

log = logging.getLogger(__name__)


def health(work_dir: Path) -> dict[str, Any]:
    """Free disk (bytes, where the agent works), uptime (s) and 1-minute load, where known."""
    facts: dict[str, Any] = {"disk_free": None, "uptime": None, "load": None}
    with contextlib.suppress(OSError):
        facts["disk_free"] = shutil.disk_usage(work_dir).free
    facts["uptime"] = _uptime()
    if hasattr(os, "getloadavg"):
        with contextlib.suppress(OSError):
            facts["load"] = round(os.getloadavg()[0], 2)
    return facts


def send_heartbeat(
    transport: Transport,
    *,
    version: str | None,
    work_dir: Path,
    state_file: Path,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Send one heartbeat and record its outcome in ``state_file``.

    Returns:
        What was recorded: ``{at, ok, link, version, error}``.
    """
    now = iso((clock or SystemClock()).now())
    apply_link_state(transport, work_dir)
    facts = health(work_dir)
    try:
        found = anomalies(work_dir)
    except Exception:  # the anomaly check must never cost the heartbeat
        log.exception("data anomaly check failed")
        found = []
    if found:
        facts["anomalies"] = found
    body = {"at": now, "version": version, "link": transport.link, "health": facts}
    record: dict[str, Any] = {"at": now, "version": version}
    try:
        transport.post_json("/device/v1/heartbeat", body)
        record.update(ok=True, link=transport.link, error=None)
    except AgentError as e:
        record.update(ok=False, link=None, error=str(e))
    try:
        atomic_write_json(state_file, record)
    except OSError as e:
        log.warning("cannot record heartbeat: %s", e)
    return record


class HeartbeatThread(threading.Thread):
    """Sends a heartbeat every ``interval_s`` until :meth:`stop`.

    Args:
        beat: sends one heartbeat (see :func:`send_heartbeat`).
        interval_s: seconds between heartbeats.
    """

    def __init__(self, beat: Callable[[], object], interval_s: float) -> None:
        super().__init__(name="fleetup-heartbeat", daemon=True)
        self._beat = beat
        self._interval_s = interval_s
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._beat()
            except Exception:  # a heartbeat must never stop the agent
                log.exception("heartbeat failed")
            self._stopped.wait(self._interval_s)

    def stop(self) -> None:
        """Stop after the current heartbeat."""
        self._stopped.set()


def _uptime() -> float | None:
    proc = Path("/proc/uptime")
    if proc.exists():
        try:
            return float(proc.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    if os.name == "nt":
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        kernel32.GetTickCount64.restype = ctypes.c_uint64
        return float(kernel32.GetTickCount64()) / 1000.0
    return None
