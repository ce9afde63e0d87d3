"""The technicians' day plans: each technician's visits on a day, planned against actual."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_helpers import sign_in

from campaigns.conftest import settle
from fleetup.api.deps import Server
from fleetup.campaigns.models import Visit
from fleetup.campaigns.scheduled import check_gates
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from support import Account

pytest_plugins = ["campaigns.conftest"]
TAIPEI = ZoneInfo("Asia/Taipei")


@pytest.fixture
def booked(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    clock: ManualClock,
    server_parts: Server,
) -> list[dict[str, Any]]:
    """The campaign running with wave D1 (4 machines) started now: its visits booked."""
    url = f"/api/v1/campaigns/{campaign['id']}"
    body = {"selection": {"kind": "count", "count": 4}, "planned_start": clock.now().isoformat()}
    assert client.patch(f"{url}/waves/D1", headers=manager.headers, json=body).status_code == 200
    assert client.post(f"{url}/start", headers=manager.headers).status_code == 200
    check_gates(server_parts)
    visits: list[dict[str, Any]] = client.get(f"{url}/visits", headers=manager.headers).json()
    assert len(visits) == 4
    return visits


def _as(client: TestClient, account: Account, lang: str = "en") -> None:
    client.cookies.set("lang", lang)
    sign_in(client, account)


def _day(visit: dict[str, Any]) -> str:
    return datetime.fromisoformat(visit["planned_start"]).astimezone(TAIPEI).date().isoformat()


def test_each_technician_sees_their_visits_of_the_day_in_booked_order(
    client: TestClient,
    make_account: Callable[..., Account],
    campaign: dict[str, Any],
    booked: list[dict[str, Any]],
) -> None:
    _as(client, make_account(Role.viewer))
    first = booked[0]
    page = client.get(f"/campaigns/{campaign['id']}/schedule?day={_day(first)}")
    assert page.status_code == 200, page.text
    html = page.text
    on_the_day = [v for v in booked if _day(v) == _day(first)]
    for visit in on_the_day:
        assert f'data-technician="{visit["technician"]}"' in html
        assert f'data-serial="{visit["serial"]}" data-status="planned"' in html
    planned = datetime.fromisoformat(first["planned_start"]).astimezone(TAIPEI)
    assert planned.strftime("%H:%M") in html
    serials = [v["serial"] for v in on_the_day if v["technician"] == first["technician"]]
    positions = [html.index(f'data-serial="{serial}"') for serial in serials]
    assert positions == sorted(positions)
    assert f'data-day="{_day(first)}">{len(on_the_day)}<' in html  # the row of coming days


def test_a_visit_that_began_late_says_by_how_much(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    booked: list[dict[str, Any]],
    ctx: Ctx,
    server_parts: Server,
) -> None:
    first = booked[0]
    visit = ctx.session.scalar(select(Visit).where(Visit.id == first["id"]))
    assert visit is not None
    visit.actual_start = visit.planned_start + timedelta(minutes=12)
    visit.actual_end = visit.planned_start + timedelta(minutes=80)
    visit.status = "done"
    ctx.session.commit()
    settle(server_parts, first["serial"], "succeeded")
    _as(client, manager)
    html = client.get(f"/campaigns/{campaign['id']}/schedule?day={_day(first)}").text
    assert f'data-serial="{first["serial"]}" data-status="done"' in html
    assert 'data-late="12"' in html
    assert "began 12 min late" in html
    assert 'class="gantt__actual gantt__actual--done"' in html


def test_a_day_without_visits_says_so_and_a_bad_day_is_named(
    client: TestClient, manager: Account, campaign: dict[str, Any], booked: list[dict[str, Any]]
) -> None:
    _as(client, manager)
    empty = client.get(f"/campaigns/{campaign['id']}/schedule?day=2030-01-01")
    assert "No visit is booked on this day." in empty.text
    bad = client.get(f"/campaigns/{campaign['id']}/schedule?day=tomorrow")
    assert bad.status_code == 400
    assert "tomorrow is not a day" in bad.text
    assert client.get("/campaigns/999/schedule").status_code == 404


def test_the_day_plans_speak_chinese(
    client: TestClient, manager: Account, campaign: dict[str, Any], booked: list[dict[str, Any]]
) -> None:
    _as(client, manager, "zh-TW")
    html = client.get(f"/campaigns/{campaign['id']}/schedule?day={_day(booked[0])}").text
    assert "技術人員日程" in html
    assert "與計畫相比" in html
