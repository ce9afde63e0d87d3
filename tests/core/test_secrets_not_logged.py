"""No secret the product handles reaches a log record or the audit trail.

One flow touches every kind of secret: passwords (right and wrong, over the API and the sign-in
page), session cookies, API tokens (used, revoked, unknown), enrollment tokens and the device
credentials they buy, the platform credential, a spare IPC's one-time token, the customers'
signed links (notice, survey, acceptance, certificate), the server's secret key and the TUF
signing keys, and a notification channel whose URL holds a password. Logging is captured at
DEBUG from every logger as the libraries leave them (SQLAlchemy's statement echo is a switch
of its own and stays off; the test's own HTTP client, ``httpx``, which prints each URL it
requests, is left out: it is not the server). The worker's jobs run on the way, one message
goes out through Apprise for real, and then every log record and every audit event is
searched for every secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.route_world import signature_data_url, token_of
from customers.customer_support import add_machine, make_machine, start, walk
from devices.device_helpers import Ipc
from fleetup.api.deps import SESSION_COOKIE, Server
from fleetup.core.audit import AuditEvent
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.notify import delivery
from fleetup.notify.channels import AppriseChannel
from fleetup.notify.models import Notification
from fleetup.releases import service as releases
from releases.release_helpers import make_package
from support import Account
from web.web_helpers import csrf_token

CLIENT_LOGGERS = ("httpx", "httpcore")
ARCHIVE = b"the customer's data, backed up" * 40


class Secrets:
    """Every secret value met on the way, by what it is."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def keep(self, what: str, value: str) -> str:
        assert len(value) >= 12, f"{what} is too short to search for"
        self.found[what] = value
        return value

    def in_text(self, text: str) -> list[str]:
        return [what for what, value in self.found.items() if value in text]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _people(client: TestClient, secrets: Secrets, admin: Account) -> None:
    secrets.keep("an admin's password", admin.password)
    secrets.keep("an admin's API token", admin.token)
    password = secrets.keep("a new user's password", "correct-horse-battery-9")
    user = {"username": "tech-lee", "password": password, "role": "technician"}
    assert client.post("/api/v1/users", json=user, headers=admin.headers).status_code == 201
    wrong = secrets.keep("a mistyped password", "correct-horse-battery-8")
    assert (
        client.post("/api/v1/auth/login", json={"username": "tech-lee", "password": wrong})
    ).status_code == 401
    signed_in = client.post(
        "/api/v1/auth/login", json={"username": "tech-lee", "password": password}
    )
    assert signed_in.status_code == 200
    secrets.keep("an API session cookie", client.cookies[SESSION_COOKIE])
    client.cookies.clear()

    form = client.get("/login")
    page_login = {"username": "tech-lee", "password": password, "csrf_token": csrf_token(form.text)}
    assert client.post("/login", data=page_login, follow_redirects=False).status_code == 303
    secrets.keep("a page session cookie", client.cookies[SESSION_COOKIE])
    client.cookies.clear()
    form = client.get("/login")
    bad_page = {"username": "tech-lee", "password": wrong, "csrf_token": csrf_token(form.text)}
    assert client.post("/login", data=bad_page).status_code == 401
    client.cookies.clear()

    made = client.post("/api/v1/tokens", json={"name": "ci"}, headers=admin.headers).json()
    token = secrets.keep("a new API token", made["token"])
    assert client.get("/api/v1/machines", headers=_bearer(token)).status_code == 200
    assert client.delete(f"/api/v1/tokens/{made['id']}", headers=admin.headers).status_code == 204
    assert client.get("/api/v1/machines", headers=_bearer(token)).status_code == 401
    unknown = secrets.keep("an unknown API token", "fut_" + "n0t-a-real-token" * 2)
    assert client.get("/api/v1/machines", headers=_bearer(unknown)).status_code == 401


