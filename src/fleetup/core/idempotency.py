"""Requests that may be sent again: their effect and their answer are committed together.

A client whose request was cut off (the server died, the network dropped) cannot know whether
it took effect. If it sends the request again with the same ``Idempotency-Key``, the server
must neither do it twice nor answer differently than it would have the first time. So a keyed
request runs in one database transaction that the server holds open: the route's own commits
become savepoints inside it, and when the answer is ready, the answer is stored under the key
in that same transaction, which then commits. A process killed at any instant therefore leaves
either nothing (the retry runs the request) or the effect together with its answer (the retry
gets the stored answer). The HTTP side lives in ``fleetup.api.idempotency``.
"""

from __future__ import annotations

import contextvars
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from fleetup.core.db import Base, UTCDateTime

# Long enough for any client's retries; short enough that the table stays small.
RETENTION = timedelta(days=2)
PURGE_EVERY = 500
_purge_turn = itertools.count()

# The open transaction of the keyed request being handled in this context, if any.
joined: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
    "fleetup_idempotent_connection", default=None
)


class IdempotentRequest(Base):
    """A keyed request that took effect, and the answer it got."""

    __tablename__ = "idempotent_requests"

    # SHA-256 of the caller's credential and their key: one caller cannot replay another's.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


TABLE = cast(Table, IdempotentRequest.__table__)


@dataclass(frozen=True)
class StoredAnswer:
    """What a request with this key was answered; ``method`` and ``path`` are what it was."""

    method: str
    path: str
    status: int
    headers: list[list[str]]
    body: bytes


class ReplayableSessions(sessionmaker[Session]):
    """The server's session factory; inside a keyed request, sessions join its transaction.

    A joined session turns its ``commit`` into the release of a savepoint and its
    ``rollback`` into a rollback to it, so a route keeps its own transaction logic while the
    keyed request decides, with the answer in hand, whether all of it commits.
    """

    def __call__(self, **local_kw: Any) -> Session:
        connection = joined.get()
        if connection is not None:
            local_kw = {"bind": connection, "join_transaction_mode": "create_savepoint", **local_kw}
        return super().__call__(**local_kw)


def replayable(factory: sessionmaker[Session]) -> ReplayableSessions:
    """A ``ReplayableSessions`` configured as ``factory``."""
    return ReplayableSessions(**factory.kw)


def begin(
    engine: Engine, *, key: str, method: str, path: str, now: datetime
) -> Connection | StoredAnswer:
    """Open the transaction of a keyed request, or find the answer it already got.

    The key's row is written at once, so a second request with the same key that arrives
    while the first is still running waits for it (PostgreSQL: on the key; SQLite: on the
    write lock taken here) and then finds its answer.
    """
    for _attempt in range(3):
        connection = engine.connect()
        try:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            found = connection.execute(select(TABLE).where(TABLE.c.key == key)).first()
            if found is not None:
                connection.rollback()
                connection.close()
                return StoredAnswer(
                    found.method, found.path, int(found.status), found.headers, found.body
                )
            if next(_purge_turn) % PURGE_EVERY == 0:
                connection.execute(delete(TABLE).where(TABLE.c.created_at < now - RETENTION))
            connection.execute(
                insert(TABLE).values(
                    key=key, method=method, path=path, created_at=now, headers=[], body=b""
                )
            )
            return connection
        except IntegrityError:  # the same key committed while this one waited
            connection.rollback()
            connection.close()
        except BaseException:
            connection.rollback()
            connection.close()
            raise
    raise RuntimeError(f"the idempotency key of {method} {path} is taken and unreadable")


def keep(
    connection: Connection, *, key: str, status: int, headers: list[list[str]], body: bytes
) -> None:
    """Store the answer with the request's effect, and commit both."""
    try:
        connection.execute(
            update(TABLE)
            .where(TABLE.c.key == key)
            .values(status=status, headers=headers, body=body)
        )
        connection.commit()
    finally:
        connection.close()


def abandon(connection: Connection) -> None:
    """Roll the request's effect back: it failed, and a retry runs it again."""
    try:
        connection.rollback()
    finally:
        connection.close()
