"""Fixtures shared by the whole suite.

Tests that touch the database take the ``database_url`` fixture (directly or through
``settings``, ``app`` or ``client``). They run on SQLite, and once more on PostgreSQL when
``FLEETUP_TEST_DATABASE_URL`` is set; ``test-results/backends.txt`` records which backends
ran, so ``.ci/run`` can insist that the PostgreSQL run happened.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, text

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.app import build_server, create_app
from fleetup.api.deps import Server
from fleetup.core import migrate
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.db import Base, make_engine
from fleetup.core.security import Role
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from support import Account

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "test-results"
POSTGRES_URL = os.environ.get("FLEETUP_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
_ran_on: set[str] = set()

# CI machines are shared and noisy: no per-example deadline, and slow data is no failure.
hypothesis_settings.register_profile(
    "fleetup", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("fleetup")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backends.txt").write_text("".join(f"{name}\n" for name in sorted(_ran_on)))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "fleetup.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_engine() -> Iterator[Engine]:
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)"),
            {"genesis": "0" * 64},
        )


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database for one test."""
    backend: str = request.param
    _ran_on.add(backend)
    if backend == "postgresql":
        engine: Engine = request.getfixturevalue("_postgres_engine")
        _empty_postgres(engine)
        return POSTGRES_URL
    template: Path = request.getfixturevalue("_sqlite_template")
    target = tmp_path / "fleetup.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        secret_key="test-secret-key-not-for-production",
    )


@pytest.fixture
def server_parts(settings: Settings, clock: ManualClock) -> Iterator[Server]:
    parts = build_server(settings, clock)
    yield parts
    parts.engine.dispose()


@pytest.fixture
def app(server_parts: Server) -> FastAPI:
    return create_app(server_parts)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def ctx(server_parts: Server) -> Iterator[Ctx]:
    """A write context straight on the database, for arranging a test."""
    with server_parts.sessions() as session:
        yield Ctx(session=session, actor="test", clock=server_parts.clock)


@pytest.fixture
def make_account(server_parts: Server) -> Callable[..., Account]:
    """``make_account(Role.viewer)`` adds a user with that role and an API token."""

    def make(role: Role, username: str | None = None) -> Account:
        name = username or f"{role.value.replace('_', '-')}-user"
        password = f"{name}-password-1"
        with server_parts.sessions() as session:
            ctx = Ctx(session=session, actor="test", clock=server_parts.clock)
            user = accounts.create_user(ctx, UserIn(username=name, password=password, role=role))
            _, token = accounts.create_token(ctx, user=user, name="tests")
            session.commit()
        return Account(username=name, password=password, token=token, role=role)

    return make


@pytest.fixture
def machine(ctx: Ctx) -> str:
    """One machine at a customer's site, committed; its serial."""
    fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
    fleet.create_site(ctx, SiteIn(customer_code="YJ", code="TC1", name="台中廠"))
    fleet.create_machine(
        ctx,
        MachineIn(
            serial="YJ-TC1-CNC001",
            model="CNC-5",
            ipc_os="Win10",
            customer_code="YJ",
            site_code="TC1",
        ),
    )
    ctx.session.commit()
    return "YJ-TC1-CNC001"
