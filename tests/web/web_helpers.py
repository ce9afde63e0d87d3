"""Helpers for the web tests: a small fleet, reading a page's CSRF token, signing in."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from fleetup.core.context import Ctx
from fleetup.fleet import service
from fleetup.fleet.schemas import ContactIn, CustomerIn, MachineIn, MaintenanceWindow, SiteIn
from support import Account

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# Two customers that both have a site coded S1, so filters must tell them apart.
MACHINES = [
    ("M-1001", "C01", "S1", "on_old_system"),
    ("M-1002", "C01", "S1", "migrating"),
    ("M-1003", "C01", "S2", "on_new_platform"),
    ("M-2001", "C02", "S1", "on_old_system"),
    ("M-2002", "C02", "S1", "on_new_platform"),
]


def seed_fleet(ctx: Ctx) -> None:
    service.create_customer(
        ctx,
        CustomerIn(
            code="C01",
            name="精密機械股份有限公司",
            contacts=[ContactIn(name="王小明", phone="04-2345-6789", line_id="wang.ming")],
        ),
    )
    service.create_customer(ctx, CustomerIn(code="C02", name="高雄鋼鐵工業"))
    window = MaintenanceWindow(days=[5, 6], start="22:00", end="06:00")
    for customer, code, name in (
        ("C01", "S1", "台中一廠"),
        ("C01", "S2", "台中二廠"),
        ("C02", "S1", "高雄總廠"),
    ):
        service.create_site(
            ctx,
            SiteIn(customer_code=customer, code=code, name=name, maintenance_windows=[window]),
        )
    for serial, customer, site, state in MACHINES:
        service.create_machine(
            ctx,
            MachineIn.model_validate(
                {
                    "serial": serial,
                    "model": "CNC-500",
                    "ipc_os": "Windows 10 IoT",
                    "customer_code": customer,
                    "site_code": site,
                    "state": state,
                }
            ),
        )
    ctx.session.commit()


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, account: Account) -> None:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": account.username,
            "password": account.password,
            "csrf_token": csrf_token(form.text),
            "next": "/machines",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
