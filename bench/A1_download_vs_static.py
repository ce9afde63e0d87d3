"""A1: downloading a release package through the device API against a static-file server.

One package file (200 MB of random payload, ``--quick`` 20 MB) is added with ``fleetup
release add`` to a real ``fleetup serve``; a device enrolled with a one-time token (``fleetup
device enroll-token`` + ``POST /device/v1/enroll``) downloads it from ``GET
/device/v1/blobs/{sha256}`` with its credential, and a ``python -m http.server`` subprocess
serves the same file from disk. Both are read with the same streaming httpx client code, in
alternating rounds, so the machine's noise hits both. The figure is the throughput ratio.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._fleet import MB, LiveServer, free_port, make_package, wait_http
from bench._report import Figure, emit


def _download(url: str, headers: dict[str, str]) -> tuple[int, float]:
    size = 0
    started = time.perf_counter()
    with (
        httpx.Client(headers=headers, timeout=60) as client,
        client.stream("GET", url) as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            size += len(chunk)
    return size, time.perf_counter() - started


def main() -> None:
    quick = "--quick" in sys.argv
    payload = (20 if quick else 200) * MB
    rounds = 3
    with tempfile.TemporaryDirectory(prefix="bench-a1-") as tmp_name:
        tmp = Path(tmp_name)
        static_dir = tmp / "static"
        static_dir.mkdir()
        package = make_package(
            static_dir / "ipc-9.0.0.tar.gz", version="9.0.0", payload_bytes=payload
        )
        with LiveServer(tmp) as server:
            release = server.add_release(package, "9.0.0")
            serial = server.first_serial(server.manager_token())
            credential = server.enroll(serial)
            port = free_port()
            static = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                cwd=static_dir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                static_url = f"http://127.0.0.1:{port}/{package.name}"
                wait_http(static_url.rsplit("/", 1)[0] + "/", static)
                api_url = f"{server.url}/device/v1/blobs/{release['sha256']}"
                api_headers = {"Authorization": f"Bearer {credential}"}
                length = int(release["length"])
                api_time = static_time = 0.0
                api_bytes = static_bytes = 0
                # One warm-up of each (page cache, first-request costs), then alternate rounds.
                _download(api_url, api_headers)
                _download(static_url, {})
                for index in range(rounds):
                    order = [("api", api_url, api_headers), ("static", static_url, {})]
                    if index % 2:
                        order.reverse()
                    for kind, url, headers in order:
                        size, elapsed = _download(url, headers)
                        if size != length:
                            raise RuntimeError(f"{kind}: got {size} bytes, expected {length}")
                        if kind == "api":
                            api_bytes, api_time = api_bytes + size, api_time + elapsed
                        else:
                            static_bytes, static_time = static_bytes + size, static_time + elapsed
            finally:
                static.terminate()
                static.wait(timeout=10)
    api_rate = api_bytes / api_time / MB
    static_rate = static_bytes / static_time / MB
    print(f"# device API {api_rate:.0f} MB/s, static {static_rate:.0f} MB/s", flush=True)
    emit(Figure("A1", "download_vs_static", api_rate / static_rate, "ratio", ">=", 0.80))


if __name__ == "__main__":
    main()
