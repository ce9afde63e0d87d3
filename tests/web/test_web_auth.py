"""Signing in and out of the web app, the sign-in redirect, and CSRF refusals."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from web_helpers import csrf_token, sign_in

from fleetup.core.security import Role
from support import Account

EN = {"Accept-Language": "en"}


def test_a_page_redirects_to_sign_in_when_nobody_is_signed_in(client: TestClient) -> None:
    response = client.get("/machines?customer=C01", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmachines%3Fcustomer%3DC01"
    machine = client.get("/machines/M-1001", follow_redirects=False)
    assert machine.headers["location"] == "/login?next=%2Fmachines%2FM-1001"


def test_an_htmx_request_without_sign_in_is_told_to_navigate(client: TestClient) -> None:
    response = client.get(
        "/machines?state=migrating", headers={"HX-Request": "true"}, follow_redirects=False
    )
    assert response.headers["HX-Redirect"] == "/login?next=%2Fmachines%3Fstate%3Dmigrating"
    assert response.text == ""


def test_front_door_leads_to_sign_in_then_to_each_roles_own_page(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    homes = {
        Role.technician: "/technician",
        Role.on_call: "/on-call",
        Role.manager: "/campaigns",
        Role.admin: "/campaigns",
        Role.viewer: "/machines",
    }
    for role, home in homes.items():
        account = make_account(role)
        form = client.get("/login")
        assert 'name="next" value="/"' in form.text
        signed_in = client.post(
            "/login",
            data={
                "username": account.username,
                "password": account.password,
                "next": "/",
                "csrf_token": csrf_token(form.text),
            },
        )
        assert signed_in.status_code == 200
        assert signed_in.url.path == home, role
        client.cookies.clear()


def test_sign_in_sets_the_session_cookie_and_returns_to_next(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.manager)
    form = client.get("/login?next=/machines%3Fstate%3Dmigrating")
    assert 'name="next" value="/machines?state=migrating"' in form.text
    response = client.post(
        "/login",
        data={
            "username": account.username,
            "password": account.password,
            "next": "/machines?state=migrating",
            "csrf_token": csrf_token(form.text),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/machines?state=migrating"
    # The API accepts the same cookie: one sign-in serves both.
    assert client.get("/api/v1/auth/me").json()["username"] == account.username
    assert client.get("/login", follow_redirects=False).status_code == 303


def test_wrong_password_shows_a_clear_error_and_keeps_the_username(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.technician)
    form = client.get("/login", headers=EN)
    response = client.post(
        "/login",
        data={
            "username": account.username,
            "password": "wrong",
            "csrf_token": csrf_token(form.text),
        },
        headers=EN,
    )
    assert response.status_code == 401
    assert 'role="alert">Wrong username or password.' in response.text
    assert f'value="{account.username}"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert "fleetup_session" not in client.cookies
    assert client.get("/machines", follow_redirects=False).status_code == 303


def test_wrong_password_error_is_in_chinese_for_a_chinese_visitor(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.technician)
    form = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": account.username,
            "password": "wrong",
            "csrf_token": csrf_token(form.text),
        },
    )
    assert "帳號或密碼錯誤" in response.text


def test_empty_sign_in_form_asks_for_both_fields(client: TestClient) -> None:
    form = client.get("/login", headers=EN)
    response = client.post(
        "/login", data={"username": " ", "csrf_token": csrf_token(form.text)}, headers=EN
    )
    assert response.status_code == 422
    assert "Enter both your username and your password." in response.text


def test_sign_in_without_a_csrf_token_is_refused(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.technician)
    client.get("/login")
    response = client.post(
        "/login",
        data={"username": account.username, "password": account.password},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "fleetup_session" not in client.cookies


def test_a_csrf_token_from_another_browser_is_refused(
    app: object, client: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.technician)
    with TestClient(app) as attacker:  # type: ignore[arg-type]
        stolen = csrf_token(attacker.get("/login").text)
    client.get("/login")  # the victim has a CSRF cookie of their own
    response = client.post(
        "/login",
        data={"username": account.username, "password": account.password, "csrf_token": stolen},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_sign_out_without_a_valid_csrf_token_is_refused(
    client: TestClient, technician: Account
) -> None:
    valid = csrf_token(client.get("/lang/en?next=/machines").text)
    for token in ("", "forged", valid + "x"):
        refused = client.post("/logout", data={"csrf_token": token}, headers=EN)
        assert refused.status_code == 403
        assert "text/html" in refused.headers["content-type"]
        assert "The form has expired" in refused.text
    assert client.get("/machines", follow_redirects=False).status_code == 200


def test_a_token_from_before_sign_in_does_not_pass_after_it(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.technician)
    anonymous_token = csrf_token(client.get("/login").text)
    sign_in(client, account)
    refused = client.post("/logout", data={"csrf_token": anonymous_token})
    assert refused.status_code == 403


def test_sign_out_ends_the_session(client: TestClient, technician: Account) -> None:
    page = client.get("/machines")
    response = client.post(
        "/logout", data={"csrf_token": csrf_token(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/machines", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/auth/me").status_code == 401


def test_pages_carry_security_headers(client: TestClient) -> None:
    page = client.get("/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
