"""Queries run on the driver's cursor read what the same query reads through SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    update,
)

from fleetup.api.deps import Server
from fleetup.core import audit
from fleetup.core.db import ById, JSONText, Prepared, UTCDateTime
from fleetup.core.simulated_clock import SimulatedMoment
from fleetup.fleet.models import Customer

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _moments(parts: Server) -> None:
    with parts.engine.begin() as connection:
        connection.execute(
            insert(SimulatedMoment),
            [
                {"name": name, "at": START + timedelta(hours=hours)}
                for hours, name in enumerate(["job:a", "job:b", "job:c", "job:d", "now"])
            ],
        )


def test_a_prepared_query_reads_the_rows_sqlalchemy_reads(server_parts: Server) -> None:
    _moments(server_parts)
    until = bindparam("until", type_=UTCDateTime())
    query = (
        select(SimulatedMoment.name, func.count().over().label("of"))
        .where(
            SimulatedMoment.name.in_(["job:a", "job:c", "job:d", "now"]),
            SimulatedMoment.at <= until,
            SimulatedMoment.name != "job:a",
        )
        .order_by(SimulatedMoment.name)
    )
    prepared = Prepared(query)
    with server_parts.engine.connect() as connection:
        for hours in (0, 2, 3, 9):
            params = {"until": START + timedelta(hours=hours)}
            expected = [tuple(row) for row in connection.execute(query, params)]
            assert [tuple(row) for row in prepared.rows(connection, params)] == expected
        # Asked again, the same compiled query gives the newest rows.
        connection.execute(insert(SimulatedMoment).values(name="job:c2", at=START))
        rows = prepared.rows(connection, {"until": START + timedelta(hours=9)})
    assert [tuple(row) for row in rows] == [("job:c", 3), ("job:d", 3), ("now", 3)]


def test_a_prepared_query_names_the_value_it_was_not_given(server_parts: Server) -> None:
    query = select(SimulatedMoment.name).where(
        SimulatedMoment.at <= bindparam("until", type_=UTCDateTime())
    )
    with (
        server_parts.engine.connect() as connection,
        pytest.raises(KeyError, match="'until'"),
    ):
        Prepared(query).rows(connection, {"since": START})


def test_a_row_by_id_is_read_held_or_read_again_as_session_get_would(
    server_parts: Server,
) -> None:
    with server_parts.engine.begin() as connection:
        connection.execute(insert(Customer).values(id=7, code="YJ", name="Yijia"))
    customer_by_id = ById(Customer)
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(args[2])

    event.listen(server_parts.engine, "before_cursor_execute", count)
    try:
        with server_parts.sessions() as session:
            found = customer_by_id(session, 7)
            assert found is not None and found.name == "Yijia"
            assert customer_by_id(session, 8) is None
            assert len(queries) == 2
            # Held by the session: answered without a query.
            assert customer_by_id(session, 7) is found
            assert len(queries) == 2
            # Changed elsewhere; after a rollback the held row is read again.
            with server_parts.engine.begin() as connection:
                connection.execute(update(Customer).values(name="Yijia Foods"))
            session.rollback()
            again = customer_by_id(session, 7)
            assert again is found and again.name == "Yijia Foods"
            assert session.get(Customer, 7) is again
    finally:
        event.remove(server_parts.engine, "before_cursor_execute", count)


def test_a_document_given_as_its_json_text_is_stored_as_that_document(
    server_parts: Server,
) -> None:
    table = Table(
        "json_text_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("document", JSON),
    )
    document = {"b": [1, 2.5, None], "a": {"ü": "機台"}, "c": True}
    text, digest = audit.digested(document)
    write = Prepared(
        update(table)
        .where(table.c.id == bindparam("row"))
        .values(document=bindparam("document", type_=JSONText()))
    )
    table.create(server_parts.engine)
    try:
        with server_parts.engine.begin() as connection:
            connection.execute(insert(table).values(id=1, document={}))
            assert write.run(connection, {"row": 1, "document": text}) == 1
        with server_parts.engine.connect() as connection:
            stored = connection.scalar(select(table.c.document))
    finally:
        table.drop(server_parts.engine)
    assert stored == document
    assert audit.digest(stored) == digest
