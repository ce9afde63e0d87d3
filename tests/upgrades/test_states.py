"""The SOP states a process keeps in memory are exactly the committed ones."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from fleetup.api.deps import Server
from fleetup.core import audit
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.upgrades import service as upgrades
from fleetup.upgrades import states
from fleetup.upgrades.models import SopInstance
from support import Account


def _stored(server_parts: Server, instance_id: int) -> SopInstance:
    with server_parts.sessions() as session:
        row = session.get(SopInstance, instance_id)
        assert row is not None
        session.expunge(row)
        return row


def test_the_state_kept_after_each_step_is_the_one_the_database_holds_and_the_only_one(
    client: TestClient,
    make_account: Callable[..., Account],
    machine: str,
    server_parts: Server,
) -> None:
    tech = make_account(Role.technician)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    url = f"/api/v1/sop/instances/{instance['id']}/events"
    events = [
        {"type": "decision_taken", "node": "B", "outcome": "yes"},
        {"type": "step_started", "node": "C"},
        {"type": "step_finished", "node": "C", "result": "ok"},
    ]
    for event in [None, *events]:
        if event is not None:
            answer = client.post(url, json=event, headers=tech.headers)
            assert answer.status_code == 200, answer.text
        row = _stored(server_parts, instance["id"])
        kept = states.recall(row.key, row.transitions)
        assert kept is not None
        assert kept.state == upgrades.state_of(row)
        assert kept.digest == audit.digest(row.state)
        # A step reads the state at the count it finds stored: an older one is never asked
        # for again, so it is not kept.
        assert all(states.recall(row.key, older) is None for older in range(row.transitions))
    assert row.transitions == 3
    with server_parts.sessions() as session:
        assert audit.verify(session) == []


def test_a_state_whose_transaction_rolls_back_is_not_kept(
    client: TestClient,
    make_account: Callable[..., Account],
    machine: str,
    ctx: Ctx,
    server_parts: Server,
) -> None:
    tech = make_account(Role.technician)
    instance = client.post(f"/api/v1/machines/{machine}/upgrades", headers=tech.headers).json()
    steps = upgrades.Steps(ctx, server_parts.library, instance_id=instance["id"])
    steps.post({"type": "decision_taken", "node": "B", "outcome": "no"})
    written = steps.store()
    key = written.key
    ctx.session.rollback()
    assert states.recall(key, 1) is None

    with ctx.session.begin_nested():
        steps = upgrades.Steps(ctx, server_parts.library, instance_id=instance["id"])
        steps.post({"type": "decision_taken", "node": "B", "outcome": "yes"})
        steps.store()
    assert states.recall(key, 1) is None  # released, but not committed yet
    ctx.session.commit()

    kept = states.recall(key, 1)
    assert kept is not None and kept.state.current == "C"
    assert kept.state == upgrades.state_of(_stored(server_parts, instance["id"]))
