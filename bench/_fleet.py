"""Shared set-up for the agent benchmarks (A1-A4): a real server, packages and site data.

:class:`LiveServer` is a real ``fleetup serve`` subprocess on a free 127.0.0.1 port over a
temporary ``FLEETUP_VAR_DIR`` loaded with ``fleetup demo --no-serve``; the CLI (``release
add``, ``keys export-root``, ``device enroll-token``, ``user add --token``) prepares what the
device API needs, exactly as an operator would.
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLEETUP = str(BIN / "fleetup")
FLEETUP_AGENT = str(BIN / "fleetup-agent")
MB = 1 << 20


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Wait until ``url`` answers 200, or fail when ``process`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the process for {url} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up within {seconds:.0f} s")
        time.sleep(0.1)


class LiveServer:
    """``fleetup serve`` over a demo var dir in ``tmp`` (a context manager)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.var_dir = tmp / "var"
        self.var_dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "FLEETUP_VAR_DIR": str(self.var_dir),
            "FLEETUP_PORT": str(self.port),
            "FLEETUP_BASE_URL": self.url,
        }
        self.env.pop("FLEETUP_CONFIG", None)
        self.env.pop("FLEETUP_DATABASE_URL", None)
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None

    def cli(self, *args: str, **extra_env: str) -> str:
        done = subprocess.run(
            [FLEETUP, *args],
            cwd=REPO,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"fleetup {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def __enter__(self) -> LiveServer:
        self.cli("demo", "--no-serve")
        self._log = (self.tmp / "server.log").open("wb")
        self._process = subprocess.Popen(
            [FLEETUP, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.tmp,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"{self.url}/healthz", self._process)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    def manager_token(self) -> str:
        out = self.cli(
            "user",
            "add",
            "bench-manager",
            "--role",
            "manager",
            "--token",
            "bench",
            FLEETUP_PASSWORD="bench-password-1",
        )
        return out.rsplit(": ", 1)[-1].strip()

    def first_serial(self, token: str) -> str:
        answer = httpx.get(
            f"{self.url}/api/v1/machines?limit=1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["items"][0]["serial"])

    def add_release(self, package: Path, version: str) -> dict[str, str | int]:
        """``fleetup release add``; returns ``{sha256, length, target}``."""
        out = " ".join(self.cli("release", "add", str(package), "--version", version).split())
        target = out.split("target ", 1)[1].split(",", 1)[0]
        length = int(out.split(", ", 1)[1].split(" bytes", 1)[0])
        sha256 = out.rsplit("sha256 ", 1)[1].split()[0]
        return {"target": target, "length": length, "sha256": sha256}

    def enrollment_token(self, serial: str) -> str:
        out = " ".join(self.cli("device", "enroll-token", serial).split())
        return out.rsplit(": ", 1)[-1].strip()

    def enroll(self, serial: str) -> str:
        """Enroll ``serial`` over ``POST /device/v1/enroll``; returns the device credential."""
        answer = httpx.post(
            f"{self.url}/device/v1/enroll",
            json={
                "enrollment_token": self.enrollment_token(serial),
                "serial": serial,
                "hardware": {"hostname": "bench", "os": "linux"},
            },
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["credential"])


def make_package(
    path: Path, *, version: str, payload_bytes: int, hooks: dict[str, object] | None = None
) -> Path:
    """A release package: ``manifest.json`` and ``payload.bin`` of random bytes.

    A plain (uncompressed) tar: ``release add`` and the agent read any tar compression, and
    random bytes would not shrink anyway.
    """
    manifest = json.dumps({"version": version, "models": [], "os": [], "hooks": hooks or {}})
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(manifest.encode()))
        info = tarfile.TarInfo("payload.bin")
        info.size = payload_bytes
        info.mode = 0o644
        tar.addfile(info, _RandomReader(payload_bytes))
    return path


class _RandomReader:
    def __init__(self, size: int) -> None:
        self._left = size

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        self._left -= size
        return os.urandom(size)


#: Byte -> character table for CSV-like text: digits, separators and line ends.
_CSV = ((b"0123456789" * 3 + b",,,,.\n-:") * 8)[:256]


def make_site_data(root: Path, total_bytes: int, *, seed: int = 7) -> int:
    """Fill ``root`` with ~``total_bytes`` of machine data; returns the bytes written.

    About 70 % is compressible text (CSV-like logs and counters, recipe text files, many of
    them small), 30 % random binary (images, firmware dumps).
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = 0
    index = 0
    words = b"flour sugar spindle feed rate alarm tool change recipe temperature ok ".split()
    while written < total_bytes:
        left = total_bytes - written
        kind = rng.random()
        folder = root / ("logs", "recipes", "images", "counters")[index % 4] / f"{index // 40:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        if kind < 0.55:
            size = min(left, rng.randint(1, 8) * MB)
            data = os.urandom(size).translate(_CSV)
            name = f"log-{index:05d}.csv"
        elif kind < 0.70:
            size = min(left, rng.randint(1, 64) * 1024)
            line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
            data = (line * (size // len(line) + 1))[:size]
            name = f"recipe-{index:05d}.txt"
        else:
            size = min(left, rng.randint(1, 6) * MB)
            data = os.urandom(size)
            name = f"blob-{index:05d}.bin"
        (folder / name).write_bytes(data)
        written += len(data)
        index += 1
    return written
