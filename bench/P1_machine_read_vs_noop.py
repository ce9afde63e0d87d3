"""P1: reading one machine through the API against the server's no-op route, same run.

A real ``fleetup serve`` (one process, SQLite, the 90-machine sample) answers
``GET /api/v1/machines/{serial}`` (token auth, a join over site and customer) and ``GET
/healthz`` (no database); the two are measured in alternating rounds with the same keep-alive
clients, so the machine's noise hits both. The figure is the ratio of their request rates.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench._report import Figure, emit

REPO = Path(__file__).resolve().parents[1]
FLEETUP = str(Path(sys.executable).with_name("fleetup"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rate(url: str, headers: dict[str, str], seconds: float, clients: int) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def work(index: int) -> None:
        with httpx.Client(headers=headers, timeout=10) as client:
            while time.monotonic() < stop:
                client.get(url).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def main() -> None:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        env = {**os.environ, "FLEETUP_VAR_DIR": tmp, "FLEETUP_PORT": str(port)}
        subprocess.run(
            [FLEETUP, "demo", "--no-serve"], cwd=REPO, env=env, check=True, capture_output=True
        )
        made = subprocess.run(
            [FLEETUP, "user", "add", "bench", "--role", "viewer", "--token", "bench"],
            env={**env, "FLEETUP_PASSWORD": "bench-password-1"},
            check=True,
            capture_output=True,
            text=True,
        )
        token = made.stdout.rsplit(": ", 1)[-1].strip()
        server = subprocess.Popen([FLEETUP, "serve"], cwd=REPO, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz").raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            headers = {"Authorization": f"Bearer {token}"}
            serial = httpx.get(f"{base}/api/v1/machines?limit=1", headers=headers).json()["items"][
                0
            ]["serial"]
            rounds, seconds = (2, 1.0) if quick else (5, 3.0)
            route = noop = 0.0
            for _ in range(rounds):
                noop += _rate(f"{base}/healthz", headers, seconds, clients=4)
                route += _rate(f"{base}/api/v1/machines/{serial}", headers, seconds, clients=4)
        finally:
            server.terminate()
            server.wait(timeout=10)
    emit(Figure("P1", "machine_read_rps", route / rounds, "req/s", ">=", 200))
    emit(Figure("P1", "machine_read_vs_noop", route / noop, "ratio", ">=", 0.30))


if __name__ == "__main__":
    main()
