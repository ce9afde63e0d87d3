"""Waves and their gates, through the API and the worker's campaign job."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns.conftest import settle
from fleetup.api.deps import Server
from fleetup.campaigns.models import WaveMember
from fleetup.core.audit import snapshot
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.devices.models import DeviceAction
from fleetup.fleet import service as fleet
from fleetup.upgrades.models import SopInstance
from support import Account


def _url(campaign: dict[str, Any], tail: str = "") -> str:
    return f"/api/v1/campaigns/{campaign['id']}{tail}"


def _wave(client: TestClient, manager: Account, campaign: dict[str, Any], code: str) -> Any:
    answer = client.get(_url(campaign), headers=manager.headers)
    return next(w for w in answer.json()["waves"] if w["code"] == code)


def _members(client: TestClient, manager: Account, campaign: dict[str, Any], code: str) -> Any:
    answer = client.get(_url(campaign, f"/waves/{code}/members"), headers=manager.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _start_now(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    clock: ManualClock,
    *,
    size: int,
    gate: dict[str, Any] | None = None,
) -> None:
    """Make D1 take ``size`` machines and start now, then start the campaign."""
    body: dict[str, Any] = {
        "selection": {"kind": "count", "count": size},
        "planned_start": clock.now().isoformat(),
    }
    if gate:
        body["gate"] = gate
    answer = client.patch(_url(campaign, "/waves/D1"), headers=manager.headers, json=body)
    assert answer.status_code == 200, answer.text
    assert client.post(_url(campaign, "/start"), headers=manager.headers).status_code == 200


def test_campaign_from_template_follows_chart_1(
    client: TestClient, manager: Account, campaign: dict[str, Any]
) -> None:
    assert [(p["code"], p["first_week"], p["last_week"]) for p in campaign["phases"]] == [
        ("B", 1, 2),
        ("C", 3, 8),
        ("D", 9, 10),
        ("E", 11, 14),
        ("F", 15, 16),
    ]
    assert [a["code"] for a in campaign["activities"]] == [
        "B1", "B2", "B3", "C1", "C2", "C3", "D1", "D2", "E1", "E2", "E3", "E4", "F1", "F2", "F3"
    ]  # fmt: skip
    waves = {w["code"]: w for w in campaign["waves"]}
    assert list(waves) == ["D1", "D2", "E1", "E2", "E3"]
    assert waves["E1"]["selection"] == {"kind": "count", "count": 20}
    assert waves["E2"]["selection"] == {"kind": "count", "count": 40}
    assert waves["E3"]["selection"] == {"kind": "rest", "planned": 30}
    # Week 11 starts Monday 2026-05-11; 09:00 in Taipei is 01:00 UTC.
    assert waves["E1"]["planned_start"].startswith("2026-05-11T01:00:00")
    assert waves["E2"]["planned_start"].startswith("2026-05-18T01:00:00")
    assert waves["D2"]["gate"]["advance"] == "approval"


def test_a_campaign_in_an_unknown_time_zone_is_refused_by_field(
    client: TestClient, manager: Account, release: str
) -> None:
    body = {"name": "x", "release_version": release, "starts_on": "2026-03-02"}
    answer = client.post(
        "/api/v1/campaigns", headers=manager.headers, json=body | {"timezone": "Asia/Taipai"}
    )
    assert answer.status_code == 422
    assert "timezone" in answer.text and "unknown time zone" in answer.text
    assert client.get("/api/v1/campaigns", headers=manager.headers).json() == []


def test_a_wave_starts_at_its_time_with_each_deployment_inside_its_visit(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    later = clock.now() + timedelta(hours=5)
    client.patch(
        _url(campaign, "/waves/D1"),
        headers=manager.headers,
        json={"planned_start": later.isoformat(), "selection": {"kind": "count", "count": 6}},
    )
    client.post(_url(campaign, "/start"), headers=manager.headers)
    look(server_parts)
    assert _wave(client, manager, campaign, "D1")["status"] == "planned"

    clock.set(later)
    look(server_parts)
    wave = _wave(client, manager, campaign, "D1")
    assert wave["status"] == "running"
    assert wave["counts"]["scheduled"] == 6
    visits = client.get(_url(campaign, "/visits"), headers=manager.headers).json()
    assert len(visits) == 6
    with server_parts.sessions() as session:
        actions = session.scalars(select(DeviceAction).order_by(DeviceAction.id)).all()
        windows = sorted((a.not_before, a.not_after) for a in actions)
    planned = sorted((v["planned_start"], v["planned_end"]) for v in visits)
    assert [(a.isoformat(), b.isoformat()) for a, b in windows] == [
        (a.replace("Z", "+00:00"), b.replace("Z", "+00:00")) for a, b in planned
    ]
    by_tech: dict[str, list[tuple[str, str]]] = {}
    for visit in visits:
        by_tech.setdefault(visit["technician"], []).append(
            (visit["planned_start"], visit["planned_end"])
        )
    for spans in by_tech.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    technician = visits[0]["technician"]
    planned_only = client.get(
        _url(campaign, f"/visits?technician={technician}&status=planned"),
        headers=manager.headers,
    ).json()
    assert [v["id"] for v in planned_only] == [
        v["id"] for v in visits if v["technician"] == technician
    ]
    assert client.get(_url(campaign, "/visits?status=done"), headers=manager.headers).json() == []
    unknown = client.get(_url(campaign, "/visits?status=lost"), headers=manager.headers)
    assert unknown.status_code == 422 and "status" in unknown.text


def test_gate_opens_when_the_success_threshold_is_exactly_met(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    gate = {"success_share": 0.9, "advance": "auto", "error_count": 5}
    _start_now(client, manager, campaign, clock, size=10, gate=gate)
    look(server_parts)
    serials = [m["serial"] for m in _members(client, manager, campaign, "D1")]
    for serial in serials[:8]:
        settle(server_parts, serial, "succeeded")
    look(server_parts)
    assert _wave(client, manager, campaign, "D1")["gate_state"] == "closed"  # 80 % < 90 %

    settle(server_parts, serials[8], "succeeded")
    look(server_parts)
    wave = _wave(client, manager, campaign, "D1")
    assert wave["gate_state"] == "open"  # 90 % = 90 %
    assert wave["status"] == "running"  # one machine is still at work
    events = client.get(_url(campaign, "/gate-events"), headers=manager.headers).json()
    assert [e["kind"] for e in events] == ["started", "opened"]


def test_the_next_wave_waits_for_the_gate_and_its_own_time(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    _start_now(client, manager, campaign, clock, size=2)
    look(server_parts)
    client.patch(
        _url(campaign, "/waves/D2"),
        headers=manager.headers,
        json={"planned_start": clock.now().isoformat(), "selection": {"kind": "count", "count": 2}},
    )
    look(server_parts)
    assert _wave(client, manager, campaign, "D2")["status"] == "planned"  # D1's gate is closed

    for member in _members(client, manager, campaign, "D1"):
        settle(server_parts, member["serial"], "succeeded")
    look(server_parts)
    look(server_parts)
    assert _wave(client, manager, campaign, "D1")["status"] == "completed"
    assert _wave(client, manager, campaign, "D2")["status"] == "running"
    d1 = next(
        a
        for a in client.get(_url(campaign), headers=manager.headers).json()["activities"]
        if a["code"] == "D1"
    )
    assert d1["status"] == "done" and d1["actual_end"] is not None


def test_error_threshold_pauses_the_wave_and_holds_queued_deployments(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    gate = {"success_share": 0.95, "advance": "auto", "error_count": 2}
    _start_now(client, manager, campaign, clock, size=6, gate=gate)
    look(server_parts)
    serials = [m["serial"] for m in _members(client, manager, campaign, "D1")]
    settle(server_parts, serials[0], "failed")
    settle(server_parts, serials[1], "running")
    look(server_parts)
    assert _wave(client, manager, campaign, "D1")["status"] == "running"  # 1 < 2

    settle(server_parts, serials[2], "failed")
    look(server_parts)
    wave = _wave(client, manager, campaign, "D1")
    assert wave["status"] == "paused"
    assert "error threshold" in wave["status_reason"]
    assert wave["counts"]["held"] == 3  # the three not started; the running one goes on
    with server_parts.sessions() as session:
        statuses = sorted(session.scalars(select(DeviceAction.status)))
    assert statuses == ["failed", "failed", "held", "held", "held", "running"]
    outbox = client.get("/api/v1/notifications/deliveries", headers=manager.headers)
    if outbox.status_code == 200:
        assert any("gate_paused" in str(row) for row in outbox.json()["items"])

    answer = client.post(
        _url(campaign, "/waves/D1/resume"),
        headers=manager.headers,
        json={"reason": "bad cable at the first two; fixed"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "running"
    assert answer.json()["counts"]["scheduled"] == 3
    look(server_parts)  # the two accepted failures no longer count
    assert _wave(client, manager, campaign, "D1")["status"] == "running"


def test_decisions_need_a_reason(
    client: TestClient, manager: Account, campaign: dict[str, Any], clock: ManualClock
) -> None:
    _start_now(client, manager, campaign, clock, size=2)
    answer = client.post(_url(campaign, "/waves/D1/pause"), headers=manager.headers, json={})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"].endswith("reason")


def test_abort_cancels_what_has_not_started(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    _start_now(client, manager, campaign, clock, size=4)
    look(server_parts)
    serials = [m["serial"] for m in _members(client, manager, campaign, "D1")]
    settle(server_parts, serials[0], "succeeded")
    answer = client.post(
        _url(campaign, "/waves/D1/abort"), headers=manager.headers, json={"reason": "recall"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "aborted"
    assert answer.json()["counts"]["cancelled"] == 3
    visits = client.get(_url(campaign, "/visits"), headers=manager.headers).json()
    assert sorted(v["status"] for v in visits) == ["cancelled", "cancelled", "cancelled", "done"]
    with server_parts.sessions() as session:
        assert sorted(session.scalars(select(DeviceAction.status))) == [
            "cancelled", "cancelled", "cancelled", "succeeded"
        ]  # fmt: skip


def test_retry_deploys_again_to_the_failed_machines_only(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    gate = {"success_share": 1.0, "advance": "auto", "error_count": 10, "error_share": None}
    _start_now(client, manager, campaign, clock, size=4, gate=gate)
    look(server_parts)
    serials = [m["serial"] for m in _members(client, manager, campaign, "D1")]
    settle(server_parts, serials[0], "succeeded")
    settle(server_parts, serials[1], "succeeded")
    settle(server_parts, serials[2], "failed")
    settle(server_parts, serials[3], "failed")
    look(server_parts)
    assert _wave(client, manager, campaign, "D1")["status"] == "completed"

    answer = client.post(
        _url(campaign, "/waves/D1/retry"), headers=manager.headers, json={"reason": "new cable"}
    )
    assert answer.status_code == 200, answer.text
    members = {m["serial"]: m for m in _members(client, manager, campaign, "D1")}
    assert [members[s]["attempts"] for s in serials] == [1, 1, 2, 2]
    assert [members[s]["status"] for s in serials] == [
        "succeeded", "succeeded", "scheduled", "scheduled"
    ]  # fmt: skip
    with server_parts.sessions() as session:
        assert len(session.scalars(select(DeviceAction)).all()) == 6


def test_a_machine_added_later_joins_a_running_wave(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
    small_fleet: list[str],
) -> None:
    _start_now(client, manager, campaign, clock, size=2)
    look(server_parts)
    taken = {m["serial"] for m in _members(client, manager, campaign, "D1")}
    newcomer = next(s for s in small_fleet if s not in taken)
    answer = client.post(
        _url(campaign, "/waves/D1/members"), headers=manager.headers, json={"serials": [newcomer]}
    )
    assert answer.status_code == 200, answer.text
    joined = {m["serial"]: m for m in answer.json()}[newcomer]
    assert joined["late"] is True and joined["status"] == "scheduled"

    again = client.post(
        _url(campaign, "/waves/D1/members"),
        headers=manager.headers,
        json={"serials": [newcomer, "NO-SUCH"]},
    )
    assert again.status_code == 422
    fields = {e["field"] for e in again.json()["errors"]}
    assert fields == {"serials.0", "serials.1"}
    assert len(_members(client, manager, campaign, "D1")) == 3


def test_a_wave_that_needs_approval_waits_for_a_manager(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    gate = {"success_share": 1.0, "advance": "approval", "error_count": 1}
    _start_now(client, manager, campaign, clock, size=1, gate=gate)
    look(server_parts)
    serial = _members(client, manager, campaign, "D1")[0]["serial"]
    settle(server_parts, serial, "succeeded")
    look(server_parts)
    assert _wave(client, manager, campaign, "D1")["gate_state"] == "awaiting_approval"
    answer = client.post(
        _url(campaign, "/waves/D1/approve"), headers=manager.headers, json={"reason": "trial ok"}
    )
    assert answer.json()["gate_state"] == "open"
    repeat = client.post(
        _url(campaign, "/waves/D1/approve"), headers=manager.headers, json={"reason": "again"}
    )
    assert repeat.status_code == 409


def test_the_gate_check_is_skipped_until_a_member_moves_or_a_manager_decides(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    gate = {"success_share": 0.95, "advance": "auto", "error_count": 1}
    _start_now(client, manager, campaign, clock, size=3, gate=gate)
    assert look(server_parts) == {"campaigns.check_gates": 1}  # D1 starts
    look(server_parts)  # its own gate event
    assert look(server_parts) == {}  # nothing moved: skipped

    serials = [m["serial"] for m in _members(client, manager, campaign, "D1")]
    settle(server_parts, serials[0], "running")
    assert look(server_parts) == {"campaigns.check_gates": 1}
    assert look(server_parts) == {}

    settle(server_parts, serials[1], "failed")
    assert look(server_parts) == {"campaigns.check_gates": 1}
    assert _wave(client, manager, campaign, "D1")["status"] == "paused"
    look(server_parts)
    assert look(server_parts) == {}

    resumed = client.post(
        _url(campaign, "/waves/D1/resume"), headers=manager.headers, json={"reason": "fixed"}
    )
    assert resumed.status_code == 200, resumed.text
    assert look(server_parts) == {"campaigns.check_gates": 1}  # the decision is a change


def test_an_upgrade_step_that_moves_no_member_leaves_the_gate_check_skipped(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    _start_now(client, manager, campaign, clock, size=2)
    look(server_parts)  # D1 starts
    look(server_parts)  # its own gate event
    assert look(server_parts) == {}

    serial = _members(client, manager, campaign, "D1")[0]["serial"]
    with server_parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=clock)
        machine = fleet.get_machine(session, serial=serial)
        member = session.scalars(
            select(WaveMember).where(WaveMember.machine_id == machine.id)
        ).one()
        instance = session.get_one(SopInstance, member.instance_id)
        before = snapshot(instance)
        instance.current_node = "E2"  # a step inside the upgrade: still running
        ctx.audit("update", instance, before)
        session.commit()
    assert look(server_parts) == {}  # the member's status did not move

    settle(server_parts, serial, "running")
    assert look(server_parts) == {"campaigns.check_gates": 1}
    assert _wave(client, manager, campaign, "D1")["counts"]["running"] == 1


def test_a_later_look_books_a_new_visit_for_a_machine_whose_window_closed(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    server_parts: Server,
    look: Callable[[Server], dict[str, int]],
    clock: ManualClock,
) -> None:
    _start_now(client, manager, campaign, clock, size=1)
    look(server_parts)  # D1 starts: one visit, one queued deployment
    look(server_parts)
    assert look(server_parts) == {}
    with server_parts.sessions() as session:
        first = session.scalars(select(DeviceAction)).one()
        assert first.status == "queued" and first.not_after is not None
        closed = first.not_after

    clock.set(closed + timedelta(minutes=1))  # nothing audited: only time passed
    assert look(server_parts) == {"campaigns.check_gates": 1}
    with server_parts.sessions() as session:
        actions = session.scalars(select(DeviceAction).order_by(DeviceAction.id)).all()
    assert [a.status for a in actions] == ["cancelled", "queued"]
    assert actions[1].not_before is not None and actions[1].not_before > closed
    visits = client.get(_url(campaign, "/visits"), headers=manager.headers).json()
    assert sorted(v["status"] for v in visits) == ["cancelled", "planned"]
    assert _wave(client, manager, campaign, "D1")["counts"]["scheduled"] == 1
