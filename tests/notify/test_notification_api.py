"""The notifications API and the delivery log page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from notify_helpers import Receiver, free_port

from fleetup.api.deps import Server
from fleetup.core.security import Role
from fleetup.notify import delivery
from support import Account
from web.web_helpers import sign_in

SECRET_URL = "tgram://123456789:secret-token/4242"


def test_a_user_manages_their_channels_and_gets_a_test_message(
    client: TestClient, parts: Server, make_account: Callable[..., Account]
) -> None:
    tech = make_account(Role.technician)
    receiver = Receiver(free_port())
    added = client.post(
        "/api/v1/me/subscriptions",
        json={"url": receiver.url, "language": "zh-TW"},
        headers=tech.headers,
    )
    assert added.status_code == 201, added.text
    assert added.json()["label"].startswith(f"json://127.0.0.1:{receiver.port}/")
    again = client.post(
        "/api/v1/me/subscriptions", json={"url": receiver.url}, headers=tech.headers
    )
    assert again.status_code == 409
    bad = client.post("/api/v1/me/subscriptions", json={"url": "nope://x"}, headers=tech.headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "url"

    sent = client.post("/api/v1/me/test-notification", headers=tech.headers)
    assert sent.json() == {"queued": 1}
    receiver.start()
    try:
        assert delivery.deliver_due(parts) == 1
    finally:
        receiver.stop()
    assert receiver.titles() == ["[fleetup] 測試訊息"]

    mine = client.get("/api/v1/me/subscriptions", headers=tech.headers).json()
    gone = client.delete(f"/api/v1/me/subscriptions/{mine[0]['id']}", headers=tech.headers)
    assert gone.status_code == 204
    assert client.get("/api/v1/me/subscriptions", headers=tech.headers).json() == []


def test_managers_manage_others_channels_and_nobody_sees_the_url(
    client: TestClient, parts: Server, make_account: Callable[..., Account]
) -> None:
    manager = make_account(Role.manager)
    tech = make_account(Role.technician)
    added = client.post(
        f"/api/v1/users/{tech.username}/subscriptions",
        json={"url": SECRET_URL, "language": "en"},
        headers=manager.headers,
    )
    assert added.status_code == 201, added.text
    refused = client.get(f"/api/v1/users/{manager.username}/subscriptions", headers=tech.headers)
    assert refused.status_code == 403
    listed = client.get(f"/api/v1/users/{tech.username}/subscriptions", headers=manager.headers)
    assert "secret-token" not in listed.text
    client.post("/api/v1/me/test-notification", headers=tech.headers)
    log = client.get("/api/v1/notifications?status=queued", headers=manager.headers)
    assert log.status_code == 200
    body = log.json()
    assert body["total"] == 1
    assert body["items"][0]["recipient"] == f"user:{tech.username}"
    assert "secret-token" not in log.text
    assert client.get("/api/v1/notifications", headers=tech.headers).status_code == 403
    wrong = client.get("/api/v1/notifications?status=lost", headers=manager.headers)
    assert wrong.status_code == 422


def test_the_delivery_log_page_shows_status_and_attempts_in_both_languages(
    client: TestClient, parts: Server, make_account: Callable[..., Account]
) -> None:
    manager = make_account(Role.manager)
    client.post("/api/v1/me/test-notification", headers=manager.headers)
    sign_in(client, manager)
    client.cookies.set("lang", "en")
    english = client.get("/notifications")
    assert english.status_code == 200, english.text
    assert "No channel" in english.text and "test_message" in english.text
    client.cookies.set("lang", "zh-TW")
    chinese = client.get("/notifications?status=no_channel")
    assert "無通知管道" in chinese.text
