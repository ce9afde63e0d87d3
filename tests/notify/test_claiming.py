"""Several workers claiming at once never deliver the same notification twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from notify_helpers import RecordingChannel
from sqlalchemy import select

from fleetup.api.app import build_server
from fleetup.api.deps import Server
from fleetup.core.context import Ctx
from fleetup.notify import delivery
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
