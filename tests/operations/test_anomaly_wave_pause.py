"""Data anomalies in one wave pause it at ``anomaly_wave_pause`` (chart 6 step K).

Each IPC of a running wave reports a data anomaly in its heartbeat; the monitoring job raises
a ``data_anomaly`` alert per machine, opens a data incident and runs the runbook's J-L. Step K
counts the open data incidents of the machine's wave: below the threshold the wave runs on
(only the anomalous machine is held), at the threshold the wave is paused, its queued
deployments are held and the managers and on-call engineers are told.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ops_helpers import Ipc, enroll
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.campaigns.models import Wave
from fleetup.campaigns.scheduled import check_gates
from fleetup.core.audit import AuditEvent
from fleetup.core.clock import ManualClock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.devices.models import DeviceAction
from fleetup.fleet import service as fleet
from fleetup.fleet.models import Machine
from fleetup.fleet.schemas import CustomerIn, MachineIn, MaintenanceWindow, SiteIn
from fleetup.notify.models import Notification
from fleetup.operations import scheduled
from fleetup.releases import service as releases
from releases.release_helpers import make_package
from support import Account

PAUSE_AFTER = 3
SERIALS = [f"AN-M{n:02d}" for n in range(1, 6)]
ANY_TIME = [MaintenanceWindow(days=[0, 1, 2, 3, 4, 5, 6], start="00:00", end="24:00")]
ANOMALY = {"anomalies": [{"kind": "checksum_mismatch", "detail": "orders.db page 12"}]}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        secret_key="test-secret-key-not-for-production",
        anomaly_wave_pause=PAUSE_AFTER,
    )


@pytest.fixture
def manager(make_account: Callable[..., Account]) -> Account:
    make_account(Role.technician, "tech-1")
    make_account(Role.on_call, "oncall-amy")
    return make_account(Role.manager)


@pytest.fixture
def ipcs(ctx: Ctx, client: TestClient) -> dict[str, Ipc]:
    """Five machines at one site, open for work at any time, each with an enrolled IPC."""
    fleet.create_customer(ctx, CustomerIn(code="AN", name="安定精機"))
    fleet.create_site(
        ctx, SiteIn(customer_code="AN", code="S1", name="廠一", maintenance_windows=ANY_TIME)
    )
    for serial in SERIALS:
        fleet.create_machine(
            ctx,
            MachineIn(
                serial=serial, model="CNC-5", ipc_os="linux", customer_code="AN", site_code="S1"
            ),
        )
    ctx.session.commit()
    enrolled: dict[str, Ipc] = {}
    for serial in SERIALS:
        enrolled[serial] = enroll(ctx, client, serial)
    return enrolled


@pytest.fixture
def running_wave(
    ctx: Ctx,
    client: TestClient,
    settings: Settings,
    server_parts: Server,
    clock: ManualClock,
    manager: Account,
    ipcs: dict[str, Ipc],
    tmp_path: Path,
) -> str:
    """Campaign D1 running now on all five machines; returns the campaign's API path."""
    package = make_package(tmp_path / "ipc-2.tar.gz", version="2.0.0", files={"bin/run": b"x"})
    releases.add(ctx, settings, path=package, version="2.0.0")
    ctx.session.commit()
    body = {"name": "Pilot", "release_version": "2.0.0", "starts_on": date(2026, 3, 2).isoformat()}
    created = client.post("/api/v1/campaigns", headers=manager.headers, json=body)
    assert created.status_code == 201, created.text
    url = f"/api/v1/campaigns/{created.json()['id']}"
    wave = {
        "selection": {"kind": "count", "count": len(SERIALS)},
        "planned_start": clock.now().isoformat(),
    }
    assert client.patch(f"{url}/waves/D1", headers=manager.headers, json=wave).status_code == 200
    assert client.post(f"{url}/start", headers=manager.headers).status_code == 200
    check_gates(server_parts)
    assert _wave(client, manager, url)["status"] == "running"
    assert {m["serial"] for m in _members(client, manager, url)} == set(SERIALS)
    return url


def _wave(client: TestClient, manager: Account, url: str) -> Any:
    answer = client.get(url, headers=manager.headers)
    assert answer.status_code == 200, answer.text
    return next(w for w in answer.json()["waves"] if w["code"] == "D1")


