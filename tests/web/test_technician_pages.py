"""The technician's day page: today's machines, and the visits booked for the days to come."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from web_helpers import sign_in

from customers.customer_support import make_machine
from fleetup.api.deps import Server
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.customers import notices
from fleetup.upgrades import service as upgrades
from support import Account

TAIPEI = ZoneInfo("Asia/Taipei")


def _visit(ctx: Ctx, serial: str, technician: str, in_days: float) -> None:
    start = ctx.now() + timedelta(days=in_days)
    notices.schedule_notice(
        ctx,
        serial=serial,
        visit_start=start,
        visit_end=start + timedelta(hours=2),
        expected_minutes=65,
        technician=technician,
    )


def test_the_day_page_lists_today_and_the_next_two_weeks_of_visits(
    client: TestClient, ctx: Ctx, server_parts: Server, make_account: Callable[..., Account]
) -> None:
    tech = make_account(Role.technician, "tech-wu")
    today = make_machine(ctx, "TC-0301", customer="C01")
    upgrades.start_upgrade(ctx, server_parts.library, serial=today)
    _visit(ctx, today, tech.username, 0)
    _visit(ctx, make_machine(ctx, "TC-0302", customer="C02"), tech.username, 3)
    _visit(ctx, make_machine(ctx, "TC-0303", customer="C03"), tech.username, 20)  # beyond two weeks
    _visit(ctx, make_machine(ctx, "TC-0304", customer="C04"), "someone-else", 2)
    ctx.session.commit()
    client.cookies.set("lang", "en")
    sign_in(client, tech)

    page = client.get("/technician").text
    todays, coming = page.split("Coming up", 1)
    assert 'data-serial="TC-0301"' in todays
    assert 'data-serial="TC-0302"' in coming
    assert f"{(ctx.now() + timedelta(days=3)).astimezone(TAIPEI):%Y-%m-%d}" in coming
    assert "TC-0303" not in page and "TC-0304" not in page

    client.cookies.set("lang", "zh-TW")
    assert "接下來的行程" in client.get("/technician").text


def test_without_visits_the_day_page_says_so_for_today_and_the_days_to_come(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    client.cookies.set("lang", "en")
    sign_in(client, make_account(Role.technician, "tech-idle"))
    page = client.get("/technician").text
    assert "No machine is planned for you today." in page
    assert "No visit is booked for you in the next 14 days." in page
