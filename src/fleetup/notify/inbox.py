"""Where a server on simulated time delivers its messages and wake-ups, durably.

A simulated campaign must never reach a real customer's mailbox or a real broker, and the
simulated people must read what the real ones would: the survey link in the invitation, the
page for a new incident, the wake-up of an IPC. So a server built on a ``ManualClock`` keeps a
``SimulatedInbox``: the worker's delivery and wake-up jobs deliver to it, and the simulation
endpoint hands what arrived to the simulator with each move of the clock.

The inbox is a table (``simulated_inbox``), and each entry is written in the same transaction
as the delivery it records: a message when its notification is marked delivered, a wake-up
when its pending row is taken. A server killed mid-move therefore neither loses what it
delivered nor delivers it twice, and an answer lost with the process can be asked for again:
entries are numbered, and the simulator asks for everything after the last number it got.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, String, Text, bindparam, event, func, select
from sqlalchemy.engine import Result
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    UOWTransaction,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.orm.attributes import get_history

from fleetup.core.clock import Clock
from fleetup.core.db import Base, Prepared, UTCDateTime, transaction
from fleetup.notify.models import DELIVERED, QUEUED, DeviceWakeup, Notification
from fleetup.notify.service import wake_topic

WAKE_PREFIX = "fleetup/devices/"
WAKE_SUFFIX = "/wake"
MESSAGE = "message"
WAKE = "wake"


class InboxEntry(Base):
    """One delivery to the simulated world: a message on a channel, or a device's wake-up."""

    __tablename__ = "simulated_inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # The woken device as its topic names it (``dev-<id>``).
    device: Mapped[str] = mapped_column(String(40), default="")
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class Delivered:
    """One message as the channel received it."""

    url: str
    title: str
    body: str


@dataclass(frozen=True)
class Handover:
    """What was delivered after a position of the inbox, and the position it reaches."""

    messages: list[Delivered]
    woken: list[str]
    cursor: int


def device_of(topic: str) -> str:
    return topic.removeprefix(WAKE_PREFIX).removesuffix(WAKE_SUFFIX)


_AFTER = Prepared(
    select(
        InboxEntry.id,
        InboxEntry.kind,
        InboxEntry.url,
        InboxEntry.title,
        InboxEntry.body,
        InboxEntry.device,
    )
    .where(InboxEntry.id > bindparam("after"))
    .order_by(InboxEntry.id)
)


@dataclass
class SimulatedInbox:
    """A channel and a wake-up publisher whose deliveries are rows of ``simulated_inbox``.

    ``attach`` hooks it to the server's sessions; from then on marking a notification
    delivered, or taking pending wake-ups, writes the inbox entries in that same transaction.
    ``send`` and ``publish`` themselves have nothing left to do.
    """

    _attached: list[sessionmaker[Session]] = field(default_factory=list)

    def attach(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        """Record the deliveries made through ``sessions`` (once per session factory)."""
        if any(known is sessions for known in self._attached):
            return
        self._attached.append(sessions)

        def record_messages(session: Session, _flush: UOWTransaction, _objects: Any) -> None:
            for row in list(session.dirty):
                if isinstance(row, Notification) and DELIVERED in get_history(row, "status").added:
                    session.add(
                        InboxEntry(
                            kind=MESSAGE,
                            url=row.channel_url,
                            title=row.subject,
                            body=row.body,
                            delivered_at=row.delivered_at or clock.now(),
                        )
                    )

        def record_wakeups(state: ORMExecuteState) -> Result[Any] | None:
            mapper = state.bind_mapper
            if not state.is_delete or mapper is None or mapper.class_ is not DeviceWakeup:
                return None
            frozen = state.invoke_statement().freeze()
            taken = frozen()
            columns = set(taken.keys())  # a Result's own ``in`` would look at its rows
            if "device_id" in columns:
                now = clock.now()
                for device_id in sorted({row.device_id for row in taken}):
                    state.session.add(
                        InboxEntry(
                            kind=WAKE, device=device_of(wake_topic(device_id)), delivered_at=now
                        )
                    )
            return frozen()

        event.listen(sessions, "before_flush", record_messages)
        event.listen(sessions, "do_orm_execute", record_wakeups)

    def _require_attached(self) -> None:
        if not self._attached:
            raise RuntimeError("the simulated inbox records nothing until it is attached")

    def send(self, url: str, title: str, body: str) -> None:
        """Nothing to send: the delivery's own transaction writes the entry."""
        del url, title, body
        self._require_attached()

    def publish(self, topics: Sequence[str]) -> None:
        """Nothing to publish: taking the pending wake-ups wrote their entries."""
        del topics
        self._require_attached()

    def latest(self, session: Session) -> int:
        """The position of the last entry (0 on an empty inbox)."""
        return int(session.scalar(select(func.max(InboxEntry.id))) or 0)

    def handover(self, connection: Connection, *, after: int) -> Handover:
        """Every entry after position ``after``, in the order they were delivered.

        Every clock move asks this, mostly of an inbox with nothing new, so it is one
        statement compiled once, on the driver's cursor."""
        rows = _AFTER.rows(connection, {"after": after})
        return Handover(
            messages=[
                Delivered(url, title, body)
                for _, kind, url, title, body, _ in rows
                if kind == MESSAGE
            ],
            woken=[device for _, kind, *_, device in rows if kind == WAKE],
            cursor=max((entry_id for entry_id, *_ in rows), default=after),
        )


def release_claims(sessions: sessionmaker[Session], lease: timedelta) -> int:
    """Give back the notifications a dead process had claimed but not delivered.

    A simulated server is its own only worker, so when it starts, any claim still held was
    made by a process that was killed mid-delivery. The claim moved the row's next attempt one
    ``lease`` ahead (``delivery.lease``) and counted an attempt; both are undone, so the row
    is delivered at the moment the dead process would have delivered it.
    """
    released = 0
    with transaction(sessions) as session:
        claimed = session.scalars(
            select(Notification).where(
                Notification.status == QUEUED, Notification.last_attempt_at.is_not(None)
            )
        )
        for row in claimed:
            if (
                row.last_attempt_at is not None
                and row.next_attempt_at - row.last_attempt_at == lease
            ):
                row.next_attempt_at = row.last_attempt_at
                row.attempts = max(row.attempts - 1, 0)
                released += 1
    return released
