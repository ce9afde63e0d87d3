"""A2: bytes sent again when a package download is cut halfway and resumed.

The agent's resuming fetcher (:class:`fleetup.agent._internal.fetcher.ServerFetcher`, the one
``download_release`` hands to python-tuf) fetches a target through the agent's
:class:`~fleetup.agent.transport.Transport` from a small threaded ``http.server`` on
127.0.0.1 that supports ``Range: bytes=N-``, counts every body byte it writes, and cuts the
connection after half the file on the first request. The figure is the bytes served beyond
the file size, as a percentage of it (0 = nothing sent twice). The file received is checked
byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench._fleet import MB
from bench._report import Figure, emit
from fleetup.agent._internal.fetcher import BASE, ServerFetcher
from fleetup.agent.transport import Transport

TARGET = "/device/v1/tuf/targets/ipc-9.0.0.tar.gz"


class _Cutting(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: bytes, cut_after: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.data = data
        self.cut_after = cut_after
        self.served = 0
        self.requests = 0
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Cutting
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        if self.path != TARGET:
            self.send_error(404)
            return
        data = self.server.data
        with self.server.lock:
            self.server.requests += 1
            first = self.server.requests == 1
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        end = min(len(data), start + self.server.cut_after) if first else len(data)
        view = memoryview(data)
        position = start
        while position < end:
            step = min(1 << 16, end - position)
            self.wfile.write(view[position : position + step])
            with self.server.lock:
                self.server.served += step
            position += step
        if first:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)


def main() -> None:
    quick = "--quick" in sys.argv
    size = (20 if quick else 200) * MB
    data = os.urandom(size)
    server = _Cutting(data, cut_after=size // 2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-a2-") as tmp:
            transport = Transport(
                primary_url=f"http://127.0.0.1:{server.server_address[1]}",
                credential="bench",
                retries=2,
                backoff_s=0,
                timeout_s=30,
            )
            fetcher = ServerFetcher(transport, max_resumes=3)
            fetcher.part_file = Path(tmp) / "ipc-9.0.0.tar.gz.part"
            digest = hashlib.sha256()
            received = 0
            for chunk in fetcher.fetch(BASE + TARGET):
                digest.update(chunk)
                received += len(chunk)
    finally:
        server.shutdown()
        server.server_close()
    if received != size or digest.hexdigest() != hashlib.sha256(data).hexdigest():
        raise RuntimeError(f"the resumed download differs: {received} of {size} bytes")
    if server.requests < 2:
        raise RuntimeError("the connection was never cut")
    resent = (server.served - size) / size * 100
    print(
        f"# {server.requests} requests, {server.served} bytes served for a {size}-byte file",
        flush=True,
    )
    emit(Figure("A2", "resume_resent_bytes", resent, "%", "<", 1))


if __name__ == "__main__":
    main()
