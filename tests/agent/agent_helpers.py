"""Test helpers for the agent: a TUF repository, packages, and a fake device server.

The TUF repository is built with python-tuf's Metadata API and signed with ed25519 keys
(``CryptoSigner`` when pyca/cryptography is installed, otherwise a small pure-Python signer
over securesystemslib's vendored ed25519, which the agent's verifier also falls back to).
The fake server is a real threaded HTTP server implementing ``/device/v1`` in memory, with
Range support and a switch that cuts a target download after N bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
import zipfile
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

ROLES = ("root", "timestamp", "snapshot", "targets")


def make_signer() -> Signer:
    return CryptoSigner.generate_ed25519()


class TufRepo:
    """A TUF repository on disk: ``metadata/`` and ``targets/`` under ``base``."""

    def __init__(self, base: Path) -> None:
        self.metadata_dir = base / "metadata"
        self.targets_dir = base / "targets"
        self.metadata_dir.mkdir(parents=True)
        self.targets_dir.mkdir(parents=True)
        self.signers = {role: make_signer() for role in ROLES}
        expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        root = Root(expires=expiry, consistent_snapshot=True)
        for role in ROLES:
            root.add_key(self.signers[role].public_key, role)
        self.root = Metadata(root)
        self.targets = Metadata(Targets(expires=expiry))
        self.snapshot = Metadata(Snapshot(expires=expiry))
        self.timestamp = Metadata(Timestamp(expires=expiry))
        self._published = False
        self.publish()

    def root_bytes(self) -> bytes:
        return (self.metadata_dir / "1.root.json").read_bytes()

    def add_target(self, name: str, data: bytes) -> TargetFile:
        info = TargetFile.from_data(name, data, ["sha256"])
        self.targets.signed.targets[name] = info
        digest = hashlib.sha256(data).hexdigest()
        (self.targets_dir / f"{digest}.{name}").write_bytes(data)
        (self.targets_dir / name).write_bytes(data)
        return info

    def publish(self, *, expired_timestamp: bool = False, unsigned_targets: bool = False) -> None:
        if self._published:
            for md in (self.targets, self.snapshot, self.timestamp):
                md.signed.version += 1
        self.snapshot.signed.meta["targets.json"] = MetaFile(version=self.targets.signed.version)
        self.timestamp.signed.snapshot_meta = MetaFile(version=self.snapshot.signed.version)
        if expired_timestamp:
            self.timestamp.signed.expires = datetime.now(UTC).replace(microsecond=0) - timedelta(
                days=1
            )
        for role, md in (
            ("root", self.root),
            ("targets", self.targets),
            ("snapshot", self.snapshot),
            ("timestamp", self.timestamp),
        ):
            md.signatures.clear()
            if not (unsigned_targets and role == "targets"):
                md.sign(self.signers[role])
        if not self._published:
            (self.metadata_dir / "1.root.json").write_bytes(self.root.to_bytes())
        targets_version = self.targets.signed.version
        (self.metadata_dir / f"{targets_version}.targets.json").write_bytes(self.targets.to_bytes())
        snapshot_version = self.snapshot.signed.version
        (self.metadata_dir / f"{snapshot_version}.snapshot.json").write_bytes(
            self.snapshot.to_bytes()
        )
        (self.metadata_dir / "timestamp.json").write_bytes(self.timestamp.to_bytes())
        self._published = True


def make_package(
    path: Path,
    *,
    version: str,
    hooks: dict[str, list[Any]] | None = None,
    files: dict[str, str] | None = None,
    fmt: str = "tar.gz",
    extra_entries: dict[str, bytes] | None = None,
) -> bytes:
    """Write an IPC program package and return its bytes."""
    manifest = {"version": version, "models": [], "os": [], "hooks": hooks or {}}
    entries = {"manifest.json": json.dumps(manifest).encode()}
    entries.update({name: text.encode() for name, text in (files or {}).items()})
    entries.update(extra_entries or {})
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as archive:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    return path.read_bytes()


class FakeDeviceServer:
    """The fleetup server's ``/device/v1`` API, in memory, on a local port."""

    def __init__(self, repo: TufRepo) -> None:
        self.repo = repo
        self.lock = threading.Lock()
        self.credential = "cred-123"
        self.device_id = "dev-1"
        self.action: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []
        self.event_ids: set[str] = set()
        self.backups: dict[str, dict[str, Any]] = {}
        self.heartbeats: list[dict[str, Any]] = []
        self.registrations: list[dict[str, Any]] = []
        self.target_bytes_served = 0
        self.cut_target_after: int | None = None
        self.requests: list[tuple[str, str]] = []
        self.healthy = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeDeviceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def steps(self) -> list[tuple[str, str]]:
        return [(event["step"], event["status"]) for event in self.events]


