"""Problems walk their chart 4 playbook to I, asking the IPC for what each step needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ops_helpers import Fleet, verified_backup
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.devices.models import Device, DeviceAction
from fleetup.fleet.models import Machine
from fleetup.notify.models import Notification
from fleetup.operations import scheduled
from fleetup.releases import service as releases
from releases.release_helpers import make_package

SERIAL = "YJ-TC1-001"


def _open(ops_fleet: Fleet, kind: str) -> dict[str, Any]:
    body: dict[str, Any] = ops_fleet.post(
        "/api/v1/problems",
        {"serial": SERIAL, "type": kind, "summary": f"{kind} trouble"},
        who="technician",
        code=201,
    )
    return body


def _step(ops_fleet: Fleet, problem_id: int, node: str, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = ops_fleet.post(
        f"/api/v1/problems/{problem_id}/steps",
        {"node": node, "payload": payload},
        who="technician",
    )
    return body


def _actions(server_parts: Server) -> list[tuple[str, str]]:
    with server_parts.sessions() as session:
        return [
            (a.kind, a.status)
            for a in session.scalars(select(DeviceAction).order_by(DeviceAction.id))
        ]


def _finish(ops_fleet: Fleet, problem: dict[str, Any]) -> dict[str, Any]:
    pid = problem["id"]
    assert _step(ops_fleet, pid, "G", note="works again")["problem"]["status"] == "solved"
    done = _step(ops_fleet, pid, "H", note="customer confirmed by phone")["problem"]
    assert done["status"] == "closed"
    instance = ops_fleet.get(f"/api/v1/sop/instances/{done['instance_id']}")
    assert instance["status"] == "completed"
    assert instance["current_node"] == "I"
    return done


def test_network_problem_runs_diagnostics_then_the_4g_fallback(
    ops_fleet: Fleet, server_parts: Server
) -> None:
    problem = _open(ops_fleet, "network")
    assert problem["next_step"] == "C1"
    step = _step(ops_fleet, problem["id"], "C1")["step"]
    assert step["status"] == "requested"
    assert _actions(server_parts) == [("diagnose", "queued")]
    ops_fleet.report(
        SERIAL, step["action_id"], "diagnose", "succeeded", dns="ok", route="ok", reachable=False
    )
    assert scheduled.follow(server_parts) == 1
    problem = ops_fleet.get(f"/api/v1/problems/{problem['id']}")
    assert problem["next_step"] == "C2"
    assert problem["steps"][-1]["evidence"]["diagnose"]["reachable"] is False

    step = _step(ops_fleet, problem["id"], "C2")["step"]
    assert _actions(server_parts)[-1] == ("fallback", "queued")
    ops_fleet.report(
        SERIAL,
        step["action_id"],
        "switch_network",
        "succeeded",
        link="4g",
        url="https://fallback.example",
    )
    assert scheduled.follow(server_parts) == 1
    done = _finish(ops_fleet, problem)
    nodes = [s["node"] for s in done["steps"]]
    assert nodes == ["C", "C1", "C1", "C2", "C2", "G", "H"]


def test_hardware_problem_ticks_the_checklist_and_swaps_a_spare(
    ops_fleet: Fleet, server_parts: Server
) -> None:
    verified_backup(server_parts.sessions, ops_fleet.clock, SERIAL)
    problem = _open(ops_fleet, "hardware")
    bad = ops_fleet.client.post(
        f"/api/v1/problems/{problem['id']}/steps",
        json={"node": "D1", "payload": {}},
        headers=ops_fleet.people["technician"].headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "checklist"
    _step(ops_fleet, problem["id"], "D1", checklist={"power supply": True, "board": False})
    swapped = _step(ops_fleet, problem["id"], "D2", reason="board dead")
    assert swapped["secret"]  # the spare's enrollment token, shown this once
    assert swapped["secret"] not in str(ops_fleet.get(f"/api/v1/problems/{problem['id']}"))
    with server_parts.sessions() as session:
        revoked = session.scalar(
            select(Device.revoked)
            .join(Machine, Device.machine_id == Machine.id)
            .where(Machine.serial == SERIAL)
        )
        assert revoked is True
    assert _actions(server_parts)[-1] == ("restore", "queued")
    _finish(ops_fleet, problem)


@pytest.fixture
def deployed(ctx: Ctx, ops_fleet: Fleet, settings: Settings, tmp_path: Path) -> None:
    path = make_package(tmp_path / "ipc-2.tar.gz", version="2.0.0", files={"bin/run": b"x" * 500})
    releases.add(ctx, settings, path=path, version="2.0.0")
    ctx.session.commit()
    ops_fleet.post(
        f"/api/v1/machines/{SERIAL}/deployments", {"version": "2.0.0"}, who="manager", code=201
    )


def test_software_problem_reinstalls_then_restores_when_the_reinstall_fails(
    ops_fleet: Fleet, server_parts: Server, deployed: None
) -> None:
    verified_backup(server_parts.sessions, ops_fleet.clock, SERIAL)
    problem = _open(ops_fleet, "software")
    assert problem["upgrade_node"]  # linked to the chart 2 step where it arose
    step = _step(ops_fleet, problem["id"], "E1")["step"]
    assert _actions(server_parts)[-1] == ("reinstall", "queued")
    ops_fleet.report(SERIAL, step["action_id"], "install", "failed", error="disk full")
    assert scheduled.follow(server_parts) == 1
    problem = ops_fleet.get(f"/api/v1/problems/{problem['id']}")
    assert problem["next_step"] == "E2"
    assert problem["next_step_under_way"] is True
    assert _actions(server_parts)[-1] == ("restore", "queued")
    restore = problem["steps"][-1]
    ops_fleet.report(SERIAL, restore["action_id"], "restore", "succeeded", restored=True)
    assert scheduled.follow(server_parts) == 1
    _finish(ops_fleet, problem)


def test_user_problem_records_retraining_and_sends_guidance_to_the_customer(
    ops_fleet: Fleet, server_parts: Server
) -> None:
    problem = _open(ops_fleet, "user")
    _step(ops_fleet, problem["id"], "F1", topics=["start-up", "alarms"], trainee="王先生")
    sent = _step(ops_fleet, problem["id"], "F2", guidance="Press RESET before START.")
    assert sent["step"]["evidence"]["sent_to"]
    with server_parts.sessions() as session:
        rows = session.scalars(
            select(Notification).where(Notification.template == "problem_guidance")
        ).all()
    assert [r.recipient for r in rows] == sent["step"]["evidence"]["sent_to"]
    assert "Press RESET before START." in rows[0].body
    _finish(ops_fleet, problem)
    assert _actions(server_parts) == []


def test_steps_go_in_order_and_viewers_only_read(ops_fleet: Fleet) -> None:
    problem = _open(ops_fleet, "user")
    wrong = ops_fleet.client.post(
        f"/api/v1/problems/{problem['id']}/steps",
        json={"node": "G", "payload": {}},
        headers=ops_fleet.people["technician"].headers,
    )
    assert wrong.status_code == 409
    denied = ops_fleet.client.post(
        f"/api/v1/problems/{problem['id']}/steps",
        json={"node": "F1", "payload": {}},
        headers=ops_fleet.people["viewer"].headers,
    )
    assert denied.status_code == 403
    assert ops_fleet.get("/api/v1/problems")[0]["id"] == problem["id"]


def test_agent_reported_problem_is_opened_once(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    beat(SERIAL, {"problem": {"type": "network", "summary": "DNS fails"}})
    scheduled.watch(server_parts)
    scheduled.watch(server_parts)
    found = ops_fleet.get("/api/v1/problems")
    assert [(p["serial"], p["type"], p["source"]) for p in found] == [(SERIAL, "network", "agent")]
