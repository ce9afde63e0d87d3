"""Who may call what: unauthenticated callers, viewers and managers on the machine routes."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import AccountIn
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from support import Account

SITE = {"customer_code": "C01", "code": "S1", "name": "台中一廠", "address": "台中市西屯區"}
MACHINE = {
    "serial": "M-0001",
    "model": "CNC-500",
    "ipc_os": "Windows 10 IoT",
    "customer_code": "C01",
    "site_code": "S1",
}


def _seed(client: TestClient, manager_headers: dict[str, str]) -> None:
    customer = {"code": "C01", "name": "精密機械股份有限公司"}
    assert (
        client.post("/api/v1/customers", json=customer, headers=manager_headers).status_code == 201
    )
    assert client.post("/api/v1/sites", json=SITE, headers=manager_headers).status_code == 201
    assert client.post("/api/v1/machines", json=MACHINE, headers=manager_headers).status_code == 201


def test_machine_list_refuses_a_caller_without_credentials(client: TestClient) -> None:
    response = client.get("/api/v1/machines")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


def test_viewer_token_lists_machines_but_cannot_write(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    manager = make_account(Role.manager)
    viewer = make_account(Role.viewer)
    _seed(client, manager.headers)

    listing = client.get("/api/v1/machines", headers=viewer.headers)
    assert listing.status_code == 200
    assert [m["serial"] for m in listing.json()["items"]] == ["M-0001"]
    assert listing.json()["items"][0]["site_name"] == "台中一廠"

    other = dict(MACHINE, serial="M-0002")
    refused = client.post("/api/v1/machines", json=other, headers=viewer.headers)
    assert refused.status_code == 403
    patched = client.patch("/api/v1/machines/M-0001", json={"model": "X"}, headers=viewer.headers)
    assert patched.status_code == 403
    after = client.get("/api/v1/machines", headers=viewer.headers).json()
    assert after["total"] == 1 and after["items"][0]["model"] == "CNC-500"


def test_unknown_token_is_refused(client: TestClient) -> None:
    response = client.get("/api/v1/machines", headers={"Authorization": "Bearer fut_nope"})
    assert response.status_code == 401


def test_session_cookie_from_login_admits_the_user(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.viewer)
    wrong = client.post("/api/v1/auth/login", json={"username": viewer.username, "password": "x"})
    assert wrong.status_code == 401
    login = client.post(
        "/api/v1/auth/login",
        json={"username": viewer.username, "password": viewer.password},
    )
    assert login.status_code == 200
    assert client.get("/api/v1/auth/me").json()["role"] == "viewer"
    client.post("/api/v1/auth/logout")
    client.cookies.clear()
    assert client.get("/api/v1/auth/me").status_code == 401


def test_machine_list_pages_and_filters(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    manager = make_account(Role.manager)
    _seed(client, manager.headers)
    second = dict(MACHINE, serial="M-0002", model="LATHE-2")
    assert client.post("/api/v1/machines", json=second, headers=manager.headers).status_code == 201

    page = client.get("/api/v1/machines?limit=1&offset=1", headers=manager.headers).json()
    assert page["total"] == 2 and [m["serial"] for m in page["items"]] == ["M-0002"]
    by_model = client.get("/api/v1/machines?model=LATHE-2", headers=manager.headers).json()
    assert [m["serial"] for m in by_model["items"]] == ["M-0002"]
    unknown = client.get("/api/v1/machines?colour=red", headers=manager.headers)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "query.colour"


def test_an_account_made_for_tokens_only_works_with_its_token_and_no_password_opens_it(
    client: TestClient, ctx: Ctx
) -> None:
    user = accounts.create_token_user(ctx, AccountIn(username="sim-tech-001", role=Role.technician))
    _, token = accounts.create_token(ctx, user=user, name="simulator")
    ctx.session.commit()

    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == "sim-tech-001"
    for password in ("!", "", "x" * 10):
        login = client.post(
            "/api/v1/auth/login", json={"username": "sim-tech-001", "password": password}
        )
        assert login.status_code in (401, 422)
        assert not login.cookies
