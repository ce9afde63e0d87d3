"""What the scale-out scenario runs beside fleetup: a notification receiver, an MQTT broker and
a wake-up watcher, free ports, and waiting for a process to answer."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """An HTTP endpoint standing in for a notification channel: counts POSTs by path."""

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()
        lock = threading.Lock()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    posts[self.path] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def mqtt_broker(where: Path) -> Iterator[str]:
    """A broker of the test's own when mosquitto is installed, else the one CI names."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        url = os.environ.get("FLEETUP_TEST_MQTT_URL", "")
        if not url:
            pytest.skip("no MQTT broker: install mosquitto or set FLEETUP_TEST_MQTT_URL")
        yield url
        return
    port = free_port()
    with (where / "mosquitto.log").open("wb") as log:
        process = subprocess.Popen([binary, "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (where / "mosquitto.log").read_text()
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class WakeWatcher:
    """Subscribes to every device's wake topic and counts the messages per topic."""

    def __init__(self, url: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        host, port = url.removeprefix("mqtt://").split(":")
        self.topics: Counter[str] = Counter()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe("fleetup/devices/+/wake", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, message: self.topics.update([message.topic])
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.subscribed.wait(10), "could not subscribe to the wake topics"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{log.read_text()}")
        time.sleep(0.1)