def _members(client: TestClient, manager: Account, url: str) -> Any:
    answer = client.get(f"{url}/waves/D1/members", headers=manager.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _anomaly(client: TestClient, server_parts: Server, ipc: Ipc) -> None:
    """The IPC reports a data anomaly in its heartbeat, and monitoring looks."""
    answer = client.post(
        "/device/v1/heartbeat",
        json={"version": "1.0", "link": "wired", "health": ANOMALY},
        headers=ipc.headers,
    )
    assert answer.status_code == 200, answer.text
    scheduled.watch(server_parts)


def _upgrade_actions(server_parts: Server) -> dict[str, str]:
    with server_parts.sessions() as session:
        rows = session.execute(
            select(Machine.serial, DeviceAction.status)
            .join(Machine, DeviceAction.machine_id == Machine.id)
            .where(DeviceAction.kind == "upgrade")
        )
        return {serial: status for serial, status in rows}


def _incident_of(client: TestClient, manager: Account, serial: str) -> int:
    """The id of the one data incident about ``serial``."""
    listed = client.get("/api/v1/incidents", headers=manager.headers).json()
    found = [i["id"] for i in listed if (i["kind"], i["subject_ref"]) == ("data", serial)]
    assert len(found) == 1, listed
    incident_id: int = found[0]
    return incident_id


def _k_step(client: TestClient, manager: Account, incident_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/incidents/{incident_id}", headers=manager.headers)
    assert answer.status_code == 200, answer.text
    timeline = answer.json()["timeline"]
    step: dict[str, Any] = next(e["detail"] for e in timeline if e["detail"].get("node") == "K")
    return step


def test_the_nth_data_anomaly_in_a_wave_pauses_it_and_not_one_before(
    client: TestClient,
    server_parts: Server,
    manager: Account,
    ipcs: dict[str, Ipc],
    running_wave: str,
) -> None:
    url = running_wave
    for count, serial in enumerate(SERIALS[: PAUSE_AFTER - 1], start=1):
        _anomaly(client, server_parts, ipcs[serial])
        wave = _wave(client, manager, url)
        assert wave["status"] == "running", f"paused after {count} anomalies"
        assert _k_step(client, manager, _incident_of(client, manager, serial)) == {
            "node": "K",
            "machine_held": True,
            "anomalies_in_wave": count,
        }
    # Only the anomalous machines are held; the rest of the wave goes on.
    actions = _upgrade_actions(server_parts)
    assert {s for s, status in actions.items() if status == "held"} == set(
        SERIALS[: PAUSE_AFTER - 1]
    )
    with server_parts.sessions() as session:
        assert session.scalar(select(Wave.status).where(Wave.code == "D1")) == "running"
        assert not session.scalars(
            select(Notification).where(Notification.template == "gate_paused")
        ).all()

    nth = SERIALS[PAUSE_AFTER - 1]
    _anomaly(client, server_parts, ipcs[nth])

    wave = _wave(client, manager, url)
    assert wave["status"] == "paused"
    assert wave["status_reason"] == f"{PAUSE_AFTER} data anomalies"
    alerts = client.get("/api/v1/alerts", headers=manager.headers).json()
    assert sorted(a["subject_ref"] for a in alerts if a["rule"] == "data_anomaly") == sorted(
        SERIALS[:PAUSE_AFTER]
    )
    assert _k_step(client, manager, _incident_of(client, manager, nth)) == {
        "node": "K",
        "machine_held": True,
        "anomalies_in_wave": PAUSE_AFTER,
        "wave_paused": True,
        "wave": "D1",
    }
    events = client.get(f"{url}/gate-events", headers=manager.headers).json()
    assert any(e["kind"] == "paused" and "data anomalies" in e["reason"] for e in events)

    # The database: the wave paused by operations, every queued deployment held, the
    # managers and the on-call engineers told once.
    assert set(_upgrade_actions(server_parts).values()) == {"held"}
    with server_parts.sessions() as session:
        stored = session.scalar(select(Wave).where(Wave.code == "D1"))
        assert stored is not None
        assert (stored.status, stored.status_reason) == ("paused", f"{PAUSE_AFTER} data anomalies")
        pauses = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "pause", AuditEvent.entity_id == str(stored.id)
            )
        ).all()
        assert [p.note for p in pauses] == ["operations"]
        told = session.scalars(
            select(Notification).where(Notification.template == "gate_paused")
        ).all()
        assert sorted(n.recipient for n in told) == ["user:manager-user", "user:oncall-amy"]

    # A later anomaly in the paused wave changes nothing more about the wave.
    _anomaly(client, server_parts, ipcs[SERIALS[PAUSE_AFTER]])
    assert _wave(client, manager, url)["status_reason"] == f"{PAUSE_AFTER} data anomalies"
