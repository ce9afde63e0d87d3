"""Database access: the declarative base, engines and sessions.

SQLite is the default (WAL, foreign keys on, a busy timeout so the worker and the API can share
it); PostgreSQL is reached through ``postgresql+psycopg://`` URLs. Timestamps are stored as UTC
and always come back aware, whichever database holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    bindparam,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Session,
    defer,
    make_transient_to_detached,
    sessionmaker,
)
from sqlalchemy.orm.util import identity_key
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
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


class JSONText(TypeDecorator[str]):
    """A JSON column's value given as the JSON text itself, for a writer that serialised the
    document already (to digest it): the text is stored as it is, where SQLAlchemy's JSON
    type would serialise the document once more. PostgreSQL still reads it as ``json``."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


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


@dataclass(frozen=True)
class DriverStatement:
    """A SQLAlchemy statement compiled for one dialect, to run on a bare DB-API cursor.

    The SQL has the statement's ``IN`` lists written out, so they must hold constants. The
    caller's values go through the bind processing SQLAlchemy would apply (a UTC timestamp as
    SQLite stores it, a dict as psycopg's JSON), so rows read and written this way are the
    same as through a session.
    """

    sql: str
    # Every parameter with the value it has unless the caller gives one: the constants, and
    # the members of the ``IN`` lists.
    defaults: dict[str, Any]
    # The parameters without a value of their own, which the caller must give.
    needed: frozenset[str]
    processors: dict[str, Callable[[Any], Any]]
    # The parameters in the order the SQL names them (a driver of ``?`` placeholders).
    order: tuple[str, ...] | None
    escaped: Mapping[str, str]

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        needed = frozenset(bind.key for bind in compiled.binds.values() if bind.required)
        expanded = compiled.construct_expanded_state(dict.fromkeys(needed), escape_names=False)
        processors: dict[str, Callable[[Any], Any]] = dict(expanded.processors)
        for bind, name in compiled.bind_names.items():
            if bind in compiled.post_compile_params:
                continue
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        return cls(
            sql=expanded.statement,
            defaults=dict(expanded.parameters),
            needed=needed,
            processors=processors,
            order=tuple(expanded.positiontup or ()) if compiled.positional else None,
            escaped=compiled.escaped_bind_names,
        )

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The values as the driver takes them (as SQLAlchemy does, values for parameters the
        statement does not have are left out).

        Raises:
            KeyError: ``given`` misses a parameter the statement needs.
        """
        missing = self.needed - given.keys()
        if missing:
            raise KeyError(f"a value is needed for the parameters {sorted(missing)}")
        values = {name: given.get(name, value) for name, value in self.defaults.items()}
        for name, processor in self.processors.items():
            values[name] = processor(values[name])
        if self.order is not None:
            return tuple(values[name] for name in self.order)
        return {self.escaped.get(name, name): value for name, value in values.items()}


class Prepared:
    """A statement built once, compiled once per dialect, and run on the driver's cursor.

    SQLAlchemy runs even a prebuilt statement through its whole pipeline on every call: it
    derives the statement's cache key, writes out its ``IN`` lists, processes the parameters
    and sets up a result. For the small questions asked on every clock move that costs about
    ten times the query itself. A ``Prepared`` query keeps a ``DriverStatement`` per dialect,
    so a call only converts the caller's values.

    Rows come as the driver gives them, without result processing: use it only for columns
    whose values need no conversion (integers, booleans, text). Nothing passes through the
    engine's events either: the statements are the server's own, not the caller's.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, DriverStatement] = {}

    def _for(self, connection: Connection) -> DriverStatement:
        dialect = connection.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = DriverStatement.compile(self.statement, dialect)
        return found

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> Sequence[Any]:
        """The statement's rows for ``params`` (a query's, or what a write ``RETURNING``
        gives), in ``connection``'s transaction."""
        statement = self._for(connection)
        cursor = connection.connection.cursor()
        try:
            cursor.execute(statement.sql, statement.parameters(params))
            return cursor.fetchall()
        finally:
            cursor.close()

    def run(self, connection: Connection, params: Mapping[str, Any]) -> int:
        """Run the statement once, in ``connection``'s transaction; the rows it changed."""
        statement = self._for(connection)
        cursor = connection.connection.cursor()
        try:
            cursor.execute(statement.sql, statement.parameters(params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, connection: Connection, many: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once for each of ``many``, in ``connection``'s transaction."""
        statement = self._for(connection)
        cursor = connection.connection.cursor()
        try:
            arguments: Any = [statement.parameters(one) for one in many]
            cursor.executemany(statement.sql, arguments)
        finally:
            cursor.close()


M = TypeVar("M", bound=Base)


class ById(Generic[M]):
    """``Session.get`` for the hot paths: one statement compiled once, and the row made into
    the session's object without the ORM's loading machinery.

    A load through the session (``Session.get``, or a prebuilt query) sets up an ORM
    execution, a result and a loading context for each row, several times the cost of the
    indexed read itself. ``ById`` reads the row's columns with a ``Prepared`` statement,
    converts them as SQLAlchemy's result processing would, and hands the object to the session
    as if a query had loaded it (``make_transient_to_detached``, then ``Session.add``); the
    columns in ``deferred``, and the relationships, load when first read, as they would then.

    Like ``Session.get`` it answers from the session's identity map when the row is held there
    and not expired, and flushes pending changes before it reads. A held row that was expired
    (the session rolled back, say) is read again through the session, which refreshes it.
    """

    def __init__(self, model: type[M], *, deferred: Sequence[Any] = ()) -> None:
        self.model = model
        mapper = inspect(model)
        (key,) = mapper.primary_key
        skipped = {attribute.key for attribute in deferred}
        loaded = [
            prop for prop in mapper.column_attrs if prop.key not in skipped and not prop.deferred
        ]
        for prop in loaded:
            if len(prop.columns) != 1 or not isinstance(prop.columns[0], Column):
                raise TypeError(f"{model.__name__}.{prop.key} is not a plain column")
        self._keys = tuple(prop.key for prop in loaded)
        self._columns = tuple(cast(Column[Any], prop.columns[0]) for prop in loaded)
        self._read = Prepared(select(*self._columns).where(key == bindparam("row_id")))
        self._query = (
            select(model)
            .options(*(defer(attribute) for attribute in deferred))
            .where(key == bindparam("row_id"))
        )
        self._processors: dict[str, tuple[Callable[[Any], Any] | None, ...]] = {}

    def __call__(self, session: Session, row_id: int | str) -> M | None:
        held = session.identity_map.get(identity_key(self.model, row_id))
        if held is not None:
            if not inspect(held).expired:
                return held
            return session.scalar(self._query, {"row_id": row_id})
        if session.autoflush:
            session.flush()
        connection = session.connection()
        rows = self._read.rows(connection, {"row_id": row_id})
        if not rows:
            return None
        processors = self._processors.get(connection.dialect.name)
        if processors is None:
            processors = self._processors[connection.dialect.name] = tuple(
                column.type.dialect_impl(connection.dialect).result_processor(
                    connection.dialect, None
                )
                for column in self._columns
            )
        row = cast(M, inspect(self.model).class_manager.new_instance())
        row.__dict__.update(
            (key, value if process is None or value is None else process(value))
            for key, process, value in zip(self._keys, processors, rows[0], strict=True)
        )
        make_transient_to_detached(row)
        session.add(row)
        return row


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
