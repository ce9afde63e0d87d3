"""Schemathesis against fleetup's own OpenAPI: every operation of ``/api/v1`` and ``/device/v1``.

Each operation gets generated requests, valid and invalid (schemathesis's examples, coverage
and fuzzing phases), sent to the in-process ASGI app. No answer may be a server error, and
every answer must be what the schema documents for it: its status code, content type, headers
and body. ``/api/v1`` is called as an admin, who passes every access rule so the requests
reach the handlers; ``/device/v1`` as an enrolled device with a deployment waiting.

One server per database backend serves the whole module, so what one operation creates the
next ones meet, as on a real server. The admin signs in with the session cookie rather than
an API token on purpose: ``DELETE /api/v1/tokens/{token_id}`` is fuzzed too, and a generated
id could revoke the caller's own token and turn the rest of the run into 401s.

Left out, because its effect would wreck the rest of the run: ``POST /api/v1/simulation/clock``
moves the server's simulated clock forward for good (to any date up to the year 9999) and runs
every worker job that falls due on the way, inside the request. ``GET`` of the clock stays in.

CI keeps the run short; ``FLEETUP_FUZZ_EXAMPLES`` raises the number of generated requests per
operation for a long run, as in
``FLEETUP_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/api/test_schema_fuzz.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import Case

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.app import build_server, create_app
from fleetup.api.deps import SESSION_COOKIE, Server
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.db import make_engine, session_factory
from fleetup.core.security import Role, Signer
from fleetup.devices import service as devices
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from fleetup.releases import service as releases
from fleetup.upgrades.library import SopLibrary
from releases.release_helpers import make_package

EXAMPLES = int(os.environ.get("FLEETUP_FUZZ_EXAMPLES", "10"))
OPENAPI = "/api/openapi.json"
SERIAL = "YJ-TC1-CNC001"
ADMIN = "fuzz-admin"
ADMIN_PASSWORD = "fuzz-admin-password-1"


def served_document() -> dict[str, Any]:
    """The OpenAPI document the app serves, built at collection, when no database exists yet.

    Generating it reads only the routes, so the app is built over an in-memory database that
    is never touched; ``test_the_fuzzed_schema_is_the_one_the_server_serves`` checks that the
    servers under test serve the same document.
    """
    with tempfile.TemporaryDirectory() as var:
        settings = Settings(var_dir=Path(var), database_url="sqlite://", secret_key="schema-only")
        engine = make_engine(settings.database_url)
        parts = Server(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            clock=ManualClock(datetime(2026, 3, 2, tzinfo=UTC)),
            signer=Signer("schema-only"),
            library=SopLibrary(),
        )
        document: dict[str, Any] = create_app(parts).openapi()
        engine.dispose()
        return document


# The checks that say "no server error, and the answer is as documented"; the others judge
# how strictly the server validates (pydantic's lax coercions, rules the schema cannot say).
CHECKS = {
    "enabled": False,
    "not_a_server_error": {"enabled": True},
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_headers_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
}
POSTGRES_URL = os.environ.get("FLEETUP_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])  # as tests/conftest.py


def root_conftest(config: pytest.Config) -> Any:
    """``tests/conftest.py`` as pytest loaded it, for its database fixtures' helpers."""
    wanted = Path(__file__).resolve().parents[1] / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == wanted:
            return plugin
    raise LookupError(f"{wanted} is not loaded")


@dataclass(frozen=True)
class Target:
    """The server under test and the credentials to send, by path prefix."""

    app: FastAPI
    headers: dict[str, dict[str, str]]

    def headers_for(self, path: str) -> dict[str, str]:
        return next(h for prefix, h in self.headers.items() if path.startswith(prefix))


@pytest.fixture(scope="module", params=BACKENDS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """A migrated server with a customer, a site, a machine whose IPC is enrolled and has a
    deployment of release 2.0.0 waiting, and an admin signed in."""
    backend: str = request.param
    suite = root_conftest(request.config)
    suite._ran_on.add(backend)
    where = tmp_path_factory.mktemp(f"fuzz-{backend}")
    if backend == "postgresql":
        suite._empty_postgres(request.getfixturevalue("_postgres_engine"))
        url = POSTGRES_URL
    else:
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), where / "fleetup.db")
        url = f"sqlite:///{where / 'fleetup.db'}"
    settings = Settings(
        var_dir=where / "var", database_url=url, secret_key="test-secret-key-not-for-production"
    )
    parts = build_server(settings, ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC)))
    try:
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="test", clock=parts.clock)
            fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
            fleet.create_site(ctx, SiteIn(customer_code="YJ", code="TC1", name="台中廠"))
            fleet.create_machine(
                ctx,
                MachineIn(
                    serial=SERIAL,
                    model="CNC-5",
                    ipc_os="linux",
                    customer_code="YJ",
                    site_code="TC1",
                ),
            )
            accounts.create_user(
                ctx, UserIn(username=ADMIN, password=ADMIN_PASSWORD, role=Role.admin)
            )
            path = make_package(
                where / "ipc-2.tar.gz", version="2.0.0", files={"bin/run": b"x" * 5000}
            )
            releases.add(ctx, settings, path=path, version="2.0.0")
            token = devices.create_enrollment_token(ctx, serial=SERIAL)
            session.commit()
        app = create_app(parts)
        with TestClient(app) as client:
            login = client.post(
                "/api/v1/auth/login", json={"username": ADMIN, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            cookie = login.cookies[SESSION_COOKIE]
            client.cookies.clear()
            enrolled = client.post(
                "/device/v1/enroll",
                json={"enrollment_token": token, "serial": SERIAL, "hardware": {"os": "linux"}},
            )
            assert enrolled.status_code == 200, enrolled.text
            admin = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
            deployed = client.post(
                f"/api/v1/machines/{SERIAL}/deployments", json={"version": "2.0.0"}, headers=admin
            )
            assert deployed.status_code == 201, deployed.text
        yield Target(
            app,
            {
                "/api/v1/": admin,
                "/device/v1/": {"Authorization": f"Bearer {enrolled.json()['credential']}"},
            },
        )
    finally:
        parts.engine.dispose()


schema = (
    schemathesis.openapi.from_dict(
        served_document(),
        config=schemathesis.Config.from_dict(
            {"generation": {"max-examples": EXAMPLES}, "checks": CHECKS}
        ),
    )
    .include(path_regex=r"^/(api|device)/v1/")
    .exclude(path="/api/v1/simulation/clock", method="POST")
)


def test_the_fuzzed_schema_is_the_one_the_server_serves(target: Target) -> None:
    with TestClient(target.app) as client:
        served = client.get(OPENAPI)
    assert served.status_code == 200
    assert served.json() == served_document()


@schema.parametrize()
def test_operation_never_fails_on_the_server_and_answers_as_documented(
    case: Case[Any], target: Target
) -> None:
    case.call_and_validate(headers=target.headers_for(case.path), app=target.app)
