"""A virtual IPC: the agent's side of the device protocol, on simulated time.

It enrolls with its one-time token, then lives until the run ends: it polls ``actions/next``
with its ETag and reports a heartbeat every ``idle`` (a wake-up from the server, as the MQTT
nudge would give, makes it poll at once), answers remote diagnostics and the 4G fallback,
fetches the release blob with ``Range`` as soon as it sees an upgrade (downloading is allowed
at any time), and runs each upgrade it is given only inside its install window (a missed
window is left to the server, which books a new visit and queues a new deployment): backup (a
small real zstd archive, uploaded through the backup routes), download, install, network,
registration (``POST /register``) and function test, each with ``started`` and
``succeeded``/``failed`` reports stamped with the simulated time. Its ``Luck`` decides the
faults: an outage that keeps it off the network (until a technician's G/H when it needs one),
install failures (a retried one, then a final one: the SOP's M
reinstall loop), a hardware fault that fails the function test, a power cut in the middle of
a step (it restarts and reports ``started`` again), a slow link.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import zstandard

from fleetup.sim.faults import Luck
from fleetup.sim.loop import EventLoop, Signal, Until, Wait
from fleetup.sim.result import Api, SimResult, moment

OLD_VERSION = "1.9.0"
Steps = Generator[Wait, None, bool]


def backup_archive(serial: str, at: datetime) -> tuple[bytes, dict[str, Any]]:
    """A small real backup: a zstd-compressed tar of the machine's recipes and settings."""
    files = {
        "d0/recipes/main.txt": f"recipe of {serial}\n".encode() * 20,
        "d0/settings.json": json.dumps({"serial": serial, "spindle": 12000}).encode(),
    }
    manifest = {
        "format": "fleetup-backup/1",
        "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dirs": [{"prefix": "d0", "path": "/srv/machine/data"}],
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in files.items()
        },
        "skipped": [],
        "total_bytes": sum(len(data) for data in files.values()),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        entries = {**files, "fleetup-backup-manifest.json": json.dumps(manifest).encode()}
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(at.timestamp())
            archive.addfile(info, io.BytesIO(data))
    packed = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw.getvalue())
    return packed, manifest


