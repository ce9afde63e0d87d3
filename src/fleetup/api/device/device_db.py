"""The device API's own way to the database, for what every IPC sends all day.

Every agent request carries its device credential, and most are the no-change poll, which needs
nothing but the credential's device and its change counter; next come heartbeats, one UPDATE
each. Through a SQLAlchemy session in a worker thread, the machinery cost ten times the
statement itself. Here the services' own statements (``devices.credential_statement``,
``devices.heartbeat_statement``), compiled once, run straight on DBAPI connections:

- PostgreSQL (psycopg): on a few asynchronous connections of the running event loop, in
  autocommit, prepared on the server: one round trip each, and the loop never blocks;
  lookups and heartbeats on connections of their own (see ``PostgresDb``).
- SQLite: the lookup on the event loop's own thread (a read in WAL mode does not wait for
  writers, and the indexed select takes microseconds, less than a hop to a worker thread);
  the heartbeat in a worker thread, since a write may wait for the lock. Each thread has its
  own autocommit connection.
- any other database, or SQLite in memory: through the engine in a worker thread.

Nothing is cached: every lookup reads the committed row, so an ETag moved or a credential
revoked by another process or session is seen by the very next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from starlette.concurrency import run_in_threadpool

from fleetup.core.db import DriverStatement
from fleetup.devices import service as devices
from fleetup.devices.service import CredentialRow

#: Asynchronous PostgreSQL connections per process, for lookups and again for heartbeats. A
#: statement holds one for a round trip of well under a millisecond, so a few carry thousands
#: of requests a second.
POSTGRES_CONNECTIONS = 4
#: How long a SQLite lookup on the event loop waits for a lock before it gives up (and the
#: request takes the session's way): a WAL reader meets one only in rare moments.
SQLITE_READ_BUSY_MS = 50
#: A SQLite write in a worker thread waits as long as the engine's own connections do.
SQLITE_WRITE_BUSY_MS = 15_000


class DirectUnavailable(Exception):
    """The direct way could not run just now (a broken connection, a locked file): the caller
    takes the session's way instead."""


class DeviceDb(Protocol):
    async def find(self, credential: str) -> CredentialRow | None:
        """The row of the device holding ``credential``; None when no device holds it.

        Raises:
            DirectUnavailable: see the class.
        """

    async def heartbeat(self, values: Mapping[str, Any]) -> int:
        """Run ``devices.heartbeat_statement`` with ``values``; the number of rows changed.

        Raises:
            DirectUnavailable: see the class.
        """

    async def close(self) -> None:
        """Close the connections it holds (it opens new ones when asked again)."""


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, DeviceDb] = weakref.WeakKeyDictionary()
_BY_ENGINE_LOCK = threading.Lock()


def device_db(engine: Engine) -> DeviceDb:
    """The direct way to ``engine``'s database, one per engine (the poll and routes share it)."""
    found = _BY_ENGINE.get(engine)
    if found is None:
        with _BY_ENGINE_LOCK:
            found = _BY_ENGINE.get(engine)
            if found is None:
                found = _BY_ENGINE[engine] = _build(engine)
    return found


def _build(engine: Engine) -> DeviceDb:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SqliteDb(str(url.database), engine.dialect)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresDb(conninfo, engine.dialect)
    return ThreadedDb(engine)


