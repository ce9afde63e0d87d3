"""Scale-out as docs/scale-out.md runs it: two API processes and two workers on PostgreSQL.

One module-wide scenario starts two real ``fleetup serve --no-worker`` processes and two
``fleetup worker`` processes over the test database, one shared ``var_dir`` and secret key,
and an MQTT broker (a ``mosquitto`` of its own on a free port, else ``FLEETUP_TEST_MQTT_URL``).
IPCs enroll and are deployed through either process; then, all at once, every device reports
its six upgrade steps (each report sent to BOTH processes at the same moment, as an agent that
retries on another address would) while heartbeats go to both in turn, and users ask for test
notifications that an Apprise ``json://`` channel delivers to a receiver in the test. The
tests then check the outcome: nothing answered 5xx, every report stored once, every upgrade
in the state one process would have left it in, every notification delivered once across
both workers, every deployed device woken, the audit trail one unbroken chain.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from kill_helpers import root_conftest
from scale_helpers import Receiver, WakeWatcher, free_port, mqtt_broker, wait_up
from sqlalchemy import select

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.app import build_server
from fleetup.api.deps import Server
from fleetup.core import audit
from fleetup.core.clock import SystemClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.devices.models import Device, DeviceEvent
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Machine
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.notify.models import DELIVERED, DeviceWakeup, Notification
from fleetup.releases import service as releases
from releases.release_helpers import make_package

POSTGRES_URL = os.environ.get("FLEETUP_TEST_DATABASE_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not POSTGRES_URL,
        reason="scale-out runs several processes on one database, which needs PostgreSQL: "
        "set FLEETUP_TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:5432/DB",
    ),
]

BIN = Path(sys.executable).parent
DEVICES = 6
HEARTBEATS = 10  # per device, to the two processes in turn
USERS = 3
TESTS_PER_USER = 4
STEPS = ("backup", "download", "install", "network", "register", "function_test")
NODES = ("F", "I", "J", "L", "N", "O")
REPORTS = [(step, status) for step in STEPS for status in ("started", "succeeded")]


@dataclass
class Live:
    """Processes and what the scenario saw; the tests read this."""

    parts: Server
    urls: list[str]
    logs: Path
    admin: dict[str, str]
    receiver_port: int
    answers: list[tuple[str, str, int]] = field(default_factory=list)  # (url, what, status)
    accepted: dict[tuple[str, str], int] = field(default_factory=dict)  # (serial, event) -> n
    serials: list[str] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    first_polls: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    last_version: dict[str, str] = field(default_factory=dict)
    queued: Counter[str] = field(default_factory=Counter)  # user -> notifications queued
    posts: Counter[str] = field(default_factory=Counter)
    wakes: Counter[str] = field(default_factory=Counter)

    lock: threading.Lock = field(default_factory=threading.Lock)

    def tally(self, counter: dict[Any, int], key: Any, amount: int = 1) -> None:
        """Add to a count shared by the scenario's threads."""
        with self.lock:
            counter[key] = counter.get(key, 0) + amount

    def call(
        self, client: httpx.Client, method: str, url: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        answer = client.request(method, url + path, **kwargs)
        self.answers.append((url, f"{method} {path}", answer.status_code))
        return answer


def _arrange(parts: Server, tmp: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Fleet, release and people, in-process.

    Returns:
        Each machine's enrollment token by serial, and each user's ``Authorization`` header.
    """
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=SystemClock())
        fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
        fleet.create_site(ctx, SiteIn(customer_code="YJ", code="TC1", name="台中廠"))
        package = make_package(tmp / "ipc-2.0.0.tar.gz", version="2.0.0", files={"app": b"v2"})
        releases.add(ctx, parts.settings, path=package, version="2.0.0")
        enrollment = {}
        for number in range(DEVICES):
            serial = f"YJ-TC1-S{number:03d}"
            fleet.create_machine(
                ctx,
                MachineIn(
                    serial=serial,
                    model="CNC-5",
                    ipc_os="linux",
                    customer_code="YJ",
                    site_code="TC1",
                ),
            )
            enrollment[serial] = devices.create_enrollment_token(ctx, serial=serial)
        tokens = {}
        for name, role in [("admin", Role.admin), ("manager", Role.manager)] + [
            (f"viewer-{n}", Role.viewer) for n in range(USERS)
        ]:
            user = accounts.create_user(
                ctx, UserIn(username=name, password=f"{name}-password-1", role=role)
            )
            tokens[name] = accounts.create_token(ctx, user=user, name="scale-out")[1]
        session.commit()
    return enrollment, {name: f"Bearer {token}" for name, token in tokens.items()}


def _report_to_both(
    live: Live, serial: str, credential: str, action_id: str, step: str, status: str
) -> None:
    """Send one step report to both processes at once; retry a 409 until it is settled."""
    event_id = f"{serial}-{step}-{status}"
    body = {
        "event_id": event_id,
        "step": step,
        "status": status,
        "at": datetime.now(UTC).isoformat(),
        "evidence": {"attempt": 1},
    }
    start = threading.Barrier(2)
    path = f"/device/v1/actions/{action_id}/events"
    headers = {"Authorization": f"Bearer {credential}"}

    def send(url: str) -> None:
        with httpx.Client(timeout=30, headers=headers) as client:
            start.wait()
            for _ in range(50):
                answer = live.call(client, "POST", url, path, json=body)
                if answer.status_code != 409:
                    break
                time.sleep(0.05)
            if answer.status_code == 200 and answer.json()["accepted"]:
                live.tally(live.accepted, (serial, event_id))

    pair = [threading.Thread(target=send, args=(url,)) for url in live.urls]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()


def _run(live: Live, enrollment: dict[str, str], headers: dict[str, str]) -> None:
    """Enroll and deploy through both processes, then fire everything concurrently."""
    a, b = live.urls
    credentials = live.credentials
    actions: dict[str, str] = {}
    with httpx.Client(timeout=30) as client:
        for index, (serial, token) in enumerate(enrollment.items()):
            url = live.urls[index % 2]
            enrolled = live.call(
                client,
                "POST",
                url,
                "/device/v1/enroll",
                json={"enrollment_token": token, "serial": serial, "hardware": {"os": "linux"}},
            )
            credentials[serial] = enrolled.json()["credential"]
            deployed = live.call(
                client,
                "POST",
                live.urls[(index + 1) % 2],
                f"/api/v1/machines/{serial}/deployments",
                json={"version": "2.0.0"},
                headers={"Authorization": headers["manager"]},
            )
            live.instances[serial] = deployed.json()["instance_id"]
            actions[serial] = deployed.json()["action_id"]
            device = {"Authorization": f"Bearer {credentials[serial]}"}
            live.first_polls[serial] = [
                (
                    str(poll.json()["action"]["id"]),
                    poll.headers["etag"],
                )
                for poll in (
                    live.call(client, "GET", url, "/device/v1/actions/next", headers=device)
                    for url in (a, b)
                )
            ]
    live.serials = list(enrollment)

    def reports(serial: str) -> None:
        for step, status in REPORTS:
            _report_to_both(live, serial, credentials[serial], actions[serial], step, status)

    def heartbeats(serial: str) -> None:
        with httpx.Client(timeout=30) as client:
            for beat in range(HEARTBEATS):
                version = f"1.0.{beat}"
                live.call(
                    client,
                    "POST",
                    live.urls[beat % 2],
                    "/device/v1/heartbeat",
                    json={"version": version, "link": "primary", "health": {"load": 0.1}},
                    headers={"Authorization": f"Bearer {credentials[serial]}"},
                )
                live.last_version[serial] = version

    def notifications(user: int) -> None:
        name = f"viewer-{user}"
        with httpx.Client(timeout=30, headers={"Authorization": headers[name]}) as client:
            subscribed = live.call(
                client,
                "POST",
                a,
                "/api/v1/me/subscriptions",
                json={"url": f"json://127.0.0.1:{live.receiver_port}/{name}", "language": "en"},
            )
            assert subscribed.status_code == 201, subscribed.text
            for number in range(TESTS_PER_USER):
                sent = live.call(
                    client, "POST", live.urls[number % 2], "/api/v1/me/test-notification"
                )
                if sent.status_code == 200:
                    live.tally(live.queued, name, sent.json()["queued"])

    jobs = [partial(job, serial) for serial in enrollment for job in (reports, heartbeats)]
    jobs += [partial(notifications, user) for user in range(USERS)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for done in [pool.submit(job) for job in jobs]:
            done.result()


def _settled(parts: Server, receiver: Receiver, watcher: WakeWatcher, expected: int) -> None:
    """Wait (bounded) for the workers to deliver every notification and publish wake-ups."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with parts.sessions() as session:
            pending = session.scalars(
                select(Notification.id).where(Notification.status != DELIVERED)
            ).all()
            wakeups = session.scalars(select(DeviceWakeup.id)).all()
        if (
            not pending
            and not wakeups
            and sum(receiver.posts.values()) >= expected
            and len(watcher.topics) >= DEVICES
        ):
            break
        time.sleep(0.2)
    time.sleep(3)  # a second delivery, were there one, would come within a worker tick or two


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    suite = root_conftest(request.config)
    suite._ran_on.add("postgresql")
    suite._empty_postgres(request.getfixturevalue("_postgres_engine"))
    where = tmp_path_factory.mktemp("scale-out")
    with mqtt_broker(where) as broker, Receiver() as receiver:
        settings = Settings(
            var_dir=where / "var",
            database_url=POSTGRES_URL,
            secret_key="scale-out-secret-key-shared-by-all",
            mqtt_url=broker,
        )
        parts = build_server(settings, SystemClock())
        watcher = WakeWatcher(broker)
        enrollment, headers = _arrange(parts, where)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETUP_")} | {
            "FLEETUP_VAR_DIR": str(settings.var_dir),
            "FLEETUP_DATABASE_URL": POSTGRES_URL,
            "FLEETUP_SECRET_KEY": settings.secret_key,
            "FLEETUP_MQTT_URL": broker,
        }
        processes: list[subprocess.Popen[bytes]] = []
        try:
            urls = []
            for number in range(2):
                port = free_port()
                urls.append(f"http://127.0.0.1:{port}")
                with (where / f"serve-{number}.log").open("wb") as log:
                    processes.append(
                        subprocess.Popen(
                            [
                                str(BIN / "fleetup"),
                                "serve",
                                "--no-worker",
                                "--host",
                                "127.0.0.1",
                                "--port",
                                str(port),
                            ],
                            env=env | {"FLEETUP_BASE_URL": urls[-1]},
                            cwd=where,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            for number in range(2):
                with (where / f"worker-{number}.log").open("wb") as log:
                    processes.append(
                        subprocess.Popen(
                            [str(BIN / "fleetup"), "worker", "--tick", "0.2"],
                            env=env,
                            cwd=where,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            for number, url in enumerate(urls):
                wait_up(url, processes[number], where / f"serve-{number}.log")
            result = Live(parts, urls, where, {"Authorization": headers["admin"]}, receiver.port)
            _run(result, enrollment, headers)
            _settled(parts, receiver, watcher, sum(result.queued.values()))
            result.posts = Counter(receiver.posts)
            result.wakes = Counter(watcher.topics)
            yield result
        finally:
            watcher.close()
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=15)
            parts.engine.dispose()


def test_no_request_to_either_process_got_a_server_error(live: Live) -> None:
    server_errors = [answer for answer in live.answers if answer[2] >= 500]
    assert server_errors == []
    unexpected = [a for a in live.answers if a[2] not in (200, 201, 409)]
    assert unexpected == []
    assert {url for url, _, _ in live.answers} == set(live.urls)


def test_both_processes_give_a_device_the_same_action_and_etag(live: Live) -> None:
    for serial in live.serials:
        from_a, from_b = live.first_polls[serial]
        assert from_a == from_b


def test_a_report_sent_to_both_processes_at_once_is_stored_once(live: Live) -> None:
    expected = {(s, f"{s}-{step}-{status}") for s in live.serials for step, status in REPORTS}
    assert set(live.accepted) == expected
    assert set(live.accepted.values()) == {1}  # accepted once, the other answer a duplicate
    with live.parts.sessions() as session:
        stored = session.execute(select(DeviceEvent.event_id, DeviceEvent.device_id)).all()
    assert len(stored) == len(expected)
    assert {event_id for event_id, _ in stored} == {event for _, event in expected}


def test_every_upgrade_ends_as_on_one_process(live: Live) -> None:
    with httpx.Client(timeout=30, headers=live.admin) as client:
        for serial in live.serials:
            views = [
                client.get(f"{url}/api/v1/sop/instances/{live.instances[serial]}").json()
                for url in live.urls
            ]
            assert views[0] == views[1]
            for node in NODES:
                done = [s for s in views[0]["steps"] if s["node"] == node and s["status"] == "done"]
                assert len(done) == 1, (serial, node, views[0]["steps"])
            assert views[0]["current_node"] == "Q"
            deployments = client.get(f"{live.urls[1]}/api/v1/machines/{serial}/deployments")
            assert [d["status"] for d in deployments.json()] == ["succeeded"]


def test_the_last_heartbeat_sent_is_the_one_kept(live: Live) -> None:
    with live.parts.sessions() as session:
        kept = dict(
            session.execute(
                select(Machine.serial, Device.version).join(Device, Device.machine_id == Machine.id)
            ).all()
        )
    assert kept == live.last_version
    assert set(kept.values()) == {f"1.0.{HEARTBEATS - 1}"}


def test_each_notification_is_delivered_once_across_both_workers(live: Live) -> None:
    assert live.queued == Counter({f"viewer-{n}": TESTS_PER_USER for n in range(USERS)})
    assert live.posts == Counter({f"/viewer-{n}": TESTS_PER_USER for n in range(USERS)})
    with live.parts.sessions() as session:
        rows = session.scalars(select(Notification)).all()
    assert [(row.status, row.attempts) for row in rows] == [(DELIVERED, 1)] * len(rows)
    assert len(rows) == USERS * TESTS_PER_USER
    delivered_by = [
        set(
            re.findall(r"notification (\d+) delivered", (live.logs / f"worker-{n}.log").read_text())
        )
        for n in range(2)
    ]
    assert delivered_by[0] | delivered_by[1] == {str(row.id) for row in rows}
    assert delivered_by[0] & delivered_by[1] == set()


def test_every_deployed_device_is_woken_through_the_broker(live: Live) -> None:
    with live.parts.sessions() as session:
        device_ids = session.scalars(select(Device.id)).all()
        left = session.scalars(select(DeviceWakeup.id)).all()
    assert left == []
    assert set(live.wakes) == {f"fleetup/devices/dev-{n}/wake" for n in device_ids}


def test_the_audit_trail_stays_one_unbroken_chain(live: Live) -> None:
    with live.parts.sessions() as session:
        assert audit.verify(session) == []
    answer = httpx.get(f"{live.urls[0]}/api/v1/audit/verify", headers=live.admin, timeout=60)
    assert answer.json() == {"ok": True, "findings": []}


def test_both_processes_serve_the_tuf_metadata_signed_into_the_shared_var_dir(
    live: Live,
) -> None:
    device = {"Authorization": f"Bearer {live.credentials[live.serials[0]]}"}
    metadata_dir = releases.tuf_repository(live.parts.settings).metadata_dir
    targets = sorted(path.name for path in metadata_dir.glob("*.targets.json"))
    served: dict[str, bytes] = {}
    for name in ["1.root.json", "timestamp.json", *targets]:
        answers = [
            httpx.get(f"{url}/device/v1/tuf/metadata/{name}", headers=device, timeout=30)
            for url in live.urls
        ]
        assert [answer.status_code for answer in answers] == [200, 200], name
        assert answers[0].content == answers[1].content, name
        served[name] = answers[0].content
    with live.parts.sessions() as session:
        release = releases.get(session, version="2.0.0")
    assert release.target.encode() in served[targets[-1]]
