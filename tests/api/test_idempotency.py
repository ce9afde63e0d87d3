"""``Idempotency-Key``: a changing request sent again is answered as the first time, done once."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleetup.api.access import public
from fleetup.api.app import create_app
from fleetup.api.deps import Server
from fleetup.core.context import Ctx
from fleetup.core.idempotency import IdempotentRequest
from fleetup.core.security import Role
from fleetup.notify import service as notify
from fleetup.notify.models import Subscription
from support import Account

SUBSCRIBE = "/api/v1/me/subscriptions"
HOOK = {"url": "json://hooks.example/a", "language": "en"}


@pytest.fixture
def keyed_app(server_parts: Server) -> FastAPI:
    app = create_app(server_parts)

    def subscribe_then_fail() -> None:
        """Writes, commits, then fails: the kind of request a client would send again."""
        with server_parts.sessions() as session:
            ctx = Ctx(session=session, actor="test", clock=server_parts.clock)
            notify.add_subscription(
                ctx, username="viewer-user", url="json://hooks.example/x", language="en"
            )
            session.commit()
        raise RuntimeError("the route broke after its commit")

    app.add_api_route("/test/fails", subscribe_then_fail, methods=["POST"], dependencies=[public()])
    return app


@pytest.fixture
def keyed(keyed_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(keyed_app, raise_server_exceptions=False) as test_client:
        yield test_client


def _count(parts: Server, model: type) -> int:
    with parts.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_request_sent_again_with_its_key_gets_the_first_answer_and_is_done_once(
    keyed: TestClient, server_parts: Server, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.viewer)
    headers = viewer.headers | {"Idempotency-Key": "k-1"}
    first = keyed.post(SUBSCRIBE, json=HOOK, headers=headers)
    again = keyed.post(SUBSCRIBE, json=HOOK, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count(server_parts, Subscription) == 1
    # Without a key the route itself refuses a second subscription to the same URL.
    unkeyed = keyed.post(SUBSCRIBE, json=HOOK, headers=viewer.headers)
    assert unkeyed.status_code == 409


def test_a_refusal_is_kept_too_so_a_retry_is_refused_the_same_way(
    keyed: TestClient, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.viewer)
    headers = viewer.headers | {"Idempotency-Key": "k-bad"}
    bad = {"url": "not a url", "language": "en"}
    first = keyed.post(SUBSCRIBE, json=bad, headers=headers)
    again = keyed.post(SUBSCRIBE, json=bad, headers=headers)
    assert first.status_code == again.status_code
    assert 400 <= first.status_code < 500
    assert again.json() == first.json()


def test_a_key_reused_on_another_route_is_refused(
    keyed: TestClient, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.viewer)
    headers = viewer.headers | {"Idempotency-Key": "k-2"}
    assert keyed.post(SUBSCRIBE, json=HOOK, headers=headers).status_code == 201
    other = keyed.post("/api/v1/me/test-notification", headers=headers)
    assert other.status_code == 422
    assert "use a new key" in other.json()["detail"]


def test_two_callers_with_the_same_key_do_not_share_an_answer(
    keyed: TestClient, server_parts: Server, make_account: Callable[..., Account]
) -> None:
    one, two = make_account(Role.viewer, "one"), make_account(Role.viewer, "two")
    for caller in (one, two):
        answer = keyed.post(SUBSCRIBE, json=HOOK, headers=caller.headers | {"Idempotency-Key": "k"})
        assert answer.status_code == 201
        assert "idempotent-replayed" not in answer.headers
    assert _count(server_parts, Subscription) == 2


def test_a_request_that_fails_after_its_commit_leaves_nothing_and_may_run_again(
    keyed: TestClient, server_parts: Server, make_account: Callable[..., Account]
) -> None:
    make_account(Role.viewer)
    for _attempt in range(2):
        failed = keyed.post("/test/fails", headers={"Idempotency-Key": "k-3"})
        assert failed.status_code == 500
        assert "idempotent-replayed" not in failed.headers
    # The route's own commit was a savepoint of the request's transaction, rolled back whole.
    assert _count(server_parts, Subscription) == 0
    assert _count(server_parts, IdempotentRequest) == 0
    # Without a key, the same failure keeps what the route committed.
    assert keyed.post("/test/fails").status_code == 500
    assert _count(server_parts, Subscription) == 1


def test_requests_without_a_key_are_untouched(
    keyed: TestClient, server_parts: Server, make_account: Callable[..., Account]
) -> None:
    viewer = make_account(Role.viewer)
    assert keyed.post(SUBSCRIBE, json=HOOK, headers=viewer.headers).status_code == 201
    assert _count(server_parts, IdempotentRequest) == 0