def _enroll(client: TestClient, ctx: Ctx, secrets: Secrets, serial: str, token: str) -> Ipc:
    secrets.keep(f"the enrollment token of {serial}", token)
    body = {"enrollment_token": token, "serial": serial, "hardware": {"os": "linux"}}
    answer = client.post("/device/v1/enroll", json=body)
    assert answer.status_code == 200, answer.text
    ipc = Ipc(serial, answer.json()["device_id"], answer.json()["credential"])
    secrets.keep(f"a device credential of {serial}", ipc.credential)
    return ipc


def _devices(client: TestClient, ctx: Ctx, secrets: Secrets, manager: Account, serial: str) -> None:
    token = devices.create_enrollment_token(ctx, serial=serial)
    ctx.session.commit()
    ipc = _enroll(client, ctx, secrets, serial, token)
    beat = {"version": "1.0.0", "link": "primary", "health": {}}
    assert client.post("/device/v1/heartbeat", json=beat, headers=ipc.headers).status_code == 200
    registered = client.post(
        "/device/v1/register", json={"device_id": ipc.device_id}, headers=ipc.headers
    )
    secrets.keep("the platform credential", registered.json()["platform_credential"])

    deployed = client.post(
        f"/api/v1/machines/{serial}/deployments", json={"version": "2.0.0"}, headers=manager.headers
    )
    action_id = deployed.json()["action_id"]
    digest = hashlib.sha256(ARCHIVE).hexdigest()
    backup = {"action_id": action_id, "sha256": digest, "size": len(ARCHIVE)}
    backup_id = client.post("/device/v1/backups", json=backup, headers=ipc.headers).json()[
        "backup_id"
    ]
    url = f"/device/v1/backups/{backup_id}"
    client.put(url, params={"offset": 0}, content=ARCHIVE, headers=ipc.headers)
    assert client.post(f"{url}/complete", headers=ipc.headers).json()["complete"] is True

    problem = client.post(
        "/api/v1/problems",
        json={"serial": serial, "type": "hardware", "summary": "IPC does not boot"},
        headers=manager.headers,
    ).json()
    steps = f"/api/v1/problems/{problem['id']}/steps"
    checked = {"node": "D1", "payload": {"checklist": {"power": False}}}
    assert client.post(steps, json=checked, headers=manager.headers).status_code == 200
    swapped = client.post(steps, json={"node": "D2", "payload": {}}, headers=manager.headers)
    assert swapped.status_code == 200, swapped.text
    _enroll(client, ctx, secrets, serial, swapped.json()["secret"])


def _links(client: TestClient, ctx: Ctx, parts: Server, secrets: Secrets, manager: Account) -> None:
    surveyed, accepting = make_machine(ctx, "SEC-1"), add_machine(ctx, "SEC-2")
    walk(ctx, parts.library, start(ctx, parts.library, surveyed), until="V")
    walk(ctx, parts.library, start(ctx, parts.library, accepting), until="T")
    visit = parts.clock.now() + timedelta(days=2)
    plan = {
        "serial": surveyed,
        "visit_start": visit.isoformat(),
        "visit_end": (visit + timedelta(hours=1)).isoformat(),
        "expected_minutes": 45,
    }
    assert client.post("/api/v1/visits", json=plan, headers=manager.headers).status_code == 201

    survey = client.post(f"/api/v1/machines/{surveyed}/surveys", headers=manager.headers)
    survey_token = secrets.keep("a survey link", token_of(survey.json()["link"]))
    acceptance = client.post(
        f"/api/v1/machines/{accepting}/acceptance-link", headers=manager.headers
    )
    acceptance_token = secrets.keep("an acceptance link", token_of(acceptance.json()["link"]))

    assert client.get(f"/s/{survey_token}").status_code == 200
    answered = client.post(f"/api/v1/public/surveys/{survey_token}", json={"score": 10})
    assert answered.status_code == 200
    signature = {"signer_name": "王小明", "signature": signature_data_url()}
    signed = client.post(f"/api/v1/public/acceptances/{acceptance_token}", json=signature)
    assert signed.status_code == 201, signed.text


