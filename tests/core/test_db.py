"""Queries run on the driver's cursor read what the same query reads through SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from fleetup.api.deps import Server
from fleetup.core import audit
from fleetup.core.db import ById, JSONText, Prepared, UTCDateTime
from fleetup.core.simulated_clock import SimulatedMoment
from fleetup.fleet.models import Customer, Machine, MachineState, Site

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
        connection.execute(insert(Customer).values(id=9, code="KL", name="Kaili"))
    customer_by_id = ById(Customer)
    with server_parts.sessions() as session:
        found = customer_by_id(session, 7)
        assert found is not None and found.name == "Yijia"
        assert customer_by_id(session, 8) is None
        assert session.get(Customer, 7) is found
        held = customer_by_id(session, 9)
        # Changed and deleted elsewhere: the rows the session holds are the answers, as
        # they were, so nothing was read.
        with server_parts.engine.begin() as connection:
            connection.execute(update(Customer).values(name="Yijia Foods"))
            connection.execute(delete(Customer).where(Customer.id == 9))
        assert customer_by_id(session, 7) is found and found.name == "Yijia"
        assert held is not None and customer_by_id(session, 9) is held
        # After a rollback the held rows are read again.
        session.rollback()
        again = customer_by_id(session, 7)
        assert again is found and again.name == "Yijia Foods"
        assert customer_by_id(session, 9) is None


def test_a_row_by_id_is_the_sessions_own_object_with_its_columns_as_loaded(
    server_parts: Server,
) -> None:
    windows = [{"days": [5, 6], "start": "09:00", "end": "17:00"}]
    with server_parts.engine.begin() as connection:
        connection.execute(insert(Customer).values(id=7, code="YJ", name="Yijia"))
        connection.execute(
            insert(Site).values(
                id=3, customer_id=7, code="S1", name="Plant", maintenance_windows=windows
            )
        )
        connection.execute(
            insert(Machine).values(id=11, serial="YJ-011", model="M-200", ipc_os="linux", site_id=3)
        )
        connection.execute(insert(SimulatedMoment).values(name="now", at=START))
    with server_parts.sessions() as session:
        machine = ById(Machine, deferred=[Machine.model])(session, 11)
        assert machine is not None
        assert machine.state is MachineState.on_old_system  # the enum, as loaded
        assert "model" not in machine.__dict__
        assert machine.model == "M-200"  # a deferred column loads when read
        assert machine.site.maintenance_windows == windows  # and a relationship
        site = ById(Site)(session, 3)
        assert site is machine.site and site.maintenance_windows == windows
        moment = ById(SimulatedMoment)(session, "now")
        assert moment is not None and moment.at == START and moment.at.tzinfo is not None
        # A persistent object: a change to it is written by the next commit.
        machine.program_version = "2.0.0"
        session.commit()
    with server_parts.engine.connect() as connection:
        assert connection.scalar(select(Machine.program_version)) == "2.0.0"


def test_a_row_by_id_sees_what_the_session_has_not_flushed_yet(server_parts: Server) -> None:
    with server_parts.sessions() as session:
        session.add(Customer(id=7, code="YJ", name="Yijia"))
        session.flush()
        session.expunge_all()
        session.add(Customer(id=8, code="KL", name="Kaili"))
        found = ById(Customer)(session, 8)
        assert found is not None and found.name == "Kaili"


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
