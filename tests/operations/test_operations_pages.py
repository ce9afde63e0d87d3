"""The on-call pages: open incidents with their timer, acknowledge, timeline, review, problems."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from ops_helpers import Fleet

from fleetup.api.deps import Server
from fleetup.operations import scheduled

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _sign_in(ops_fleet: Fleet, who: str) -> None:
    account = ops_fleet.people[who]
    form = ops_fleet.client.get("/login")
    token = CSRF.search(form.text)
    assert token
    answer = ops_fleet.client.post(
        "/login",
        data={
            "username": account.username,
            "password": account.password,
            "csrf_token": token.group(1),
            "next": "/on-call",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def _incident(ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]) -> int:
    for serial in ops_fleet.ipcs:
        beat(serial)
    ops_fleet.clock.advance(timedelta(minutes=6))
    beat("YJ-TC1-001")
    beat("YJ-TC1-002")
    scheduled.watch(server_parts)
    return int(ops_fleet.get("/api/v1/incidents")[0]["id"])


def test_on_call_page_shows_the_timer_and_acknowledges(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    incident_id = _incident(ops_fleet, server_parts, beat)
    ops_fleet.clock.advance(timedelta(minutes=4, seconds=30))
    _sign_in(ops_fleet, "on_call")
    ops_fleet.client.get("/lang/en?next=/on-call")
    page = ops_fleet.client.get("/on-call")
    assert page.status_code == 200
    assert "10:30 left to acknowledge" in page.text
    assert "heartbeat_missing" in page.text

    token = CSRF.search(page.text)
    assert token
    answer = ops_fleet.client.post(
        f"/incidents/{incident_id}/acknowledge",
        data={"csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    detail = ops_fleet.client.get(f"/incidents/{incident_id}")
    assert "Timeline" in detail.text
    assert "acknowledged" in detail.text
    assert "on-call told" in detail.text
    assert ops_fleet.get(f"/api/v1/incidents/{incident_id}")["state"] == "acknowledged"

    token = CSRF.search(detail.text)
    assert token
    ops_fleet.client.post(
        f"/incidents/{incident_id}/review",
        data={
            "csrf_token": token.group(1),
            "root_cause": "switch lost power",
            "task_title": "UPS for the switch",
            "task_owner": "tech-tom",
            "task_due": "2026-04-01",
        },
    )
    body = ops_fleet.get(f"/api/v1/incidents/{incident_id}")
    assert body["state"] == "review"
    assert body["tasks"][0]["title"] == "UPS for the switch"


def test_on_call_page_speaks_chinese_and_shows_overdue(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    _incident(ops_fleet, server_parts, beat)
    ops_fleet.clock.advance(timedelta(minutes=16))
    _sign_in(ops_fleet, "viewer")
    page = ops_fleet.client.get("/on-call", headers={"Accept-Language": "zh-TW"})
    assert "值班" in page.text
    assert "已逾時 1:00" in page.text
    assert "受理</button>" not in page.text  # a viewer reads only


def test_problem_page_walks_the_playbook(ops_fleet: Fleet) -> None:
    problem = ops_fleet.post(
        "/api/v1/problems",
        {"serial": "YJ-TC1-001", "type": "user", "summary": "wrong start sequence"},
        who="technician",
        code=201,
    )
    _sign_in(ops_fleet, "technician")
    ops_fleet.client.get("/lang/en?next=/problems")
    listing = ops_fleet.client.get("/problems")
    assert f"/problems/{problem['id']}" in listing.text
    page = ops_fleet.client.get(f"/problems/{problem['id']}")
    assert "Next step: F1" in page.text
    token = CSRF.search(page.text)
    assert token
    ops_fleet.client.post(
        f"/problems/{problem['id']}/steps",
        data={
            "csrf_token": token.group(1),
            "node": "F1",
            "topics": "start-up, alarms",
            "trainee": "Wang",
        },
    )
    page = ops_fleet.client.get(f"/problems/{problem['id']}")
    assert "Next step: F2" in page.text
    assert "Wang" in page.text