def _make_handler(server: FakeDeviceServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {server.credential}":
                return True
            self._send(401, {"detail": "bad credential"})
            return False

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            with server.lock:
                server.requests.append(("GET", path))
            if path == "/healthz":
                self._send(200 if server.healthy else 503, {"ok": server.healthy})
                return
            if path.startswith("/device/v1/tuf/metadata/"):
                self._file(server.repo.metadata_dir / path.rsplit("/", 1)[1], target=False)
                return
            if path.startswith("/device/v1/tuf/targets/"):
                self._file(server.repo.targets_dir / path.rsplit("/", 1)[1], target=True)
                return
            if not self._authorized():
                return
            if path == "/device/v1/actions/next":
                body = {"action": server.action}
                etag = '"' + hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, None, {"ETag": etag})
                else:
                    self._send(200, body, {"ETag": etag})
                return
            match = re.fullmatch(r"/device/v1/backups/([\w-]+)", path)
            if match and match.group(1) in server.backups:
                record = server.backups[match.group(1)]
                self._send(200, {"received": len(record["data"]), "complete": record["complete"]})
                return
            self._send(404, {"detail": "not found"})

        def _file(self, file: Path, *, target: bool) -> None:
            if not file.is_file():
                self._send(404, {"detail": "no such file"})
                return
            data = file.read_bytes()
            start = 0
            status = 200
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if match:
                start = int(match.group(1))
                if start >= len(data):
                    self._send(416, None, {"Content-Range": f"bytes */{len(data)}"})
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = server.cut_target_after if target else None
            if cut is not None and cut < len(body):
                server.cut_target_after = None
                body = body[:cut]
                self.close_connection = True
            if target:  # counted before sending: the client may be done before this thread
                with server.lock:
                    server.target_bytes_served += len(body)
            self.wfile.write(body)
            self.wfile.flush()

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            raw = self._body()
            body = json.loads(raw) if raw else {}
            with server.lock:
                server.requests.append(("POST", path))
            if path == "/device/v1/enroll":
                self._send(200, {"device_id": server.device_id, "credential": server.credential})
                return
            if not self._authorized():
                return
            match = re.fullmatch(r"/device/v1/actions/([\w-]+)/events", path)
            if match:
                with server.lock:
                    duplicate = body["event_id"] in server.event_ids
                    if not duplicate:
                        server.event_ids.add(body["event_id"])
                        server.events.append(body)
                self._send(200, {"accepted": not duplicate, "duplicate": duplicate})
                return
            if path == "/device/v1/backups":
                backup_id = f"bk-{len(server.backups) + 1}"
                server.backups[backup_id] = {"meta": body, "data": bytearray(), "complete": False}
                self._send(200, {"backup_id": backup_id, "received": 0})
                return
            match = re.fullmatch(r"/device/v1/backups/([\w-]+)/complete", path)
            if match:
                record = server.backups[match.group(1)]
                digest = hashlib.sha256(record["data"]).hexdigest()
                if digest != record["meta"]["sha256"]:
                    self._send(422, {"detail": "sha256 mismatch"})
                    return
                record["complete"] = True
                self._send(200, {"complete": True, "received": len(record["data"])})
                return
            if path == "/device/v1/heartbeat":
                server.heartbeats.append(body)
                self._send(200, {"ok": True})
                return
            if path == "/device/v1/register":
                server.registrations.append(body)
                self._send(200, {"platform_credential": "platform-secret"})
                return
            self._send(404, {"detail": "not found"})

        def do_PUT(self) -> None:
            url = urlsplit(self.path)
            data = self._body()
            match = re.fullmatch(r"/device/v1/backups/([\w-]+)", url.path)
            if not match or not self._authorized():
                if match:
                    return
                self._send(404, {"detail": "not found"})
                return
            record = server.backups[match.group(1)]
            offset = int(parse_qs(url.query)["offset"][0])
            if offset != len(record["data"]):
                self._send(409, {"received": len(record["data"])})
                return
            record["data"] += data
            self._send(200, {"received": len(record["data"])})

    return Handler
