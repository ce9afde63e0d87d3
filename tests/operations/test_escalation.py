"""The 15-minute promise: an unacknowledged incident escalates at exactly 15:00, and then on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from ops_helpers import Fleet
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.core.security import Role
from fleetup.notify.models import Notification
from fleetup.operations import scheduled
from support import Account

THRESHOLD = timedelta(minutes=5)


def _offline_incident(ops_fleet: Fleet, server_parts: Server, all_beat: Callable[[], None]) -> int:
    """TC2's only machine falls silent; the watch opens an incident at the clock's now."""
    all_beat()
    ops_fleet.clock.advance(THRESHOLD + timedelta(seconds=1))
    for serial in ("YJ-TC1-001", "YJ-TC1-002"):
        ops_fleet.client.post(
            "/device/v1/heartbeat", json={"health": {}}, headers=ops_fleet.ipcs[serial].headers
        )
    scheduled.watch(server_parts)
    incidents = ops_fleet.get("/api/v1/incidents")
    assert len(incidents) == 1
    assert incidents[0]["subject_ref"] == "YJ-TC2-001"
    return int(incidents[0]["id"])


def _recipients(server_parts: Server, template: str) -> list[str]:
    with server_parts.sessions() as session:
        return list(
            session.scalars(
                select(Notification.recipient)
                .where(Notification.template == template)
                .order_by(Notification.id)
            )
        )


def test_unacknowledged_incident_escalates_at_exactly_fifteen_minutes(
    ops_fleet: Fleet, server_parts: Server, all_beat: Callable[[], None]
) -> None:
    incident_id = _offline_incident(ops_fleet, server_parts, all_beat)
    assert sorted(_recipients(server_parts, "incident_opened")) == [
        "user:oncall-amy",
        "user:oncall-ben",
    ]

    ops_fleet.clock.advance(timedelta(minutes=14, seconds=59))
    assert scheduled.escalate(server_parts) == 0
    assert _recipients(server_parts, "incident_escalated") == []

    ops_fleet.clock.advance(timedelta(seconds=1))
    assert scheduled.escalate(server_parts) == 1
    assert _recipients(server_parts, "incident_escalated") == ["user:oncall-ben"]
    body = ops_fleet.get(f"/api/v1/incidents/{incident_id}")
    assert body["escalation_level"] == 1
    escalated = [e for e in body["timeline"] if e["kind"] == "escalated"]
    assert escalated[0]["detail"] == {"to": "user:oncall-ben"}

    assert scheduled.escalate(server_parts) == 0  # a second run finds nothing due
    ops_fleet.clock.advance(timedelta(minutes=15))
    assert scheduled.escalate(server_parts) == 1
    assert _recipients(server_parts, "incident_escalated")[-1] == "user:manager-mei"
    ops_fleet.clock.advance(timedelta(minutes=15))
    assert scheduled.escalate(server_parts) == 1  # the managers again, every period
    assert ops_fleet.get(f"/api/v1/incidents/{incident_id}")["escalation_level"] == 3


def test_incident_acknowledged_at_fourteen_minutes_never_escalates(
    ops_fleet: Fleet, server_parts: Server, all_beat: Callable[[], None]
) -> None:
    incident_id = _offline_incident(ops_fleet, server_parts, all_beat)
    ops_fleet.clock.advance(timedelta(minutes=14))
    body = ops_fleet.post(f"/api/v1/incidents/{incident_id}/acknowledge", who="on_call")
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"].endswith("oncall-amy")

    for _ in range(4):
        ops_fleet.clock.advance(timedelta(minutes=1))
        assert scheduled.escalate(server_parts) == 0
    ops_fleet.clock.advance(timedelta(hours=1))
    assert scheduled.escalate(server_parts) == 0
    assert _recipients(server_parts, "incident_escalated") == []


def test_compliance_reports_share_median_and_p90(
    ops_fleet: Fleet, server_parts: Server, all_beat: Callable[[], None]
) -> None:
    start = ops_fleet.clock.now()
    incident_id = _offline_incident(ops_fleet, server_parts, all_beat)
    ops_fleet.clock.advance(timedelta(minutes=20))
    ops_fleet.post(f"/api/v1/incidents/{incident_id}/acknowledge")
    report = ops_fleet.get(
        "/api/v1/incidents/compliance?"
        f"since={start.isoformat().replace('+', '%2B')}"
        f"&until={(start + timedelta(days=1)).isoformat().replace('+', '%2B')}"
    )
    assert report["incidents"] == 1
    assert report["within_promise"] == 0
    assert report["share_within"] == 0.0
    assert report["median_ack_s"] == 1200.0
    assert report["p90_ack_s"] == 1200.0


def test_every_operations_write_is_in_the_audit_trail(
    ops_fleet: Fleet,
    server_parts: Server,
    all_beat: Callable[[], None],
    make_account: Callable[..., Account],
) -> None:
    incident_id = _offline_incident(ops_fleet, server_parts, all_beat)
    ops_fleet.clock.advance(timedelta(minutes=15))
    scheduled.escalate(server_parts)
    ops_fleet.post(f"/api/v1/incidents/{incident_id}/acknowledge")
    ops_fleet.post(f"/api/v1/incidents/{incident_id}/state", {"state": "diagnosing"})
    admin = make_account(Role.admin, "admin-ada")
    answer = ops_fleet.client.get("/api/v1/audit/verify", headers=admin.headers)
    assert answer.json() == {"ok": True, "findings": []}
