"""The old system's shutdown (E4): closed while anything blocks it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from fleetup.core.context import Ctx
from fleetup.fleet import service as fleet
from fleetup.fleet.models import MachineState
from fleetup.fleet.schemas import MachineUpdate
from support import Account


def test_shutdown_stays_closed_until_its_blockers_clear(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    small_fleet: list[str],
    ctx: Ctx,
) -> None:
    url = f"/api/v1/campaigns/{campaign['id']}/shutdown"
    blockers = client.get(url, headers=manager.headers).json()
    assert blockers["not_migrated"] == sorted(small_fleet)
    assert blockers["shut_down"] is False

    incident = client.post(
        "/api/v1/sop/instances",
        headers=manager.headers,
        json={
            "chart_id": "chart6",
            "subject_kind": "machine",
            "subject_ref": small_fleet[0],
            "entry": "A",
        },
    )
    assert incident.status_code == 201, incident.text
    body = {"reason": "all machines moved", "archive": "s3://archive/old-system-2026.tar"}
    refused = client.post(url, headers=manager.headers, json=body)
    assert refused.status_code == 409
    assert "40 machines not on the new platform, 1 open incidents" in refused.json()["detail"]
    after = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers).json()
    assert next(a for a in after["activities"] if a["code"] == "E4")["status"] == "todo"

    for serial in small_fleet:
        fleet.update_machine(ctx, serial=serial, data=MachineUpdate(state=MachineState.retired))
    ctx.session.commit()
    blockers = client.get(url, headers=manager.headers).json()
    assert blockers["not_migrated"] == [] and len(blockers["open_incidents"]) == 1
    assert client.post(url, headers=manager.headers, json=body).status_code == 409

    instance_id = incident.json()["id"]
    _close_incident(client, manager, instance_id)
    done = client.post(url, headers=manager.headers, json=body)
    assert done.status_code == 200, done.text
    assert done.json()["shut_down"] is True
    assert done.json()["archive"] == "s3://archive/old-system-2026.tar"
    after = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers).json()
    assert next(a for a in after["activities"] if a["code"] == "E4")["status"] == "done"
    assert client.post(url, headers=manager.headers, json=body).status_code == 409


def _close_incident(client: TestClient, manager: Account, instance_id: int) -> None:
    """Walk chart 6's system path A-H to its end."""
    url = f"/api/v1/sop/instances/{instance_id}/events"
    for _ in range(20):
        state = client.get(f"/api/v1/sop/instances/{instance_id}", headers=manager.headers).json()
        if state["status"] == "completed":
            return
        due = state["due"][0]
        node = due["node"]
        if due["kind"] == "decision":
            raise AssertionError(f"unexpected decision {node}")
        if due["kind"] == "check":
            events: list[dict[str, Any]] = [{"type": "check_passed", "node": node}]
        else:
            events = [
                {"type": "step_started", "node": node},
                {"type": "step_finished", "node": node, "result": "ok"},
            ]
        for body in events:
            answer = client.post(url, headers=manager.headers, json=body)
            assert answer.status_code == 200, answer.text
    raise AssertionError("chart 6 did not end")
