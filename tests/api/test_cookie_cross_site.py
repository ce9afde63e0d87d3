"""A signed-in browser's cookie does not carry a change to the API from another site."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from fleetup.core.security import Role
from support import Account
from web.web_helpers import sign_in


def test_a_cookie_post_from_another_site_is_refused(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    manager = make_account(Role.manager)
    sign_in(client, manager)
    refused = client.post(
        "/api/v1/me/subscriptions",
        json={"url": "json://example.invalid/hook"},
        headers={"Origin": "https://attacker.example"},
    )
    assert refused.status_code == 403
    assert client.get("/api/v1/me/subscriptions").json() == []
    same_site = client.post(
        "/api/v1/me/subscriptions",
        json={"url": "json://example.invalid/hook"},
        headers={"Origin": "http://testserver"},
    )
    assert same_site.status_code == 201, same_site.text
    assert len(client.get("/api/v1/me/subscriptions").json()) == 1


def test_a_bearer_token_is_not_bound_to_a_site(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    manager = make_account(Role.manager)
    answer = client.post(
        "/api/v1/me/subscriptions",
        json={"url": "json://example.invalid/hook"},
        headers={**manager.headers, "Origin": "https://tools.example"},
    )
    assert answer.status_code == 201, answer.text
