"""Agent step reports drive the machine's chart 2 instance: F, I, J, K, L, N, O, P."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from device_helpers import SERIAL, Ipc
from fastapi.testclient import TestClient

from support import Account


class Agent:
    """Sends step reports the way the agent's runner does."""

    def __init__(self, client: TestClient, ipc: Ipc, action_id: str) -> None:
        self.client = client
        self.ipc = ipc
        self.url = f"/device/v1/actions/{action_id}/events"
        self.minute = 0

    def report(self, step: str, status: str, **evidence: Any) -> None:
        self.minute += 1
        answer = self.client.post(
            self.url,
            json={
                "event_id": str(uuid.uuid4()),
                "step": step,
                "status": status,
                "at": f"2026-03-02T02:{self.minute:02d}:00Z",
                "evidence": {"attempt": 1, **evidence},
            },
            headers=self.ipc.headers,
        )
        assert answer.json() == {"accepted": True, "duplicate": False}

    def step(self, step: str, **evidence: Any) -> None:
        self.report(step, "started")
        self.report(step, "succeeded", duration_s=60.0, **evidence)


def _instance(client: TestClient, manager: Account, instance_id: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(
        f"/api/v1/sop/instances/{instance_id}", headers=manager.headers
    ).json()
    return body


def _done(instance: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["node"]: step for step in instance["steps"] if step["status"] == "done"}


def test_a_successful_upgrade_walks_chart_2_from_backup_to_the_tests(
    client: TestClient,
    manager: Account,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    agent = Agent(client, ipc, deployment["action_id"])
    agent.step("backup", sha256="a" * 64, size=1234, archive="b.tar.zst", verified=True)
    agent.step("download", version="2.0.0")
    agent.step("install", version="2.0.0", previous_version="1.0.0")
    agent.step("network", cloud_link="primary")
    agent.step("register", registered=True)
    agent.step("function_test", passed=True)
    instance = _instance(client, manager, deployment["instance_id"])
    done = _done(instance)
    for node in ("B", "C", "E", "F", "I", "J", "K", "L", "N", "O", "P"):
        assert node in done, node
    assert instance["current_node"] == "Q"
    assert done["F"]["checks_passed"] == ["B1"]
    assert done["F"]["actual_minutes"] == 1.0 and done["F"]["budget_minutes"] == 10
    assert done["J"]["checks_passed"] == ["C1"]
    assert done["F"]["performed_by"] == [f"device:{SERIAL}"]
    backup = next(h for h in instance["history"] if h["type"] == "check_passed")
    assert backup["event"]["evidence"]["files"][0]["sha256"] == "a" * 64
    deployments = client.get(
        f"/api/v1/machines/{SERIAL}/deployments", headers=manager.headers
    ).json()
    assert deployments[0]["status"] == "succeeded"
    nothing = client.get("/device/v1/actions/next", headers=ipc.headers).json()
    assert nothing == {"action": None}


def test_a_failed_install_is_decided_no_and_loops_through_reinstall(
    client: TestClient,
    manager: Account,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    agent = Agent(client, ipc, deployment["action_id"])
    agent.step("backup", sha256="a" * 64, size=1)
    agent.step("download")
    agent.report("install", "started")
    agent.report("install", "failed", error="hook exited 1", error_kind="HookFailed")
    agent.report("rollback", "started")
    agent.report("rollback", "succeeded", from_version="2.0.0", current="1.0.0")
    instance = _instance(client, manager, deployment["instance_id"])
    assert instance["current_node"] == "M"
    decision = next(h for h in instance["history"] if h["from_node"] == "K")
    assert decision["event"]["outcome"] == "no"
    deployments = client.get(
        f"/api/v1/machines/{SERIAL}/deployments", headers=manager.headers
    ).json()
    assert deployments[0]["status"] == "rolled_back"
    # The next deployment reinstalls: M is done by the agent and J runs again.
    again = deploy(SERIAL)
    assert again["instance_id"] == deployment["instance_id"]
    retry = Agent(client, ipc, again["action_id"])
    retry.minute = 30
    retry.step("install")
    instance = _instance(client, manager, deployment["instance_id"])
    assert instance["current_node"] == "L"
    assert [s["visit"] for s in instance["steps"] if s["node"] == "J"] == [1, 2]


def test_a_retried_step_opens_a_second_attempt(
    client: TestClient,
    manager: Account,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    agent = Agent(client, ipc, deployment["action_id"])
    agent.step("backup", sha256="a" * 64, size=1)
    agent.report("download", "started")
    agent.report("download", "failed", error="cut", will_retry=True)
    agent.step("download")
    instance = _instance(client, manager, deployment["instance_id"])
    [download] = [s for s in instance["steps"] if s["node"] == "I"]
    assert download["attempts"] == 2 and download["status"] == "done"
    assert instance["current_node"] == "J"


def test_a_failed_function_test_goes_to_troubleshooting(
    client: TestClient,
    manager: Account,
    enroll: Callable[[str], Ipc],
    deploy: Callable[[str], dict[str, Any]],
) -> None:
    ipc = enroll(SERIAL)
    deployment = deploy(SERIAL)
    agent = Agent(client, ipc, deployment["action_id"])
    for step in ("backup", "download", "install", "network", "register"):
        agent.step(step, sha256="a" * 64, size=1)
    agent.report("function_test", "started")
    agent.report("function_test", "failed", error="selftest exited 2")
    instance = _instance(client, manager, deployment["instance_id"])
    assert instance["current_node"] == "R"
