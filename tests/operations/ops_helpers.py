"""Names the operations tests share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.devices import service as devices
from support import Account


@dataclass
class Ipc:
    serial: str
    device_id: str
    credential: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


@dataclass
class Fleet:
    client: TestClient
    clock: ManualClock
    ipcs: dict[str, Ipc]
    people: dict[str, Account]

    def get(self, path: str, who: str = "viewer") -> Any:
        answer = self.client.get(path, headers=self.people[who].headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: Any = None, who: str = "on_call", code: int = 200) -> Any:
        answer = self.client.post(path, json=body or {}, headers=self.people[who].headers)
        assert answer.status_code == code, answer.text
        return answer.json()

    def report(self, serial: str, action_id: str, step: str, status: str, **evidence: Any) -> None:
        """The IPC reports one step of a remote action."""
        answer = self.client.post(
            f"/device/v1/actions/{action_id}/events",
            json={
                "event_id": f"{action_id}-{step}-{status}",
                "step": step,
                "status": status,
                "at": self.clock.now().isoformat(),
                "evidence": evidence,
            },
            headers=self.ipcs[serial].headers,
        )
        assert answer.status_code == 200, answer.text


def verified_backup(sessions: Any, clock: ManualClock, serial: str) -> None:
    """Arrange a verified backup of the machine, as a finished snapshot would leave it."""
    from fleetup.devices.models import BackupUpload, Device, DeviceAction
    from fleetup.fleet.models import Machine

    with sessions() as session:
        machine = session.query(Machine).filter_by(serial=serial).one()
        device = session.query(Device).filter_by(machine_id=machine.id).one()
        action = DeviceAction(
            machine_id=machine.id,
            kind="snapshot",
            status="succeeded",
            created_at=clock.now(),
            updated_at=clock.now(),
            network={},
            params={"reason": "arranged"},
            evidence={},
        )
        session.add(action)
        session.flush()
        digest = "ab" * 32
        session.add(
            BackupUpload(
                device_id=device.id,
                action_id=action.id,
                sha256=digest,
                size=100,
                received=100,
                complete=True,
                manifest={"files": 1},
                blob_sha256=digest,
                created_at=clock.now(),
            )
        )
        session.commit()


def enroll(ctx: Ctx, client: TestClient, serial: str) -> Ipc:
    """The machine's IPC, enrolled through the device API with a fresh one-time token."""
    token = devices.create_enrollment_token(ctx, serial=serial)
    ctx.session.commit()
    answer = client.post(
        "/device/v1/enroll",
        json={"enrollment_token": token, "serial": serial, "hardware": {"os": "linux"}},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return Ipc(serial, body["device_id"], body["credential"])
