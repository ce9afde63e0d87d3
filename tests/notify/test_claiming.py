"""Several workers claiming at once never deliver the same notification twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import cast

from notify_helpers import RecordingChannel
from sqlalchemy import select

from fleetup.api.app import build_server
from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.notify import delivery, inbox
from fleetup.notify import service as notify
from fleetup.notify.models import Notification


def test_concurrent_workers_deliver_each_notification_once(
    parts: Server, person: Callable[..., str]
) -> None:
    people = [person(f"tech{n}", url=f"json://127.0.0.1:9/hook{n}") for n in range(10)]
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        for event in range(12):
            notify.send(
                ctx,
                template="test_message",
                key=f"event-{event}",
                to=[f"user:{name}" for name in people],
                params={"username": f"event-{event}", "sent_at": "now"},
            )
        session.commit()
    channel = RecordingChannel()
    # Each worker has its own engine (its own connections), as separate processes would.
    workers = [build_server(parts.settings, parts.clock) for _ in range(4)]
    start = threading.Barrier(len(workers))
    delivered: list[int] = []

    def work(worker: Server) -> None:
        start.wait()
        delivered.append(delivery.deliver_due(worker, channel))

    threads = [threading.Thread(target=work, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for worker in workers:
        worker.engine.dispose()

    assert sum(delivered) == 120
    sent = Counter((url, body) for url, _, body in channel.sent)
    assert len(sent) == 120 and set(sent.values()) == {1}
    with parts.sessions() as session:
        rows = session.scalars(select(Notification)).all()
        assert len(rows) == 120
        assert {(row.status, row.attempts) for row in rows} == {("delivered", 1)}


def test_a_claim_holds_a_notification_for_the_configured_lease(
    parts: Server, person: Callable[..., str]
) -> None:
    person("amy", url="json://127.0.0.1:9/amy")
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        notify.send(
            ctx,
            template="test_message",
            key="lease-1",
            to=["user:amy"],
            params={"username": "amy", "sent_at": "now"},
        )
        session.commit()
    worker = build_server(parts.settings.model_copy(update={"notify_lease_s": 90}), parts.clock)
    clock = cast(ManualClock, parts.clock)
    try:
        (taken,) = delivery.claim(worker)  # and the worker dies before sending it
        with worker.sessions() as session:
            row = session.get_one(Notification, taken.id)
            assert row.next_attempt_at == clock.now() + timedelta(seconds=90)
        clock.advance(timedelta(seconds=89))
        assert delivery.claim(worker) == []
        clock.advance(timedelta(seconds=1))
        assert [again.id for again in delivery.claim(worker)] == [taken.id]
        # A simulated server that starts again gives back the claim it finds, by this lease.
        clock.advance(timedelta(seconds=10))
        assert inbox.release_claims(worker.sessions, delivery.lease(worker.settings)) == 1
        assert [again.id for again in delivery.claim(worker)] == [taken.id]
    finally:
        worker.engine.dispose()
