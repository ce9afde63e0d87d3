"""Database access: the declarative base, engines and sessions.

SQLite is the default (WAL, foreign keys on, a busy timeout so the worker and the API can share
it); PostgreSQL is reached through ``postgresql+psycopg://`` URLs. Timestamps are stored as UTC
and always come back aware, whichever database holds them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from fleetup.core.clock import utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and returned aware, also from SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        moment = utc(value)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite files get WAL and foreign keys, and their folder is made."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # The server runs about 500 distinct statements; sqlite3 keeps 128 prepared per
        # connection by default, and preparing a large one again costs more than running it.
        connect_args = {"check_same_thread": False, "cached_statements": 1024}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    with factory() as session, session.begin():
        yield session


# Rows a session looked up by something other than their primary key (a machine by serial, a
# release by version), which its identity map cannot answer: a request or job that asks again
# gets the row it already holds instead of a query.
_LOOKED_UP = "fleetup_looked_up"


def looked_up(session: Session, kind: str, key: Hashable) -> Any | None:
    """The row this session found for ``key`` before (see ``remember``), while it is still
    loaded and current: not expired by a rollback, nor rolled back out of the session. The
    caller checks that the row still answers to ``key``."""
    found = session.info.get(_LOOKED_UP, {}).get((kind, key))
    if found is None:
        return None
    state = inspect(found)
    if not state.persistent or state.expired_attributes or state.session is not session:
        return None
    return found


def remember(session: Session, kind: str, key: Hashable, row: Any) -> None:
    """Keep ``row`` as what ``key`` found, for ``looked_up`` in the same session."""
    session.info.setdefault(_LOOKED_UP, {})[(kind, key)] = row
