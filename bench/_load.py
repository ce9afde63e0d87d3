"""Set-up shared by the device-load benchmarks (P2, L1) and their tests: a fleet and processes.

:func:`enroll_fleet` does in-process, on the server's database, what operators and agents do
before the load starts: the inventory import (the simulator's synthetic inventory), the
release, and one enrollment per IPC, whose credentials it returns; optionally a deployment
for some of them, so those agents have an upgrade to report steps of. :class:`Processes` runs
real ``fleetup serve`` and ``fleetup worker`` processes over one set of settings and stops
them all, with their output in log files. :func:`postgres_database` makes sure a dedicated
PostgreSQL database exists and is empty.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg
from sqlalchemy import make_url, select, text

from bench._fleet import wait_http
from fleetup.core import migrate
from fleetup.core.clock import SystemClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.db import make_engine, session_factory
from fleetup.devices import service as devices
from fleetup.devices.schemas import DeploymentIn
from fleetup.fleet.inventory import import_inventory
from fleetup.fleet.models import Machine
from fleetup.sim.fleet import RELEASE, ensure_release, synthetic_inventory
from fleetup.upgrades.library import SopLibrary

BIN = Path(sys.executable).parent
FLEETUP = str(BIN / "fleetup")
SECRET = "bench-secret-key-not-for-production"


@dataclass(frozen=True)
class Login:
    """One enrolled IPC as its agent knows it."""

    serial: str
    credential: str


def enroll_fleet(
    settings: Settings, count: int, *, deployed: int = 0, seed: int = 1
) -> list[Login]:
    """Import ``count`` machines, enroll each one's IPC, deploy the release to ``deployed``.

    The database is migrated first and should be empty: this is a fleet's first day. Every
    change goes through the services, audit trail included, as the CLI and the API would make
    it, so the database the load meets is the one a real fleet leaves.
    """
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    logins: list[Login] = []
    try:
        with session_factory(engine)() as session:
            ctx = Ctx(session=session, actor="bench", clock=SystemClock())
            import_inventory(ctx, synthetic_inventory(count, seed=seed))
            ensure_release(ctx, settings)
            session.commit()
            serials = list(session.scalars(select(Machine.serial).order_by(Machine.id)))[:count]
            library = SopLibrary(settings.sop_definitions)
            for index, serial in enumerate(serials):
                token = devices.create_enrollment_token(ctx, serial=serial)
                _, credential = devices.enroll(
                    ctx, token=token, serial=serial, hardware={"os": "linux", "bench": True}
                )
                if index < deployed:
                    devices.deploy(
                        ctx,
                        library,
                        serial=serial,
                        data=DeploymentIn(version=RELEASE),
                        base_url=settings.effective_base_url,
                    )
                logins.append(Login(serial, credential))
                if index % 200 == 199:
                    session.commit()
            session.commit()
    finally:
        engine.dispose()
    return logins


def postgres_database(url: str) -> str:
    """Create the database ``url`` names when missing and empty its ``public`` schema.

    Returns:
        ``url`` itself, for chaining.
    """
    parsed = make_url(url)
    name = parsed.database or ""
    admin = parsed.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url


def environment(settings: Settings) -> dict[str, str]:
    """The ``FLEETUP_*`` environment that makes a child process use ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETUP_")}
    env |= {
        "FLEETUP_VAR_DIR": str(settings.var_dir),
        "FLEETUP_DATABASE_URL": settings.effective_database_url,
        "FLEETUP_SECRET_KEY": settings.effective_secret_key(),
    }
    if settings.mqtt_url:
        env["FLEETUP_MQTT_URL"] = settings.mqtt_url
    return env


def machine_cpu() -> tuple[float, float] | None:
    """Busy and total CPU time of the whole machine so far (Linux ``/proc/stat``), else None.

    Differences of two readings tell how busy the machine was in between, whoever used it:
    on a shared machine the figures of a benchmark mean little without that.
    """
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / ticks, sum(values) / ticks


class Processes:
    """Real fleetup processes over one set of settings, stopped together (a context manager).

    Args:
        settings: what every process shares (database, var_dir, secret key, broker).
        logs: the folder their output goes to, one file each.
    """

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = environment(settings)
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [FLEETUP, *args],
                env=self.env | (env or {}),
                cwd=self.logs,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.running.append(process)
        return process

    def serve(self, port: int, *extra: str) -> str:
        """``fleetup serve`` on 127.0.0.1:``port`` (plus ``extra`` options); waits for it."""
        url = f"http://127.0.0.1:{port}"
        process = self.start(
            f"serve-{port}",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
            env={"FLEETUP_BASE_URL": url},
        )
        wait_http(f"{url}/healthz", process, seconds=60)
        return url

    def cpu_seconds(self, process: subprocess.Popen[bytes]) -> float | None:
        """User and system CPU time ``process`` has used so far (Linux), else None."""
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.running.clear()
