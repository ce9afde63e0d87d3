"""SIGKILL a real ``fleetup-agent once`` in every upgrade state, then check what follows.

Each case starts the real server (``fleetup serve`` over the test database) and the real agent
process upgrading 1.0.0 → 2.0.0, parks the agent at one exact moment (see
:mod:`kill_helpers`: right after the journal saved a state, halfway through the package
download, halfway through the backup upload), checks that moment on disk or on the server,
and sends SIGKILL. Then ``fleetup-agent once`` runs again until the journal says ``done``,
and the test checks the whole truth: the version in ``current``, the data folder (byte for
byte, plus the migrate hook's one change), no ``.part`` leftovers, one succeeded report per
step on the server, and chart 2 steps F, I, J, L, N, O each done exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kill_helpers import gate_dir, root_conftest, serve
from sqlalchemy import select
from test_agent_upgrade import BIN, MIGRATE, _site

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.app import build_server
from fleetup.api.deps import Server
from fleetup.core.clock import SystemClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.devices.models import BackupUpload, DeviceAction, DeviceEvent
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.releases import service as releases
from releases.release_helpers import make_package
from support import Account

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.name != "posix" or not hasattr(signal, "SIGKILL"),
        reason="needs POSIX processes and SIGKILL",
    ),
]

BLOB = 512 * 1024  # incompressible payload in the package, so the download has a middle
NOISE = 64 * 1024  # incompressible data file, so the backup upload has a middle
CHUNK = 4096
POSTGRES_URL = os.environ.get("FLEETUP_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])  # as tests/conftest.py
STEPS = ("backup", "download", "install", "network", "register", "function_test")
NODES = ("F", "I", "J", "L", "N", "O")


ORDER = (
    "backup",
    "backup_uploaded",
    "download",
    "downloaded",
    "install",
    "installed",
    "network",
    "register",
    "function_test",
    "commit",
    "done",
)


@dataclass(frozen=True)
class Case:
    moment: str  # FLEETUP_KILL_AT
    killed_in: str  # the journal state the agent was in when killed (entered twice in all)
    version_after: str  # what install_root/current must name once the agent is done
    started_sent: bool = False  # the killed step had reported "started" before the kill


CASES = {
    "backup": Case("state:backup", "backup", "2.0.0"),
    "backup-upload-mid": Case("upload_mid", "backup", "2.0.0", started_sent=True),
    "backup_uploaded": Case("state:backup_uploaded", "backup_uploaded", "2.0.0"),
    "download": Case("state:download", "download", "2.0.0"),
    "download-mid-file": Case("download_mid", "download", "2.0.0", started_sent=True),
    "downloaded": Case("state:downloaded", "downloaded", "2.0.0"),
    "install": Case("state:install", "install", "2.0.0"),
    "installed": Case("state:installed", "installed", "2.0.0"),
    "network": Case("state:network", "network", "2.0.0"),
    "register": Case("state:register", "register", "2.0.0"),
    "function_test": Case("state:function_test", "function_test", "2.0.0"),
    "commit": Case("state:commit", "commit", "2.0.0"),
}


def _expected_reports(case: Case) -> list[tuple[str, str, int]]:
    """The exact reports the server must hold, in order: (step, status, attempt)."""
    reports: list[tuple[str, str, int]] = []
    for step in STEPS:
        if step != case.killed_in:
            reports += [(step, "started", 1), (step, "succeeded", 1)]
            continue
        if case.started_sent:
            reports.append((step, "started", 1))
        reports += [(step, "started", 2), (step, "succeeded", 2)]
    return reports


@dataclass(frozen=True)
class Fleet:
    """One server for the module (per database backend), with release 2.0.0 added."""

    url: str
    parts: Server
    settings: Settings
    manager: Account


@pytest.fixture(scope="module", params=BACKENDS)
def fleet_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    backend: str = request.param
    suite = root_conftest(request.config)
    suite._ran_on.add(backend)
    where = tmp_path_factory.mktemp(f"kill9-{backend}")
    if backend == "postgresql":
        suite._empty_postgres(request.getfixturevalue("_postgres_engine"))
        url = suite.POSTGRES_URL
    else:
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), where / "fleetup.db")
        url = f"sqlite:///{where / 'fleetup.db'}"
    settings = Settings(
        var_dir=where / "var", database_url=url, secret_key="test-secret-key-not-for-production"
    )
    parts = build_server(settings, SystemClock())
    try:
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="test", clock=SystemClock())
            fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
            fleet.create_site(ctx, SiteIn(customer_code="YJ", code="TC1", name="台中廠"))
            package = make_package(
                where / "ipc-2.0.0.tar.gz",
                version="2.0.0",
                files={
                    "hooks/migrate.py": MIGRATE,
                    "app.txt": b"v2",
                    "blob.bin": os.urandom(BLOB),
                },
                hooks={
                    "migrate_data": [["{python}", "hooks/migrate.py"]],
                    "self_test": [["{python}", "-c", "print('all functions normal')"]],
                },
            )
            releases.add(ctx, settings, path=package, version="2.0.0")
            user = accounts.create_user(
                ctx, UserIn(username="manager", password="manager-password-1", role=Role.manager)
            )
            _, token = accounts.create_token(ctx, user=user, name="tests")
            session.commit()
        manager = Account(
            username="manager", password="manager-password-1", token=token, role=Role.manager
        )
        env = {k: v for k, v in os.environ.items() if k != "FLEETUP_CONFIG"} | {
            "FLEETUP_VAR_DIR": str(settings.var_dir),
            "FLEETUP_DATABASE_URL": settings.database_url,
            "FLEETUP_SECRET_KEY": settings.secret_key,
        }
        with serve(BIN / "fleetup", env, where) as live:
            yield Fleet(live, parts, settings, manager)
    finally:
        parts.engine.dispose()


def _machine(fleet_server: Fleet, serial: str) -> str:
    """A machine with that serial and an enrollment token for it; returns the token."""
    with fleet_server.parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=SystemClock())
        fleet.create_machine(
            ctx,
            MachineIn(
                serial=serial, model="CNC-5", ipc_os="linux", customer_code="YJ", site_code="TC1"
            ),
        )
        token = devices.create_enrollment_token(ctx, serial=serial)
        session.commit()
    return token


def _files(data: Path) -> dict[str, bytes]:
    return {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}


def _agent(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "fleetup-agent"), "once", "--config", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _journal(work: Path) -> dict[str, object]:
    return json.loads((work / "journal.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_sigkill_then_rerun_finishes_the_upgrade_once(
    case: Case, fleet_server: Fleet, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    serial = f"YJ-TC1-K{request.node.callspec.indices['case']:03d}"
    token = _machine(fleet_server, serial)
    live_server, parts, manager = fleet_server.url, fleet_server.parts, fleet_server.manager
    data, root, _ = _site(tmp_path)
    (data / "noise.bin").write_bytes(os.urandom(NOISE))
    before = _files(data)
    deployed = httpx.post(
        f"{live_server}/api/v1/machines/{serial}/deployments",
        json={"version": "2.0.0", "network": {"primary_url": live_server}},
        headers=manager.headers,
    )
    assert deployed.status_code == 201, deployed.text
    instance_id = deployed.json()["instance_id"]
    with parts.sessions() as session:
        action_id = session.scalars(
            select(DeviceAction.id).where(DeviceAction.instance_id == instance_id)
        ).one()
    trusted = tmp_path / "root.json"
    trusted.write_bytes(releases.tuf_repository(fleet_server.settings).root_bytes())
    work = tmp_path / "work"
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[server]
primary_url = "{live_server}"
retries = 2
backoff_s = 0
[device]
serial = "{serial}"
enrollment_token = "{token}"
[paths]
data_dirs = {json.dumps([str(data)])}
install_root = "{root}"
work_dir = "{work}"
tuf_root = "{trusted}"
[agent]
upload_chunk_bytes = {CHUNK}
"""
    )
    log = tmp_path / "agent.log"
    env = {k: v for k, v in os.environ.items() if k != "FLEETUP_CONFIG"}
    marker = tmp_path / "parked.json"
    gate = gate_dir(tmp_path / "gate")
    gated_env = env | {
        "PYTHONPATH": os.pathsep.join([str(gate), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "FLEETUP_KILL_AT": case.moment,
        "FLEETUP_KILL_MARKER": str(marker),
        "FLEETUP_KILL_BYTES": str(BLOB // 4),
        "FLEETUP_KILL_CHUNKS": "3",
    }

    # 1. Run the agent until it parks at the moment, check the moment, SIGKILL it.
    agent = _agent(config, gated_env, log)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert agent.poll() is None, f"agent ended before {case.moment}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"never reached {case.moment}:\n{log.read_text()}"
            time.sleep(0.02)
        parked = json.loads(marker.read_text())
        assert parked["pid"] == agent.pid
        if case.moment.startswith("state:"):
            assert _journal(work)["state"] == case.moment.removeprefix("state:")
        elif case.moment == "download_mid":
            size = Path(parked["part"]).stat().st_size
            assert BLOB // 4 <= size < BLOB, size
            assert _journal(work)["state"] == "download"
        else:
            with parts.sessions() as session:
                upload = session.scalars(
                    select(BackupUpload).where(BackupUpload.action_id == action_id)
                ).one()
                assert 0 < upload.received == 3 * CHUNK < upload.size
                assert not upload.complete
            assert _journal(work)["state"] == "backup"
        os.kill(agent.pid, signal.SIGKILL)
        assert agent.wait(timeout=10) == -signal.SIGKILL
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()

    # 2. Run the agent again (no gate) until the journal is finished; bounded.
    for _ in range(4):
        rerun = _agent(config, env, log)
        code = rerun.wait(timeout=60)
        if _journal(work)["state"] in ("done", "failed") and code != 3:
            break
    journal = _journal(work)
    assert journal["state"] == "done", log.read_text()
    assert code == 0, log.read_text()
    assert journal["outbox"] == []
    assert journal["entries"] == {s: 2 if s == case.killed_in else 1 for s in ORDER}

    # 3. The machine: the right version, the data intact, nothing half-downloaded.
    assert (root / "current").read_text().strip() == case.version_after
    assert (root / "versions" / "2.0.0" / "app.txt").read_bytes() == b"v2"
    assert _files(data) == before | {"schema.txt": b"2\n"}
    assert list(work.rglob("*.part")) == []
    assert list((work).rglob("*.tar.gz")) == []  # commit removed the package

    # 4. The server: one success per step, no failures, each chart 2 node done once.
    with parts.sessions() as session:
        events = session.scalars(
            select(DeviceEvent).where(DeviceEvent.action_id == action_id).order_by(DeviceEvent.id)
        ).all()
        reports = [(e.step, e.status, e.evidence.get("attempt")) for e in events]
        assert len({e.event_id for e in events}) == len(events)
        assert reports == _expected_reports(case)
        evidence = {(e.step, e.status): e.evidence for e in events}
        upload_count = len(
            session.scalars(select(BackupUpload).where(BackupUpload.action_id == action_id)).all()
        )
    assert upload_count == 1
    if case.moment == "download_mid":
        # resumed from the .part file, not fetched again from byte 0
        assert evidence[("download", "succeeded")]["bytes_received"] < BLOB, evidence
    if case.moment == "upload_mid":
        assert evidence[("backup", "succeeded")]["resumed_from"] == 3 * CHUNK, evidence

    instance = httpx.get(
        f"{live_server}/api/v1/sop/instances/{instance_id}", headers=manager.headers
    ).json()
    for node in NODES:
        done = [s for s in instance["steps"] if s["node"] == node and s["status"] == "done"]
        assert len(done) == 1, (node, instance["steps"])
        assert done[0]["performed_by"] == [f"device:{serial}"]
    assert instance["current_node"] == "Q"
    deployments = httpx.get(
        f"{live_server}/api/v1/machines/{serial}/deployments", headers=manager.headers
    ).json()
    assert deployments[0]["status"] == "succeeded"
