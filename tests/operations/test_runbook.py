"""A data anomaly in a heartbeat starts the runbook: snapshot, hold, restore, test, restored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from ops_helpers import Fleet, verified_backup
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.devices.models import DeviceAction
from fleetup.operations import scheduled
from fleetup.releases import service as releases
from releases.release_helpers import make_package

SERIAL = "YJ-TC1-001"
ANOMALY = {"anomalies": [{"kind": "checksum_mismatch", "detail": "orders.db page 12"}]}


def _actions(server_parts: Server) -> list[tuple[str, str]]:
    with server_parts.sessions() as session:
        return [
            (a.kind, a.status)
            for a in session.scalars(select(DeviceAction).order_by(DeviceAction.id))
            if a.kind != "snapshot" or a.params.get("reason") != "arranged"
        ]


def test_data_anomaly_in_a_heartbeat_runs_the_runbook_to_service_restored(
    ctx: Ctx,
    ops_fleet: Fleet,
    server_parts: Server,
    settings: Settings,
    tmp_path: Path,
    beat: Callable[..., None],
) -> None:
    path = make_package(tmp_path / "ipc-2.tar.gz", version="2.0.0", files={"bin/run": b"x" * 500})
    releases.add(ctx, settings, path=path, version="2.0.0")
    ctx.session.commit()
    ops_fleet.post(
        f"/api/v1/machines/{SERIAL}/deployments", {"version": "2.0.0"}, who="manager", code=201
    )
    verified_backup(server_parts.sessions, ops_fleet.clock, SERIAL)

    beat(SERIAL, ANOMALY)
    scheduled.watch(server_parts)

    incidents = ops_fleet.get("/api/v1/incidents")
    assert [(i["kind"], i["subject_ref"], i["state"]) for i in incidents] == [
        ("data", SERIAL, "fixing")
    ]
    incident: dict[str, Any] = ops_fleet.get(f"/api/v1/incidents/{incidents[0]['id']}")
    assert _actions(server_parts) == [
        ("upgrade", "held"),
        ("snapshot", "queued"),
        ("restore", "queued"),
    ]
    runbook = [e["detail"]["node"] for e in incident["timeline"] if e["kind"] == "runbook"]
    assert runbook == ["J", "K", "L"]
    chart = ops_fleet.get(f"/api/v1/sop/instances/{incident['instance_id']}")
    assert chart["current_node"] == "M"

    # The anomaly is still reported: the same alert, no second incident or runbook.
    beat(SERIAL, ANOMALY)
    scheduled.watch(server_parts)
    assert len(ops_fleet.get("/api/v1/incidents")) == 1

    restore = next(e for e in incident["timeline"] if e["detail"].get("node") == "L")
    ops_fleet.report(
        SERIAL, restore["detail"]["action_id"], "restore", "succeeded", function_test="passed"
    )
    assert scheduled.follow(server_parts) == 1
    incident = ops_fleet.get(f"/api/v1/incidents/{incident['id']}")
    assert incident["state"] == "recovered"
    chart = ops_fleet.get(f"/api/v1/sop/instances/{incident['instance_id']}")
    assert chart["current_node"] == "O"

    reviewed = ops_fleet.post(
        f"/api/v1/incidents/{incident['id']}/runbook", {"node": "O"}, who="on_call"
    )
    assert reviewed["state"] == "review"
    ops_fleet.post(
        f"/api/v1/incidents/{incident['id']}/review",
        {
            "root_cause": "power cut during a database write",
            "tasks": [{"title": "UPS on line 3", "owner": "tech-tom", "due_on": "2026-04-01"}],
        },
    )
    closed = ops_fleet.post(f"/api/v1/incidents/{incident['id']}/state", {"state": "closed"})
    assert closed["state"] == "closed"
    assert closed["tasks"][0]["owner"] == "tech-tom"
    assert closed["tasks"][0]["due_on"] == date(2026, 4, 1).isoformat()
    chart = ops_fleet.get(f"/api/v1/sop/instances/{incident['instance_id']}")
    assert chart["status"] == "completed"


def test_runbook_steps_run_by_hand_in_order(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    # No verified backup: the restore cannot be asked for, and a person carries on from L.
    beat(SERIAL, ANOMALY)
    scheduled.watch(server_parts)
    incident = ops_fleet.get("/api/v1/incidents")[0]
    detail = ops_fleet.get(f"/api/v1/incidents/{incident['id']}")
    assert any("L not run" in e["text"] for e in detail["timeline"])
    early = ops_fleet.client.post(
        f"/api/v1/incidents/{incident['id']}/runbook",
        json={"node": "N"},
        headers=ops_fleet.people["on_call"].headers,
    )
    assert early.status_code == 409
    verified_backup(server_parts.sessions, ops_fleet.clock, SERIAL)
    ops_fleet.post(f"/api/v1/incidents/{incident['id']}/runbook", {"node": "L"})
    ops_fleet.post(
        f"/api/v1/incidents/{incident['id']}/runbook",
        {"node": "M", "evidence": {"result": "all functions normal"}},
        who="technician",
    )
    done = ops_fleet.post(f"/api/v1/incidents/{incident['id']}/runbook", {"node": "N"})
    assert done["state"] == "recovered"
    again = ops_fleet.post(f"/api/v1/incidents/{incident['id']}/runbook", {"node": "N"})
    assert again["state"] == "recovered"
