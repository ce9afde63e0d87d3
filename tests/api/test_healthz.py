"""``/healthz`` needs no credential and ignores any: an IPC's client sends its device
credential on every request, and a load balancer or a stale script may send anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from fleetup import __version__
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices import service as devices
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import CustomerIn, MachineIn, SiteIn
from support import Account


def _device_credential(ctx: Ctx, client: TestClient) -> str:
    fleet.create_customer(ctx, CustomerIn(code="HZ", name="健康檢查"))
    fleet.create_site(ctx, SiteIn(customer_code="HZ", code="S1", name="廠"))
    machine = MachineIn(
        serial="HZ-1", model="CNC-5", ipc_os="linux", customer_code="HZ", site_code="S1"
    )
    fleet.create_machine(ctx, machine)
    token = devices.create_enrollment_token(ctx, serial="HZ-1")
    ctx.session.commit()
    answer = client.post(
        "/device/v1/enroll",
        json={"enrollment_token": token, "serial": "HZ-1", "hardware": {"os": "linux"}},
    )
    assert answer.status_code == 200, answer.text
    credential: str = answer.json()["credential"]
    return credential


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "garbage",
    ],
)
def test_health_check_answers_whatever_authorization_says(
    client: TestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = client.get("/healthz", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ok", "version": __version__}


def test_health_check_answers_an_ipc_sending_its_device_credential(
    client: TestClient, ctx: Ctx
) -> None:
    headers = {"Authorization": f"Bearer {_device_credential(ctx, client)}"}
    assert client.get("/healthz", headers=headers).status_code == 200
    # The same header is still the IPC's credential where it counts.
    assert client.get("/device/v1/actions/next", headers=headers).status_code in (200, 204)


def test_only_the_health_check_overlooks_an_unknown_token(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    account = make_account(Role.viewer)
    assert client.get("/healthz", headers=account.headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=account.headers).status_code == 200
    unknown = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/v1/auth/me", headers=unknown).status_code == 401
    # A public route that reads its caller still tells them their token is unknown.
    assert client.get("/api/v1/public/notices/some-link", headers=unknown).status_code == 401