def test_no_secret_reaches_a_log_record_or_the_audit_trail(
    client: TestClient,
    server_parts: Server,
    settings: Settings,
    ctx: Ctx,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    make_account: Callable[..., Account],
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = Secrets()
    admin, manager = make_account(Role.admin), make_account(Role.manager)
    package = make_package(tmp_path / "ipc.tar.gz", version="2.0.0", files={"run": b"x"})
    releases.add(ctx, settings, path=package, version="2.0.0")
    ctx.session.commit()
    secrets.keep("the server's secret key", settings.effective_secret_key())

    _people(client, secrets, admin)
    _devices(client, ctx, secrets, manager, make_machine(ctx, "SEC-0", customer="C00"))
    _links(client, ctx, server_parts, secrets, manager)
    _channel(client, secrets, manager)
    # The worker's jobs run: the notice goes out (its link exists only in the message).
    moved = {"now": (server_parts.clock.now() + timedelta(minutes=5)).isoformat()}
    assert client.post("/api/v1/simulation/clock", json=moved, headers=admin.headers).is_success
    ctx.session.expire_all()
    notice_token = secrets.keep("a notice link", _link_in_message(ctx, "notice_visit", "/n/"))
    certificate = secrets.keep(
        "a certificate link", _link_in_message(ctx, "acceptance_signed", "/c/")
    )
    assert client.get(f"/c/{certificate}").status_code == 200
    # One more message, sent for real this time: nothing listens there, so it is retried.
    assert client.post("/api/v1/me/test-notification", headers=manager.headers).is_success
    assert delivery.deliver_due(server_parts, AppriseChannel()) == 0
    assert client.post(
        f"/api/v1/public/notices/{notice_token}", json={"answer": "confirmed"}
    ).is_success
    for path in Path(settings.var_dir).rglob("*.pem"):
        body = "".join(re.findall(r"^[A-Za-z0-9+/=]{16,}$", path.read_text(), re.MULTILINE))
        secrets.keep(f"the TUF key {path.name}", body)
    assert any(what.startswith("the TUF key") for what in secrets.found)

    records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert len(records) > 0
    logged = {
        f"{record.name}: {record.getMessage()[:120]}": secrets.in_text(_record_text(record))
        for record in records
    }
    assert {line: found for line, found in logged.items() if found} == {}

    ctx.session.expire_all()
    events = ctx.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert len(events) > 50
    audited = {
        f"audit {event.seq} {event.action} {event.entity_type}": secrets.in_text(_event_text(event))
        for event in events
    }
    assert {line: found for line, found in audited.items() if found} == {}


def _channel(client: TestClient, secrets: Secrets, manager: Account) -> None:
    """A channel whose URL holds a password, and a test message queued to it."""
    password = secrets.keep("a channel URL's password", "channel-secret-4711")
    url = f"json://hook-user:{password}@127.0.0.1:9/hook"
    added = client.post(
        "/api/v1/me/subscriptions", json={"url": url, "language": "en"}, headers=manager.headers
    )
    assert added.status_code == 201, added.text
    assert client.post("/api/v1/me/test-notification", headers=manager.headers).is_success


def _link_in_message(ctx: Ctx, template: str, prefix: str) -> str:
    """The token of the customer's link in the first message made from ``template``."""
    body = ctx.session.scalars(
        select(Notification.body).where(Notification.template == template)
    ).first()
    assert body is not None and prefix in body, template
    return body.split(prefix, 1)[1].split()[0]


def _record_text(record: logging.LogRecord) -> str:
    parts: list[Any] = [record.getMessage(), record.exc_text or "", repr(record.args)]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    return "\n".join(str(part) for part in parts)


def _event_text(event: AuditEvent) -> str:
    return json.dumps(
        [event.actor, event.entity_id, event.before, event.after, event.note], ensure_ascii=False
    )
