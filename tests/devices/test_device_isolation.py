"""One IPC's credential reaches that IPC's own things only, and a refusal changes nothing.

test_device_api.py already shows that another device's action events, backup creation and
backup status are refused. Here: the rest of a backup (its chunks, its completion, its blob),
blobs never offered to anyone, polling and its ETag, registration under another id, the
credentials that are not device credentials, expired enrollment tokens, and that a refusal
for something that exists looks exactly like one for something that does not.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from api.route_world import changed_tables, table_rows
from devices.device_helpers import OTHER, SERIAL, Ipc
from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.devices import service as devices
from fleetup.devices.models import Device
from fleetup.releases import service as releases

ARCHIVE = bytes(range(256)) * 20
DIGEST = hashlib.sha256(ARCHIVE).hexdigest()


def _refused_without_change(
    server_parts: Server, attempt: Callable[..., Response], *args: str
) -> Response:
    """Make the attempt; it must be refused (403 or 404) and leave every table as it was."""
    before = table_rows(server_parts.engine)
    answer = attempt(*args)
    assert answer.status_code in (403, 404), answer.text
    assert changed_tables(before, table_rows(server_parts.engine)) == []
    return answer


def _begin_backup(client: TestClient, ipc: Ipc, action_id: str) -> str:
    body = {"action_id": action_id, "sha256": DIGEST, "size": len(ARCHIVE)}
    created = client.post("/device/v1/backups", json=body, headers=ipc.headers)
    assert created.status_code == 200, created.text
    backup_id: str = created.json()["backup_id"]
    return backup_id


def _upload_all(client: TestClient, ipc: Ipc, backup_id: str) -> None:
    url = f"/device/v1/backups/{backup_id}"
    assert client.put(url, params={"offset": 0}, content=ARCHIVE, headers=ipc.headers).is_success
    assert client.post(f"{url}/complete", headers=ipc.headers).json()["complete"] is True


def test_a_device_cannot_add_to_or_finish_another_devices_backup(
    client: TestClient,
    server_parts: Server,
    settings: Settings,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    mine, theirs = enroll(SERIAL), enroll(OTHER)
    backup_id = _begin_backup(client, mine, deploy(SERIAL)["action_id"])
    url = f"/device/v1/backups/{backup_id}"

    _refused_without_change(
        server_parts,
        lambda: client.put(url, params={"offset": 0}, content=ARCHIVE, headers=theirs.headers),
    )
    _refused_without_change(
        server_parts, lambda: client.post(f"{url}/complete", headers=theirs.headers)
    )
    uploads = settings.effective_blob_dir / "uploads"
    assert not (uploads / f"{backup_id}.part").exists()

    _upload_all(client, mine, backup_id)
    assert client.get(url, headers=mine.headers).json()["complete"] is True


def test_a_device_cannot_download_another_machines_backup_by_any_route(
    client: TestClient,
    server_parts: Server,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
    release: dict[str, Any],
) -> None:
    mine, theirs = enroll(SERIAL), enroll(OTHER)
    _upload_all(client, mine, _begin_backup(client, mine, deploy(SERIAL)["action_id"]))
    assert client.get(f"/device/v1/blobs/{DIGEST}", headers=mine.headers).content == ARCHIVE

    blob = _refused_without_change(
        server_parts, lambda: client.get(f"/device/v1/blobs/{DIGEST}", headers=theirs.headers)
    )
    target = f"/device/v1/tuf/targets/{DIGEST}.ipc-{release['version']}.tar.gz"
    _refused_without_change(server_parts, lambda: client.get(target, headers=theirs.headers))
    _refused_without_change(server_parts, lambda: client.get(target, headers=mine.headers))
    unknown = client.get(f"/device/v1/blobs/{'e' * 64}", headers=theirs.headers)
    assert blob.status_code == unknown.status_code == 404
    assert ARCHIVE not in blob.content


def test_a_blob_in_the_store_that_no_one_was_offered_is_not_served(
    client: TestClient,
    server_parts: Server,
    settings: Settings,
    tmp_path: Path,
    enroll: Callable[[str], Ipc],
) -> None:
    ipc = enroll(SERIAL)
    secret = tmp_path / "kept-elsewhere.bin"
    secret.write_bytes(b"not for any IPC")
    info = releases.blob_store(settings).add_file(secret)
    answer = _refused_without_change(
        server_parts, lambda: client.get(f"/device/v1/blobs/{info.sha256}", headers=ipc.headers)
    )
    assert b"not for any IPC" not in answer.content


def test_another_devices_things_are_refused_exactly_like_things_that_do_not_exist(
    client: TestClient,
    server_parts: Server,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    mine, theirs = enroll(SERIAL), enroll(OTHER)
    action_id = deploy(SERIAL)["action_id"]
    backup_id = _begin_backup(client, mine, action_id)
    event = {
        "event_id": str(uuid.uuid4()),
        "step": "backup",
        "status": "started",
        "at": "2026-03-02T01:05:00Z",
    }
    pairs = {
        "event": lambda a, b: client.post(
            f"/device/v1/actions/{a}/events", json=event, headers=theirs.headers
        ),
        "backup of an action": lambda a, b: client.post(
            "/device/v1/backups",
            json={"action_id": a, "sha256": DIGEST, "size": 1},
            headers=theirs.headers,
        ),
        "status": lambda a, b: client.get(f"/device/v1/backups/{b}", headers=theirs.headers),
        "chunk": lambda a, b: client.put(
            f"/device/v1/backups/{b}", params={"offset": 0}, content=b"x", headers=theirs.headers
        ),
        "complete": lambda a, b: client.post(
            f"/device/v1/backups/{b}/complete", headers=theirs.headers
        ),
    }
    for name, attempt in pairs.items():
        real = _refused_without_change(server_parts, attempt, action_id, backup_id)
        ghost = _refused_without_change(server_parts, attempt, "act-99999", "bk-99999")
        assert real.status_code == ghost.status_code == 403, name
        assert real.json()["title"] == ghost.json()["title"], name


def test_a_device_polls_only_its_own_actions_and_its_etag_ignores_the_others(
    client: TestClient, enroll: Callable[[str], Ipc], deploy: Callable[[str], dict[str, Any]]
) -> None:
    mine, theirs = enroll(SERIAL), enroll(OTHER)
    quiet = client.get("/device/v1/actions/next", headers=theirs.headers)
    deployment = deploy(SERIAL)
    asked = theirs.headers | {"If-None-Match": quiet.headers["etag"]}
    assert client.get("/device/v1/actions/next", headers=asked).status_code == 304
    assert client.get("/device/v1/actions/next", headers=theirs.headers).json() == {"action": None}
    own = client.get("/device/v1/actions/next", headers=mine.headers).json()["action"]
    assert own["id"] == deployment["action_id"]


def test_a_device_cannot_take_another_devices_platform_registration(
    client: TestClient, server_parts: Server, ctx: Ctx, enroll: Callable[[str], Ipc]
) -> None:
    mine, theirs = enroll(SERIAL), enroll(OTHER)
    before = table_rows(server_parts.engine)
    answer = client.post(
        "/device/v1/register", json={"device_id": mine.device_id}, headers=theirs.headers
    )
    assert answer.status_code == 422
    assert "platform_credential" not in answer.text
    assert changed_tables(before, table_rows(server_parts.engine)) == []
    digests = ctx.session.scalars(select(Device.platform_credential_digest)).all()
    assert set(digests) == {None}


def test_only_a_current_device_credential_opens_the_device_api(
    client: TestClient, ctx: Ctx, enroll: Callable[[str], Ipc]
) -> None:
    ipc = enroll(SERIAL)
    platform = client.post(
        "/device/v1/register", json={"device_id": ipc.device_id}, headers=ipc.headers
    ).json()["platform_credential"]
    token = devices.create_enrollment_token(ctx, serial=SERIAL)
    ctx.session.commit()
    again = client.post(
        "/device/v1/enroll", json={"enrollment_token": token, "serial": SERIAL, "hardware": {}}
    )
    assert again.status_code == 200
    fresh = {"Authorization": f"Bearer {again.json()['credential']}"}

    for stale in (ipc.credential, platform, token):
        answer = client.get("/device/v1/actions/next", headers={"Authorization": f"Bearer {stale}"})
        assert answer.status_code == 401, stale[:4]
    assert client.get("/device/v1/actions/next", headers=fresh).status_code == 200


def test_an_expired_enrollment_token_enrolls_nothing(
    client: TestClient,
    server_parts: Server,
    ctx: Ctx,
    clock: ManualClock,
    machines: list[str],
) -> None:
    token = devices.create_enrollment_token(ctx, serial=SERIAL)
    ctx.session.commit()
    clock.advance(devices.TOKEN_LIFETIME + timedelta(minutes=1))
    body = {"enrollment_token": token, "serial": SERIAL, "hardware": {}}
    answer = _refused_without_change(
        server_parts, lambda: client.post("/device/v1/enroll", json=body)
    )
    assert "expired" in answer.json()["detail"] and "credential" not in answer.json()


def test_tuf_metadata_names_cannot_reach_files_outside_the_metadata(
    client: TestClient, enroll: Callable[[str], Ipc], release: dict[str, Any]
) -> None:
    ipc = enroll(SERIAL)
    for name in ("..%2Fsecret_key", "..%2F..%2Fkeys", "%2E%2E%2F1.root.json", "root.json.pem"):
        answer = client.get(f"/device/v1/tuf/metadata/{name}", headers=ipc.headers)
        assert answer.status_code == 404, name
        assert b"PRIVATE KEY" not in answer.content
