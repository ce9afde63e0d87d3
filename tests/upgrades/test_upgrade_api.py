"""One machine's upgrade as a live instance of chart 2, driven through the REST API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleetup.api.deps import Server
from fleetup.core import audit
from fleetup.core.audit import AuditEvent
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict
from fleetup.core.security import Role
from fleetup.upgrades import service as upgrades
from fleetup.upgrades.models import SopTransitionRecord
from support import Account


def _post(client: TestClient, account: Account, instance: int, event: dict[str, Any]) -> Any:
    response = client.post(
        f"/api/v1/sop/instances/{instance}/events", json=event, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def _do_what_is_due(
    client: TestClient, account: Account, clock: ManualClock, body: dict[str, Any], minutes: int
) -> dict[str, Any]:
    """Answer every decision yes, pass every check, run every task in ``minutes``."""
    instance = body["id"]
    due = body["due"]
    item = next((d for d in due if d["kind"] == "check"), due[0])
    if item["kind"] == "decision":
        answer = "yes" if "yes" in item["outcomes"] else item["outcomes"][0]
        return dict(
            _post(
                client,
                account,
                instance,
                {"type": "decision_taken", "node": item["node"], "outcome": answer},
            )["instance"]
        )
    if item["kind"] == "check":
        return dict(
            _post(client, account, instance, {"type": "check_passed", "node": item["node"]})[
                "instance"
            ]
        )
    _post(client, account, instance, {"type": "step_started", "node": item["node"]})
    clock.advance(timedelta(minutes=minutes))
    finished = {"type": "step_finished", "node": item["node"], "result": "ok"}
    return dict(_post(client, account, instance, finished)["instance"])


def test_an_upgrade_runs_chart_2_to_the_end_and_the_machine_moves_to_the_new_platform(
    client: TestClient,
    make_account: Callable[..., Account],
    machine: str,
    clock: ManualClock,
    ctx: Ctx,
) -> None:
    tech = make_account(Role.technician)
    started = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers)
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["chart_id"] == "chart2" and body["current_node"] == "B"
    assert (
        client.get(f"/api/v1/machines/{machine}", headers=tech.headers).json()["state"]
        == "migrating"
    )

    visited = []
    for _ in range(80):
        if body["status"] == "completed":
            break
        visited.append(body["current_node"])
        body = _do_what_is_due(client, tech, clock, body, minutes=7)
    assert body["status"] == "completed" and body["current_node"] == "V"
    assert [n for i, n in enumerate(visited) if i == 0 or visited[i - 1] != n] == [
        "B", "C", "E", "F", "I", "J", "K", "L", "N", "O", "P", "Q", "S", "T", "U",
    ]  # fmt: skip

    steps = {step["node"]: step for step in body["steps"]}
    assert steps["F"]["budget_minutes"] == 10 and steps["F"]["actual_minutes"] == 7
    assert steps["J"]["budget_minutes"] == 15 and not steps["J"]["over_budget"]
    assert steps["N"]["budget_minutes"] == 5 and steps["N"]["over_budget"]
    assert steps["F"]["checks_passed"] == ["B1"]
    assert steps["F"]["performed_by"] == [f"token:{tech.username}"]

    after = client.get(f"/api/v1/machines/{machine}", headers=tech.headers).json()
    assert after["state"] == "on_new_platform"
    stored = ctx.session.scalar(select(func.count(SopTransitionRecord.id)))
    assert stored == len(body["history"]) > 20
    assert audit.verify(ctx.session) == []


def test_a_second_upgrade_while_one_runs_is_refused(
    client: TestClient, make_account: Callable[..., Account], machine: str
) -> None:
    tech = make_account(Role.technician)
    assert (
        client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).status_code == 201
    )
    again = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers)
    assert again.status_code == 409
    assert "already has upgrade" in again.json()["detail"]


def test_an_event_that_does_not_fit_is_refused_and_changes_nothing(
    client: TestClient, make_account: Callable[..., Account], machine: str
) -> None:
    tech = make_account(Role.technician)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    url = f"/api/v1/sop/instances/{instance['id']}"
    wrong_node = client.post(
        f"{url}/events", json={"type": "step_started", "node": "J"}, headers=tech.headers
    )
    assert wrong_node.status_code == 409
    malformed = client.post(
        f"{url}/events", json={"type": "teleport", "node": "V"}, headers=tech.headers
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"]
    unchanged = client.get(url, headers=tech.headers).json()
    assert unchanged["history"] == [] and unchanged["current_node"] == "B"


def test_the_install_loop_stops_at_its_cap_and_waits_on_a_problem(
    client: TestClient, make_account: Callable[..., Account], machine: str, clock: ManualClock
) -> None:
    tech = make_account(Role.technician)
    body = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    while body["current_node"] != "K":
        body = _do_what_is_due(client, tech, clock, body, minutes=5)
    effects: list[dict[str, Any]] = []
    for _ in range(40):
        if body["status"] == "waiting":
            break
        if body["current_node"] == "K":
            result = _post(
                client, tech, body["id"], {"type": "decision_taken", "node": "K", "outcome": "no"}
            )
            effects += result["effects"]
            body = result["instance"]
        else:
            body = _do_what_is_due(client, tech, clock, body, minutes=5)
    assert body["status"] == "waiting"
    assert [e["kind"] for e in effects if e["kind"] == "open_problem"] == ["open_problem"]
    assert effects[-1]["problem_type"] == "software"
    refused = client.post(
        f"/api/v1/sop/instances/{body['id']}/events",
        json={"type": "step_started", "node": "J"},
        headers=tech.headers,
    )
    assert refused.status_code == 409


def test_a_viewer_reads_an_upgrade_but_cannot_post_events(
    client: TestClient, make_account: Callable[..., Account], machine: str
) -> None:
    tech = make_account(Role.technician)
    viewer = make_account(Role.viewer)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    assert (
        client.get(f"/api/v1/sop/instances/{instance['id']}", headers=viewer.headers).status_code
        == 200
    )
    refused = client.post(
        f"/api/v1/sop/instances/{instance['id']}/events",
        json={"type": "decision_taken", "node": "B", "outcome": "yes"},
        headers=viewer.headers,
    )
    assert refused.status_code == 403


def test_instance_mermaid_highlights_the_current_step(
    client: TestClient, make_account: Callable[..., Account], machine: str
) -> None:
    tech = make_account(Role.technician)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    chart = client.get(
        f"/api/v1/sop/instances/{instance['id']}/mermaid?lang=en", headers=tech.headers
    )
    assert chart.status_code == 200
    assert chart.text.startswith("graph TD")
    assert "class B current" in chart.text or "B:::current" in chart.text


def test_problem_and_emergency_charts_run_as_instances_linked_to_their_subject(
    client: TestClient, make_account: Callable[..., Account], machine: str
) -> None:
    oncall = make_account(Role.on_call)
    problem = client.post(
        "/api/v1/sop/instances",
        json={"chart_id": "chart4", "subject_kind": "machine", "subject_ref": machine},
        headers=oncall.headers,
    )
    assert problem.status_code == 201, problem.text
    assert problem.json()["current_node"] == "B"
    assert problem.json()["due"][0]["outcomes"] == ["network", "hardware", "software", "user"]
    decided = _post(
        client,
        oncall,
        problem.json()["id"],
        {"type": "decision_taken", "node": "B", "outcome": "network"},
    )
    assert decided["instance"]["current_node"] == "C"

    data_path = client.post(
        "/api/v1/sop/instances",
        json={"chart_id": "chart6", "subject_kind": "customer", "subject_ref": "YJ", "entry": "I"},
        headers=oncall.headers,
    )
    assert data_path.status_code == 201 and data_path.json()["current_node"] == "J"
    no_entry = client.post(
        "/api/v1/sop/instances",
        json={"chart_id": "chart6", "subject_kind": "customer", "subject_ref": "YJ"},
        headers=oncall.headers,
    )
    assert no_entry.status_code == 422 and no_entry.json()["errors"][0]["field"] == "entry"
    unknown = client.post(
        "/api/v1/sop/instances",
        json={"chart_id": "chart4", "subject_kind": "machine", "subject_ref": "NOPE"},
        headers=oncall.headers,
    )
    assert unknown.status_code == 404
    listed = client.get("/api/v1/sop/instances?chart=chart4&status=running", headers=oncall.headers)
    assert [i["subject_ref"] for i in listed.json()] == [machine]


def test_events_posted_together_are_stored_once_with_a_record_each(
    client: TestClient,
    make_account: Callable[..., Account],
    machine: str,
    ctx: Ctx,
    server_parts: Server,
) -> None:
    tech = make_account(Role.technician)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    steps = upgrades.Steps(ctx, server_parts.library, instance_id=instance["id"])
    steps.post({"type": "decision_taken", "node": "B", "outcome": "yes"})
    steps.post({"type": "step_started", "node": "C"})
    with pytest.raises(Conflict):
        steps.post({"type": "step_started", "node": "J"})  # not due: refused, the rest stays
    stored = steps.store()
    ctx.session.commit()

    assert stored.current_node == "C" and stored.transitions == 2
    records = ctx.session.scalars(
        select(SopTransitionRecord)
        .where(SopTransitionRecord.instance_id == instance["id"])
        .order_by(SopTransitionRecord.seq)
    ).all()
    assert [(r.seq, r.from_node, r.to_node) for r in records] == [(1, "B", "C"), (2, "C", "C")]
    trail = ctx.session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.entity_type == "sop_instances")
        .order_by(AuditEvent.seq)
    ).all()
    assert trail[-1] == "events" and trail.count("events") == 1
    assert audit.verify(ctx.session) == []
    # The history is the records: the stored state does not repeat it.
    assert "history" not in stored.state

    read = client.get(f"/api/v1/sop/instances/{instance['id']}", headers=tech.headers).json()
    assert [h["type"] for h in read["history"]] == ["decision_taken", "step_started"]


def test_an_event_applied_meanwhile_makes_the_later_store_a_conflict_that_stores_nothing(
    client: TestClient,
    make_account: Callable[..., Account],
    machine: str,
    ctx: Ctx,
    server_parts: Server,
) -> None:
    tech = make_account(Role.technician)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    with server_parts.sessions() as other_session:
        other = Ctx(session=other_session, actor="user:other", clock=server_parts.clock)
        late = upgrades.Steps(other, server_parts.library, instance_id=instance["id"])
        late.post({"type": "decision_taken", "node": "B", "outcome": "no"})

        first = upgrades.Steps(ctx, server_parts.library, instance_id=instance["id"])
        first.post({"type": "decision_taken", "node": "B", "outcome": "yes"})
        first.store()
        ctx.session.commit()

        with pytest.raises(Conflict, match="changed meanwhile"):
            late.store()
        other_session.rollback()

    read = client.get(f"/api/v1/sop/instances/{instance['id']}", headers=tech.headers).json()
    assert read["current_node"] == "C"  # where "yes" leads; "no" leads to D
    assert [h["type"] for h in read["history"]] == ["decision_taken"]
    assert audit.verify(ctx.session) == []


def test_an_answer_without_history_keeps_the_steps_and_what_is_due(
    client: TestClient, make_account: Callable[..., Account], machine: str
) -> None:
    tech = make_account(Role.technician)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    url = f"/api/v1/sop/instances/{instance['id']}"
    decided = {"type": "decision_taken", "node": "B", "outcome": "yes"}
    short = client.post(f"{url}/events?history=false", json=decided, headers=tech.headers)
    assert short.status_code == 200, short.text
    full = client.get(url, headers=tech.headers).json()
    lean = client.get(f"{url}?history=false", headers=tech.headers).json()

    assert short.json()["instance"]["history"] == [] and lean["history"] == []
    assert [h["type"] for h in full["history"]] == ["decision_taken"]
    assert {k: v for k, v in full.items() if k != "history"} == {
        k: v for k, v in lean.items() if k != "history"
    }
    assert short.json()["instance"]["due"] == full["due"]
    assert short.json()["instance"]["steps"] == full["steps"]
