"""The device protocol as docs/agent.md writes it, against the real server."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from device_helpers import OTHER, SERIAL, Ipc
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetup.core.context import Ctx
from fleetup.core.db import Prepared
from fleetup.devices import service as devices
from fleetup.devices.models import DeviceEvent
from support import Account


def test_an_enrollment_token_works_once_only(
    ctx: Ctx, client: TestClient, machines: list[str]
) -> None:
    token = devices.create_enrollment_token(ctx, serial=SERIAL)
    ctx.session.commit()
    body = {"enrollment_token": token, "serial": SERIAL, "hardware": {}}
    first = client.post("/device/v1/enroll", json=body)
    assert first.status_code == 200
    assert first.json()["device_id"].startswith("dev-")
    again = client.post("/device/v1/enroll", json=body)
    assert again.status_code == 403
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "used already" in again.json()["detail"]


def test_a_token_for_another_machine_is_refused(
    ctx: Ctx, client: TestClient, machines: list[str]
) -> None:
    token = devices.create_enrollment_token(ctx, serial=OTHER)
    ctx.session.commit()
    answer = client.post(
        "/device/v1/enroll", json={"enrollment_token": token, "serial": SERIAL, "hardware": {}}
    )
    assert answer.status_code == 403


def test_device_routes_need_a_device_credential(
    client: TestClient, manager: Account, enroll: Callable[[str], Ipc]
) -> None:
    enroll(SERIAL)
    missing = client.get("/device/v1/actions/next")
    assert missing.status_code == 401
    # Nothing was sent: the challenge names no error (RFC 6750, section 3.1).
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer fdc_nonsense"}
    unknown = client.get("/device/v1/actions/next", headers=wrong)
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert client.get("/device/v1/actions/next", headers=manager.headers).status_code == 401


def test_next_action_answers_304_until_something_changes(
    client: TestClient, enroll: Callable[[str], Ipc], deploy: Callable[[str], dict[str, Any]]
) -> None:
    ipc = enroll(SERIAL)
    empty = client.get("/device/v1/actions/next", headers=ipc.headers)
    assert empty.status_code == 200 and empty.json() == {"action": None}
    etag = empty.headers["etag"]
    same = client.get("/device/v1/actions/next", headers=ipc.headers | {"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    deployment = deploy(SERIAL)
    changed = client.get("/device/v1/actions/next", headers=ipc.headers | {"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    action = changed.json()["action"]
    assert action["id"] == deployment["action_id"]
    assert action["kind"] == "upgrade"
    assert set(action["release"]) == {"version", "target", "sha256", "length"}
    assert action["install_window"] is None
    assert action["network"]["primary_url"].startswith("http")


def _event(step: str, status: str, **evidence: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "step": step,
        "status": status,
        "at": "2026-03-02T01:05:00Z",
        "evidence": {"attempt": 1, **evidence},
    }


def test_a_repeated_event_is_a_duplicate_and_counts_once(
    client: TestClient,
    manager: Account,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    url = f"/device/v1/actions/{deployment['action_id']}/events"
    event = _event("backup", "started")
    first = client.post(url, json=event, headers=ipc.headers)
    assert first.json() == {"accepted": True, "duplicate": False}
    second = client.post(url, json=event, headers=ipc.headers)
    assert second.json() == {"accepted": False, "duplicate": True}
    instance = client.get(
        f"/api/v1/sop/instances/{deployment['instance_id']}", headers=manager.headers
    ).json()
    started = [
        h for h in instance["history"] if h["type"] == "step_started" and h["to_node"] == "F"
    ]
    assert len(started) == 1
    assert instance["current_node"] == "F"
    [run] = [step for step in instance["steps"] if step["node"] == "F"]
    assert run["status"] == "in_progress" and run["attempts"] == 1


def test_a_report_recorded_meanwhile_by_another_request_is_a_conflict_that_changes_nothing(
    client: TestClient,
    manager: Account,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    url = f"/device/v1/actions/{deployment['action_id']}/events"
    event = _event("backup", "started")
    assert client.post(url, json=event, headers=ipc.headers).status_code == 200
    instance_url = f"/api/v1/sop/instances/{deployment['instance_id']}"
    before = client.get(instance_url, headers=manager.headers).json()
    # As if the same report had passed the duplicate check in two requests at once.
    never = Prepared(select(DeviceEvent.id).where(DeviceEvent.id < 0))
    monkeypatch.setattr(devices, "_KNOWN_EVENT", never)
    again = client.post(url, json=event, headers=ipc.headers)
    assert again.status_code == 409, again.text
    assert "being recorded already" in again.json()["detail"]
    after = client.get(instance_url, headers=manager.headers).json()
    assert after["steps"] == before["steps"]
    assert after["history"] == before["history"]


def test_a_device_cannot_touch_another_devices_action(
    client: TestClient, enroll: Callable[[str], Ipc], deploy: Callable[[str], dict[str, Any]]
) -> None:
    mine = enroll(SERIAL)
    theirs = enroll(OTHER)
    deployment = deploy(SERIAL)
    url = f"/device/v1/actions/{deployment['action_id']}/events"
    refused = client.post(url, json=_event("backup", "started"), headers=theirs.headers)
    assert refused.status_code == 403
    created = client.post(
        "/device/v1/backups",
        json={"action_id": deployment["action_id"], "sha256": "0" * 64, "size": 1},
        headers=theirs.headers,
    )
    assert created.status_code == 403
    ok = client.post(
        "/device/v1/backups",
        json={"action_id": deployment["action_id"], "sha256": "0" * 64, "size": 1},
        headers=mine.headers,
    )
    backup_id = ok.json()["backup_id"]
    assert client.get(f"/device/v1/backups/{backup_id}", headers=theirs.headers).status_code == 403


def test_backup_chunks_resume_from_what_the_server_holds(
    client: TestClient, enroll: Callable[[str], Ipc], deploy: Callable[[str], dict[str, Any]]
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    archive = bytes(range(256)) * 50
    digest = hashlib.sha256(archive).hexdigest()
    body = {"action_id": deployment["action_id"], "sha256": digest, "size": len(archive)}
    created = client.post("/device/v1/backups", json=body, headers=ipc.headers).json()
    assert created["received"] == 0
    backup_id = created["backup_id"]
    url = f"/device/v1/backups/{backup_id}"
    octets = ipc.headers | {"Content-Type": "application/octet-stream"}
    first = client.put(url, params={"offset": 0}, content=archive[:5000], headers=octets)
    assert first.json() == {"received": 5000}
    wrong = client.put(url, params={"offset": 0}, content=archive[:5000], headers=octets)
    assert wrong.status_code == 409 and wrong.json()["received"] == 5000
    # An interrupted agent asks again, and creating the same backup gives the same id.
    assert client.get(url, headers=ipc.headers).json()["received"] == 5000
    again = client.post("/device/v1/backups", json=body, headers=ipc.headers).json()
    assert again == {"backup_id": backup_id, "received": 5000}
    rest = client.put(url, params={"offset": 5000}, content=archive[5000:], headers=octets)
    assert rest.json() == {"received": len(archive)}
    done = client.post(f"{url}/complete", headers=ipc.headers)
    assert done.json() == {"complete": True, "received": len(archive)}
    status = client.get(url, headers=ipc.headers).json()
    assert status["complete"] is True
    blob = client.get(f"/device/v1/blobs/{digest}", headers=ipc.headers)
    assert blob.content == archive


def test_a_backup_that_does_not_match_its_hash_is_refused(
    client: TestClient, enroll: Callable[[str], Ipc], deploy: Callable[[str], dict[str, Any]]
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    body = {"action_id": deployment["action_id"], "sha256": "1" * 64, "size": 4}
    backup_id = client.post("/device/v1/backups", json=body, headers=ipc.headers).json()[
        "backup_id"
    ]
    url = f"/device/v1/backups/{backup_id}"
    client.put(url, params={"offset": 0}, content=b"abcd", headers=ipc.headers)
    assert client.post(f"{url}/complete", headers=ipc.headers).status_code == 422
    assert client.get(url, headers=ipc.headers).json()["received"] == 0


def test_range_downloads_return_the_exact_bytes(
    client: TestClient,
    enroll: Callable[[str], Ipc],
    release: dict[str, Any],
) -> None:
    ipc = enroll(SERIAL)
    data = release["path"].read_bytes()
    url = f"/device/v1/blobs/{release['sha256']}"
    whole = client.get(url, headers=ipc.headers)
    assert whole.status_code == 200 and whole.content == data
    part = client.get(url, headers=ipc.headers | {"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == data[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    middle = client.get(url, headers=ipc.headers | {"Range": "bytes=10-19"})
    assert middle.content == data[10:20]
    past = client.get(url, headers=ipc.headers | {"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416
    target = f"/device/v1/tuf/targets/{release['sha256']}.ipc-2.0.0.tar.gz"
    resumed = client.get(target, headers=ipc.headers | {"Range": "bytes=7-"})
    assert resumed.status_code == 206 and resumed.content == data[7:]
    unknown = client.get(f"/device/v1/blobs/{'e' * 64}", headers=ipc.headers)
    assert unknown.status_code == 404
    metadata = client.get("/device/v1/tuf/metadata/1.root.json", headers=ipc.headers)
    assert metadata.status_code == 200 and metadata.json()["signed"]["_type"] == "root"
    assert client.get("/device/v1/tuf/metadata/2.root.json", headers=ipc.headers).status_code == 404


def test_heartbeat_and_register_keep_the_device_facts(
    client: TestClient, enroll: Callable[[str], Ipc], ctx: Ctx
) -> None:
    ipc = enroll(SERIAL)
    beat = client.post(
        "/device/v1/heartbeat",
        json={
            "at": "2026-03-02T01:00:00Z",
            "version": "1.0.0",
            "link": "primary",
            "health": {"disk_free": 1, "uptime": 2.5, "load": None},
        },
        headers=ipc.headers,
    )
    assert beat.status_code == 200
    registered = client.post(
        "/device/v1/register",
        json={"device_id": ipc.device_id, "platform_hint": "default"},
        headers=ipc.headers,
    )
    assert registered.status_code == 200
    credential = registered.json()["platform_credential"]
    wrong = client.post("/device/v1/register", json={"device_id": "dev-999"}, headers=ipc.headers)
    assert wrong.status_code == 422
    from fleetup.devices.models import Device

    device = ctx.session.query(Device).one()
    assert device.version == "1.0.0" and device.link == "primary"
    assert device.platform_credential_digest == hashlib.sha256(credential.encode()).hexdigest()
    assert credential not in str(device.__dict__)


def test_a_heartbeat_that_reports_something_flags_the_device_until_a_clean_one(
    client: TestClient, enroll: Callable[[str], Ipc], ctx: Ctx
) -> None:
    from fleetup.devices.models import Device

    ipc = enroll(SERIAL)

    def beat(health: dict[str, object]) -> bool:
        answer = client.post(
            "/device/v1/heartbeat",
            json={
                "at": "2026-03-02T01:00:00Z",
                "version": "1.0.0",
                "link": "primary",
                "health": health,
            },
            headers=ipc.headers,
        )
        assert answer.status_code == 200, answer.text
        ctx.session.expire_all()
        return ctx.session.query(Device).one().reporting

    assert beat({"disk_free": 1}) is False
    assert beat({"anomalies": [{"kind": "changed", "path": "recipes/a.db"}]}) is True
    assert beat({"anomalies": []}) is False  # the key alone names nothing
    assert beat({"problem": {"type": "hardware", "detail": "fan"}}) is True
    assert beat({}) is False


def test_a_revoked_device_gets_401_invalid_token(
    ctx: Ctx, client: TestClient, enroll: Callable[[str], Ipc]
) -> None:
    ipc = enroll(SERIAL)
    devices.revoke(ctx, serial=SERIAL)
    ctx.session.commit()
    refused = client.get("/device/v1/actions/next", headers=ipc.headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert refused.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
