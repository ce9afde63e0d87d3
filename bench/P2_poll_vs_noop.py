"""P2: the agents' no-change poll against the server's no-op route, same run, same clients.

A real ``fleetup serve`` (one process, SQLite) with enrolled IPCs answers ``GET
/device/v1/actions/next`` with the device credential and the ETag of its last answer in
``If-None-Match`` (what every agent sends every ``poll_interval_s``: a 304 with no body) and
``GET /healthz`` (no credential, no query). The load comes from a separate process
(``bench._http``, raw keep-alive sockets, about 30 µs of client CPU per request), so on a
2-core machine the client does not take the server's CPU; its CPU use is printed. The two
routes are measured in alternating rounds on the same connections, so the machine's noise
hits both. Figures: polls per second, and their ratio to the no-op route's rate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from bench._fleet import free_port
from bench._load import SECRET, Processes, enroll_fleet
from bench._report import Figure, emit
from fleetup.core.config import Settings

CLIENTS = 16  # keep-alive connections, one enrolled IPC each


def _etags(url: str, credentials: list[str]) -> list[str]:
    """Each device's current ETag, as its agent holds it after one poll."""
    found = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for credential in credentials:
            answer = client.get(
                "/device/v1/actions/next", headers={"Authorization": f"Bearer {credential}"}
            )
            answer.raise_for_status()
            found.append(answer.headers["etag"])
    return found


def measure(
    url: str,
    port: int,
    credentials: list[str],
    cpu_of_server: Callable[[], float],
    *,
    repeat: int,
    seconds: float,
) -> dict[str, Any]:
    """Run the alternating rounds in the client process; returns its JSON result."""
    etags = _etags(url, credentials)
    polls = [
        {"Authorization": f"Bearer {credential}", "If-None-Match": etag}
        for credential, etag in zip(credentials, etags, strict=True)
    ]
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "seconds": seconds,
        "repeat": repeat,
        "rounds": [
            {
                "name": "noop",
                "requests": ["GET /healthz"] * len(polls),
                "headers": [{}] * len(polls),
                "accept": [200],
            },
            {
                "name": "poll",
                "requests": ["GET /device/v1/actions/next"] * len(polls),
                "headers": polls,
                "accept": [304],
            },
        ],
    }
    client = subprocess.Popen(
        [sys.executable, "-m", "bench._http"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(json.dumps(spec))
    client.stdin.close()
    server_cpu: dict[str, float] = {"noop": 0.0, "poll": 0.0}
    began = 0.0
    last = ""
    for line in client.stdout:
        if line.startswith("mark "):
            _, moment, name = line.split()
            now = cpu_of_server()
            if moment == "begin":
                began = now
            else:
                server_cpu[name] += now - began
        else:
            last = line
    if client.wait() != 0 or not last:
        raise RuntimeError("the client process failed")
    result: dict[str, Any] = json.loads(last)
    result["server_cpu_s"] = server_cpu
    return result


def main() -> None:
    quick = "--quick" in sys.argv
    repeat, seconds = (2, 1.5) if quick else (5, 4.0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp) / "var", secret_key=SECRET)
        fleet = enroll_fleet(settings, CLIENTS)
        port = free_port()
        with Processes(settings, Path(tmp) / "logs") as processes:
            url = processes.serve(port)
            server = processes.running[0]
            result = measure(
                url,
                port,
                [login.credential for login in fleet],
                lambda: processes.cpu_seconds(server) or 0.0,
                repeat=repeat,
                seconds=seconds,
            )
    rounds = result["rounds"]
    for name in ("noop", "poll"):
        rates = ", ".join(f"{r['rate']:.0f}" for r in rounds[name])
        failures = sum(r["failures"] for r in rounds[name])
        answered = sum(r["answered"] for r in rounds[name])
        cpu_us = result["server_cpu_s"][name] / max(answered, 1) * 1e6
        print(
            f"# {name}: {rates} req/s per round; server CPU {cpu_us:.0f} µs per answer; "
            f"{failures} failed answers",
            flush=True,
        )
    print(
        f"# client process: {result['client_cpu_s']:.1f} s CPU in {result['client_wall_s']:.1f} s"
        f" ({CLIENTS} connections)",
        flush=True,
    )
    failures = sum(r["failures"] for name in rounds for r in rounds[name])
    poll = sum(r["answered"] for r in rounds["poll"]) / sum(r["seconds"] for r in rounds["poll"])
    ratios = [p["rate"] / n["rate"] for p, n in zip(rounds["poll"], rounds["noop"], strict=True)]
    emit(Figure("P2", "poll_rps", poll, "req/s", ">=", 2000))
    emit(Figure("P2", "poll_vs_noop", median(ratios), "ratio", ">=", 0.5))
    emit(Figure("P2", "poll_failed_answers", failures, "count", "<=", 0))


if __name__ == "__main__":
    main()