@dataclass
class VirtualIpc:
    """One simulated IPC; ``life()`` is its process on the event loop."""

    serial: str
    luck: Luck
    api: Api
    loop: EventLoop
    result: SimResult
    enrollment_token: Callable[[str], str]
    end: datetime | None = None
    idle: timedelta = timedelta(days=2)
    credential: str = ""
    device_id: str = ""
    etag: str = ""
    action: dict[str, Any] | None = None
    outcome: str = "waiting"
    wake: Signal = field(default_factory=Signal)
    reconnected: Signal = field(default_factory=Signal)
    tests_done: Signal = field(default_factory=Signal)
    retest: Signal = field(default_factory=Signal)
    offline: bool = False
    tests_failed_once: bool = False
    first_install_at: datetime | None = None
    version: str = OLD_VERSION
    handled: set[str] = field(default_factory=set)
    remote: dict[str, Any] | None = None
    _events: int = 0
    _blob: bytes = b""

    # -- protocol calls ------------------------------------------------------------------

    def _token(self) -> str:
        return self.credential

    def enroll(self) -> bool:
        answer = self.api.call(
            "POST",
            "/device/v1/enroll",
            json={
                "enrollment_token": self.enrollment_token(self.serial),
                "serial": self.serial,
                "hardware": {"hostname": self.serial.lower(), "os": "linux", "cpus": 4},
            },
        )
        if answer.status_code != 200:
            self.outcome = "enroll_refused"
            return False
        body = answer.json()
        self.credential, self.device_id = body["credential"], body["device_id"]
        return True

    def heartbeat(self, version: str) -> None:
        self.api.call(
            "POST",
            "/device/v1/heartbeat",
            token=self._token(),
            json={
                "at": self._at(),
                "version": version,
                "link": "primary",
                "health": {"disk_free": 12_000_000_000, "uptime": 86400.0, "load": 0.3},
            },
        )

    def poll(self, *, use_etag: bool = True) -> dict[str, Any] | None:
        headers = {"If-None-Match": self.etag} if use_etag and self.etag else {}
        answer = self.api.call(
            "GET",
            "/device/v1/actions/next",
            token=self._token(),
            headers=headers,
            expect=(200, 304),
        )
        if answer.status_code == 304:
            return self.action
        self.etag = answer.headers.get("etag", "")
        action = answer.json().get("action")
        self.remote = action if action and action.get("kind") in REMOTE_STEPS else None
        self.action = action if action and action.get("kind") == "upgrade" else None
        return self.action

    def _at(self) -> str:
        return self.loop.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def report(
        self, step: str, status: str, action: dict[str, Any] | None = None, **evidence: Any
    ) -> None:
        action = action or self.action
        assert action is not None
        self._events += 1
        event_id = f"sim-{hashlib.sha1(self.serial.encode()).hexdigest()[:16]}-{self._events}"
        self.api.call(
            "POST",
            f"/device/v1/actions/{action['id']}/events",
            token=self._token(),
            json={
                "event_id": event_id,
                "step": step,
                "status": status,
                "at": self._at(),
                "evidence": evidence,
            },
        )

    # -- the process ---------------------------------------------------------------------

    def life(self, enroll_at: datetime) -> Generator[Wait, None, None]:
        yield enroll_at
        if not self.enroll():
            return
        self.heartbeat(self.version)
        while self.end is None or self.loop.now < self.end:
            action = self.poll_answering()
            if action is not None and action["id"] not in self.handled:
                self.handled.add(action["id"])
                yield from self._deployment()
                continue
            self.wake.reset()
            yield Until(self.wake, _at_midnight(self.loop.now + self.idle))
            if not self.offline:
                self.heartbeat(self.version)

    def _deployment(self) -> Generator[Wait, None, None]:
        """One queued upgrade: fetch at once, install inside the window only."""
        for signal in (self.tests_done, self.retest, self.reconnected):
            signal.reset()
        self.tests_failed_once = False
        yield from self._prefetch()
        if self.luck.outage_needs_technician and self.outcome == "waiting":
            self.offline = True
            self.result.faults["network_outage_on_site"] += 1
            yield self.reconnected
            self.offline = False
        elif self.luck.outage and self.outcome == "waiting":
            self.result.faults["network_outage"] += 1
            yield timedelta(minutes=self.luck.outage_minutes)
        window = (self.action or {}).get("install_window") or {}
        not_before, not_after = _moment(window.get("not_before")), _moment(window.get("not_after"))
        if not_before is not None and self.loop.now < not_before:
            yield not_before
        if self.poll_answering(use_etag=False) is None:
            self.outcome = "action_withdrawn"
            self.tests_done.fire()
            return
        if not_after is not None and self.loop.now >= not_after:
            self.outcome = "window_missed"
            self.result.faults["install_window_missed"] += 1
            self.tests_done.fire()
            return
        self.outcome = "upgrading"
        if not (yield from self._upgrade(not_before, not_after)):
            self.tests_done.fire()
            return
        self.version = str((self.action or {}).get("release", {}).get("version", self.version))
        self.heartbeat(self.version)

    def poll_answering(self, *, use_etag: bool = True) -> dict[str, Any] | None:
        """Poll, answering the remote actions that come first; returns the upgrade, if any."""
        action = self.poll(use_etag=use_etag)
        for _ in range(10):
            if self.remote is None:
                break
            self._answer_remote(self.remote)
            action = self.poll(use_etag=False)
        return action

    def _answer_remote(self, action: dict[str, Any]) -> None:
        """Remote diagnostics and the 4G fallback, as the agent answers them."""
        step = REMOTE_STEPS[action["kind"]]
        self.report(step, "started", action=action, attempt=1)
        if step == "diagnose":
            checks = [
                {"link": "primary", "reachable": {"ok": True, "status": 200}},
                {"link": "fallback", "reachable": {"ok": True, "status": 200}},
            ]
            self.report(
                step,
                "succeeded",
                action=action,
                attempt=1,
                checks=checks,
                link_in_use="primary",
                reachable=["primary", "fallback"],
            )
        else:
            self.report(
                step, "succeeded", action=action, attempt=1, link="4g", previous_link="primary"
            )

    def _prefetch(self) -> Generator[Wait, None, None]:
        release = (self.action or {}).get("release") or {}
        answer = self.api.call(
            "GET",
            f"/device/v1/blobs/{release.get('sha256', '')}",
            token=self._token(),
            headers={"Range": "bytes=0-"},
            expect=(200, 206),
        )
        self._blob = answer.content if answer.status_code in (200, 206) else b""
        yield self.luck.duration("download")

    def _timed(self, step: str, **evidence: Any) -> Steps:
        """One attempt of ``step``: started, the work, and (with a power cut) a restart."""
        attempt = 1
        self.report(step, "started", attempt=attempt)
        started = self.loop.now
        if self.luck.power_cut_step == step:
            yield self.luck.duration(step) / 2
            self.result.faults["power_cut"] += 1
            yield timedelta(minutes=self.luck.restart_minutes)
            attempt += 1
            self.report(step, "started", attempt=attempt)
            started = self.loop.now
        yield self.luck.duration(step) if step != "download" else timedelta(seconds=20)
        minutes = (self.loop.now - started).total_seconds() / 60
        self.result.step(step, minutes)
        budget = 60 * _BUDGET.get(step, 0)
        self.report(
            step,
            "succeeded",
            attempt=attempt,
            duration_s=round(minutes * 60, 1),
            budget_s=budget,
            over_budget=bool(budget) and minutes * 60 > budget,
            **evidence,
        )
        return True

    def _upgrade(self, not_before: datetime | None, not_after: datetime | None) -> Steps:
        assert self.action is not None
        release = self.action["release"]
        archive, manifest = backup_archive(self.serial, self.loop.now)
        digest = hashlib.sha256(archive).hexdigest()
        if not self._upload_backup(archive, digest, manifest):
            self.report("backup", "started", attempt=1)
            self.report("backup", "failed", attempt=1, error="upload refused", will_retry=False)
            self.outcome = "backup_failed"
            return False
        yield from self._timed(
            "backup", archive="backup.tar.zst", sha256=digest, size=len(archive), verified=True
        )
        yield from self._timed(
            "download",
            version=release["version"],
            target=release["target"],
            sha256=release["sha256"],
            length=release["length"],
            bytes_received=len(self._blob),
            verified_by="tuf",
        )
        if not_after is not None and self.loop.now >= not_after:
            self.outcome = "window_missed"
            self.result.faults["install_window_missed"] += 1
            return False
        yield from self._install(release)
        yield from self._timed("network", written=True, cloud_link="primary")
        self.api.call(
            "POST",
            "/device/v1/register",
            token=self._token(),
            json={"device_id": self.device_id, "platform_hint": "default"},
        )
        yield from self._timed("register", registered=True, reused=False)
        return (yield from self._function_test(release))

    def _install(self, release: dict[str, Any]) -> Steps:
        self.first_install_at = self.first_install_at or self.loop.now
        if self.luck.install_failure:
            for attempt, will_retry in ((1, True), (2, False)):
                self.report("install", "started", attempt=attempt)
                yield self.luck.duration("install") / 3
                self.report(
                    "install",
                    "failed",
                    attempt=attempt,
                    error="pre_install hook failed",
                    error_kind="HookFailed",
                    will_retry=will_retry,
                    returncode=1,
                )
                yield timedelta(minutes=2)
            self.result.problems["software (reinstall)"] += 1
        return (
            yield from self._timed(
                "install", version=release["version"], previous_version=OLD_VERSION
            )
        )

    def _function_test(self, release: dict[str, Any]) -> Steps:
        if self.luck.hardware_fault and not self.tests_failed_once:
            self.tests_failed_once = True
            self.report("function_test", "started", attempt=1)
            yield self.luck.duration("function_test")
            self.report(
                "function_test",
                "failed",
                attempt=1,
                error="spindle encoder does not answer",
                error_kind="SelfTestFailed",
                will_retry=False,
            )
            self.outcome = "tests_failed"
            self.retest.reset()
            self.tests_done.fire()
            yield self.retest
        yield from self._timed("function_test", version=release["version"], passed=True)
        self.outcome = "tests_passed"
        self.tests_done.fire()
        return True

    def _upload_backup(self, archive: bytes, digest: str, manifest: dict[str, Any]) -> bool:
        assert self.action is not None
        made = self.api.call(
            "POST",
            "/device/v1/backups",
            token=self._token(),
            json={
                "action_id": self.action["id"],
                "sha256": digest,
                "size": len(archive),
                "manifest": manifest,
            },
        )
        if made.status_code != 200:
            return False
        backup = made.json()
        sent = self.api.call(
            "PUT",
            f"/device/v1/backups/{backup['backup_id']}?offset={backup['received']}",
            token=self._token(),
            content=archive[backup["received"] :],
            headers={"Content-Type": "application/octet-stream"},
        )
        done = self.api.call(
            "POST", f"/device/v1/backups/{backup['backup_id']}/complete", token=self._token()
        )
        return sent.status_code == 200 and done.status_code == 200


REMOTE_STEPS = {"diagnose": "diagnose", "fallback": "switch_network"}
_BUDGET = {"backup": 10, "install": 15, "network": 10, "register": 5, "function_test": 15}


def _at_midnight(moment: datetime) -> datetime:
    """Idle reports fall at midnight UTC (the manager's morning round in Taipei), so every
    waiting IPC and the manager share one clock move a day, however large the fleet."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _moment(text: str | None) -> datetime | None:
    return moment(text) if text else None