class SqliteDb:
    """Lookups on the calling thread, heartbeats in a worker thread; a connection per thread."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self.path = path
        self.lookup = DriverStatement.compile(devices.credential_statement(), dialect)
        self.beat = DriverStatement.compile(devices.heartbeat_statement(), dialect)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def find(self, credential: str) -> CredentialRow | None:
        values = devices.credential_values(credential)
        try:
            cursor = self._connection(SQLITE_READ_BUSY_MS).execute(
                self.lookup.sql, self.lookup.parameters(values)
            )
            row: CredentialRow | None = cursor.fetchone()
        except sqlite3.Error as error:
            raise DirectUnavailable(f"SQLite: {error}") from error
        return row

    async def heartbeat(self, values: Mapping[str, Any]) -> int:
        return await run_in_threadpool(self._write, self.beat, values)

    def _write(self, statement: DriverStatement, values: Mapping[str, Any]) -> int:
        try:
            cursor = self._connection(SQLITE_WRITE_BUSY_MS).execute(
                statement.sql, statement.parameters(values)
            )
        except sqlite3.Error as error:
            raise DirectUnavailable(f"SQLite: {error}") from error
        return cursor.rowcount

    def _connection(self, busy_ms: int) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Used by its own thread only; closable from another one when the server stops.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA foreign_keys=ON")
            # The engine's own connections' setting: in WAL mode a commit is not synced to
            # disk (a power cut may lose the last ones, never leave the file inconsistent),
            # so a heartbeat does not wait for one.
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            self._local.busy_ms = None
            with self._lock:
                self._opened.append(connection)
        if self._local.busy_ms != busy_ms:
            connection.execute(f"PRAGMA busy_timeout={busy_ms}")
            self._local.busy_ms = busy_ms
        return connection

    async def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        self._local = threading.local()
        for connection in opened:
            connection.close()


class PostgresDb:
    """Lookups and heartbeats on asynchronous connections of the running event loop.

    Reads and writes have connections of their own, so a lookup never waits behind a
    heartbeat whose commit waits for the disk. Heartbeats commit with ``synchronous_commit``
    off: a crash of PostgreSQL may lose the last fraction of a second of them, never leave
    anything inconsistent, and the next heartbeat, a minute later, says the same again; no
    other write goes this way.
    """

    def __init__(self, conninfo: str, dialect: Dialect) -> None:
        self.lookup = DriverStatement.compile(devices.credential_statement(), dialect)
        self.beat = DriverStatement.compile(devices.heartbeat_statement(), dialect)
        self._reads = AsyncConnections(conninfo, POSTGRES_CONNECTIONS)
        self._writes = AsyncConnections(
            conninfo, POSTGRES_CONNECTIONS, options="-c synchronous_commit=off"
        )

    async def find(self, credential: str) -> CredentialRow | None:
        _, row = await self._reads.run(self.lookup, devices.credential_values(credential))
        return row

    async def heartbeat(self, values: Mapping[str, Any]) -> int:
        changed, _ = await self._writes.run(self.beat, values)
        return changed

    async def close(self) -> None:
        await self._reads.close()
        await self._writes.close()


class AsyncConnections:
    """Up to ``size`` asynchronous autocommit connections of one event loop, taken in turn.

    The connections belong to the event loop that opened them. Should another loop ask (a test
    client runs the app on a loop of its own), those of the former loop are closed at the
    socket, without that loop, and new ones opened.
    """

    def __init__(self, conninfo: str, size: int, *, options: str = "") -> None:
        self.conninfo = conninfo
        self.size = size
        self.options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owned: set[psycopg.AsyncConnection[Any]] = set()
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._waiting: deque[asyncio.Future[psycopg.AsyncConnection[Any] | None]] = deque()
        self._opening = 0

    @property
    def opened(self) -> int:
        return len(self._owned)

    async def run(
        self, statement: DriverStatement, values: Mapping[str, Any]
    ) -> tuple[int, CredentialRow | None]:
        """Execute, prepared, on one of the connections: the rows changed, and the first
        row selected (None for a statement that selects nothing).

        Raises:
            DirectUnavailable: the connection failed; it is closed, and a new one opened next.
        """
        connection = await self._take()
        try:
            cursor = await connection.execute(
                statement.sql, statement.parameters(values), prepare=True
            )
            row = await cursor.fetchone() if cursor.description else None
        except psycopg.Error as error:
            self._drop(connection)
            raise DirectUnavailable(f"PostgreSQL: {error}") from error
        except BaseException:
            self._drop(connection)  # cancelled mid-statement: its state is unknown
            raise
        self._give(connection)
        return cursor.rowcount, row

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            self._owned.discard(connection)
            with contextlib.suppress(psycopg.Error):
                await connection.close()

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._forget_loop(loop)
        while True:
            if self._idle:
                return self._idle.pop()
            if len(self._owned) + self._opening < self.size:
                return await self._open()
            waiter: asyncio.Future[psycopg.AsyncConnection[Any] | None] = loop.create_future()
            self._waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()
                    if handed is not None:
                        self._give(handed)  # handed over just as it was cancelled
                raise
            if handed is not None:
                return handed

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        self._opening += 1
        try:
            connection = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, options=self.options or None
            )
        except psycopg.Error as error:
            raise DirectUnavailable(f"PostgreSQL: {error}") from error
        finally:
            self._opening = max(self._opening - 1, 0)  # reset meanwhile if the loop changed
        if self._loop is not asyncio.get_running_loop():
            connection.pgconn.finish()  # the loop changed while it connected
            raise DirectUnavailable("PostgreSQL: the event loop changed")
        self._owned.add(connection)
        return connection

    def _give(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if connection not in self._owned:
            connection.pgconn.finish()  # opened on a loop that is no longer served
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _drop(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._owned.discard(connection)
        connection.pgconn.finish()
        while self._waiting:  # one waiter may now open a connection in its place
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _forget_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        for connection in self._owned:
            connection.pgconn.finish()
        self._owned, self._idle, self._waiting = set(), [], deque()
        self._opening = 0
        self._loop = loop


class ThreadedDb:
    """The services' statements through the engine in a worker thread, for any other database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)  # the engine keys this object: do not keep it alive

    def _alive(self) -> Engine:
        engine = self._engine()
        if engine is None:
            raise DirectUnavailable("the engine is gone")
        return engine

    async def find(self, credential: str) -> CredentialRow | None:
        return await run_in_threadpool(self._find, credential)

    def _find(self, credential: str) -> CredentialRow | None:
        with self._alive().connect() as connection:
            row = connection.execute(
                devices.credential_statement(), devices.credential_values(credential)
            ).first()
        return None if row is None else tuple(row)

    async def heartbeat(self, values: Mapping[str, Any]) -> int:
        return await run_in_threadpool(self._heartbeat, values)

    def _heartbeat(self, values: Mapping[str, Any]) -> int:
        with self._alive().begin() as connection:
            changed: int = connection.execute(devices.heartbeat_statement(), values).rowcount
        return changed

    async def close(self) -> None:
        return None
