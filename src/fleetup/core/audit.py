"""The audit trail: every write leaves an event in one hash chain.

Each event holds who did what, when, and the row before and after. Its hash covers its own
content and the previous event's hash, so deleting or changing an event breaks the chain at
that point. Besides the chain, ``verify`` compares every audited table with the last state the
trail recorded for each row, so a row changed, inserted or deleted behind fleetup's back (for
instance with a SQL client) is named too.

A transaction's events join the chain when it commits. Writers serialise on the single
``audit_head`` row: the ``UPDATE ... RETURNING`` that claims the next sequence numbers takes
that row's write lock on PostgreSQL and SQLite alike, so the chain's order is commit order.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    cast,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.event import listens_for
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from fleetup.core.db import Base, Prepared, UTCDateTime

GENESIS = "0" * 64

_AUDITED: dict[str, type[Base]] = {}


M = TypeVar("M", bound=type[Base])


def audited(model: M) -> M:
    """Class decorator: rows of this model are checked against the trail by ``verify``."""
    _AUDITED[model.__tablename__] = model
    return model


def audited_models() -> dict[str, type[Base]]:
    return dict(_AUDITED)


class AuditHead(Base):
    """The chain's tip: the last sequence number and hash handed out."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str] = mapped_column(String(320), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def snapshot(row: Base, digests: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The row's column values as JSON-safe data, the form the trail stores.

    Columns a model names in ``__audit_digest__`` (large documents, such as an SOP instance's
    state) are kept as their SHA-256 (``digest``), which still shows any change without
    copying the whole document into every event. ``digests`` gives those a caller knows
    already, by column; such a column is then not read at all.
    """
    return _snapshot(type(row), lambda key: getattr(row, key), digests)


def snapshot_of(model: type[Base], values: Mapping[str, Any]) -> dict[str, Any]:
    """``snapshot`` of a row of ``model`` holding ``values`` (every column's), such as a row
    written with a Core statement.

    Raises:
        KeyError: a column of the model is missing from ``values``.
    """
    return _snapshot(model, values.__getitem__)


def digest(document: Any) -> str:
    """How the trail keeps a digested column's value: the SHA-256 of its canonical JSON."""
    return digested(document)[1]


def digested(document: Any) -> tuple[str, str]:
    """``document``'s canonical JSON and its ``digest``: for a writer that stores the JSON
    text as well, which then needs no second serialisation (``core.db.JSONText``)."""
    text = _document(document)
    return text, "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _snapshot(
    model: type[Base], value_of: Callable[[str], Any], digests: Mapping[str, str] | None = None
) -> dict[str, Any]:
    digested: frozenset[str] = getattr(model, "__audit_digest__", frozenset())
    values: dict[str, Any] = {}
    for attr in inspect(model).column_attrs:
        if attr.key in digested:
            known = digests.get(attr.key) if digests else None
            values[attr.key] = known or digest(value_of(attr.key))
        else:
            values[attr.key] = _plain(value_of(attr.key))
    return values


def _json_default(value: Any) -> Any:
    plain = _plain(value)
    if plain is value:
        raise TypeError(f"{type(value).__name__} is not JSON data")
    return plain


def _document(value: Any) -> str:
    """``_canonical(_plain(value))``, written by the C encoder in one pass.

    Digested columns hold the largest documents (an SOP instance's state is rewritten at every
    step), so this is the audit trail's hot path. A JSON column's documents have string keys;
    keys of mixed types, which the encoder cannot sort, take the slow path.
    """
    try:
        return json.dumps(
            value,
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
            default=_json_default,
        )
    except TypeError:
        return _canonical(_plain(value))


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _event_hash(prev_hash: str, event: AuditEvent | Mapping[str, Any]) -> str:
    """The hash that chains an event (a stored row, or the values about to be written)."""
    fields = event if isinstance(event, Mapping) else vars(event)
    body = _canonical(
        {
            "seq": fields["seq"],
            "at": fields["at"].isoformat(),
            "actor": fields["actor"],
            "action": fields["action"],
            "entity_type": fields["entity_type"],
            "entity_id": fields["entity_id"],
            "before": fields["before"],
            "after": fields["after"],
            "note": fields["note"],
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _entity_id(row: Base) -> str:
    identity = inspect(row).identity
    if identity is None:
        raise ValueError("flush the row before auditing it, so it has an id")
    return ":".join(str(part) for part in identity)


# Every audited write runs these: compiled once, they run on the driver's cursor.
_ADVANCE_HEAD = Prepared(
    text("UPDATE audit_head SET seq = seq + :count WHERE id = 1 RETURNING seq, hash")
)
_SET_HEAD_HASH = Prepared(text("UPDATE audit_head SET hash = :hash WHERE id = 1"))
_FIRST_HEAD = insert(AuditHead)
_INSERT_EVENT = Prepared(insert(AuditEvent))


@dataclass(frozen=True)
class Written:
    """A row written with a Core statement rather than through the session: its model and
    its values as written, primary key included."""

    model: type[Base]
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Change:
    """One audited write: what was done to ``row``, and the row as it was before.

    Attributes:
        action: the verb, such as ``create``, ``update``, ``delete``, ``import``.
        row: the row (an ORM object), or what a Core statement wrote (``Written``).
        before: ``snapshot(row)`` taken before the change, or None for a new row.
        deleted: the row is being deleted; the event's ``after`` is then empty.
        note: free text, such as the reason given for a manual action.
        digests: the row's digested columns' digests, where the caller knows them already.
    """

    action: str
    row: Base | Written
    before: dict[str, Any] | None
    deleted: bool = False
    note: str = ""
    digests: Mapping[str, str] | None = None


def _unflushed(change: Change) -> bool:
    """The change's row has something the database does not hold yet (or no id)."""
    if isinstance(change.row, Written):
        return False
    state = inspect(change.row)
    return change.deleted or state.key is None or state.modified


def _event_of(change: Change) -> tuple[str, str, dict[str, Any] | None]:
    """The event's entity type, entity id and ``after`` for ``change``."""
    row = change.row
    if isinstance(row, Written):
        mapper = inspect(row.model)
        key = ":".join(
            str(row.values[mapper.get_property_by_column(c).key]) for c in mapper.primary_key
        )
        after = None if change.deleted else snapshot_of(row.model, row.values)
        return row.model.__tablename__, key, after
    return (
        type(row).__tablename__,
        _entity_id(row),
        None if change.deleted else snapshot(row, change.digests),
    )


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    row: Base,
    before: dict[str, Any] | None,
    deleted: bool = False,
    note: str = "",
) -> None:
    """Add an event for ``row`` to the chain when the caller's transaction commits.

    Args:
        at: when it happened (from the service's clock).
        actor: who did it, as ``user:NAME``, ``token:NAME``, ``device:SERIAL`` or ``system``.
        action, row, before, deleted, note: as in ``Change``; the row is flushed here so it
            has its id.
    """
    record_all(session, at=at, actor=actor, changes=[Change(action, row, before, deleted, note)])


def record_all(
    session: Session, *, at: datetime, actor: str, changes: Sequence[Change]
) -> list[dict[str, Any] | None]:
    """Add an event per change, in order, to the transaction's events.

    The rows are flushed once if one of them holds unwritten changes (so each has its id and
    the trail what the database holds) and their snapshots are taken now; the
    events join the chain when the transaction commits (``_join_chain``), all of them with
    one claim on the chain's head. A request that audits many writes pays for one round of
    statements, and on PostgreSQL the head's row lock, which serialises writers, is held only
    from that claim to the commit. Events of a savepoint that rolls back are dropped with it.

    Returns:
        Each event's ``after``: the row's snapshot as the trail will hold it.
    """
    if not changes:
        return []
    if any(_unflushed(change) for change in changes):
        session.flush()
    owner = session.get_nested_transaction() or session.get_transaction()
    pending: list[_Pending] = session.info.setdefault(_PENDING, [])
    for change in changes:
        entity_type, entity_id, after = _event_of(change)
        event: dict[str, Any] = {
            "at": at,
            "actor": actor,
            "action": change.action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "before": change.before,
            "after": after,
            "note": change.note,
        }
        pending.append(_Pending(event, owner))
    return [item.event["after"] for item in pending[len(pending) - len(changes) :]]


@dataclass(frozen=True)
class _Pending:
    """An event waiting for its transaction to commit, and the transaction it belongs to."""

    event: dict[str, Any]
    owner: SessionTransaction | None


_PENDING = "fleetup_audit_pending"


@listens_for(Session, "before_commit")
def _join_chain(session: Session) -> None:
    """Give the transaction's events their places in the chain, just before it commits.

    A savepoint's release fires this too; its events wait for the outermost transaction,
    which commits them all with one claim on the head.
    """
    if session.in_nested_transaction():
        return
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return
    connection = session.connection()
    count = len(pending)
    head = next(iter(_ADVANCE_HEAD.rows(connection, {"count": count})), None)
    if head is None:
        connection.execute(_FIRST_HEAD, {"id": 1, "seq": count, "hash": GENESIS})
        last, prev_hash = count, GENESIS
    else:
        last, prev_hash = int(head[0]), str(head[1])
    events: list[dict[str, Any]] = []
    for seq, item in enumerate(pending, last - count + 1):
        chained = {**item.event, "seq": seq, "prev_hash": prev_hash}
        chained["hash"] = prev_hash = _event_hash(prev_hash, chained)
        events.append(chained)
    _INSERT_EVENT.run_many(connection, events)
    _SET_HEAD_HASH.run(connection, {"hash": prev_hash})


@listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    """Forget the events of a transaction (or savepoint) that rolled back."""
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if pending:
        pending[:] = [item for item in pending if not _inside(item.owner, previous_transaction)]


def _inside(owner: SessionTransaction | None, transaction: SessionTransaction) -> bool:
    while owner is not None:
        if owner is transaction:
            return True
        owner = owner.parent
    return False


@dataclass(frozen=True)
class AuditFinding:
    """One thing the trail and the database disagree on."""

    where: str
    problem: str


def verify(session: Session) -> list[AuditFinding]:
    """Check the chain and every audited table against it; an empty list means all is well."""
    findings: list[AuditFinding] = []
    expected_prev = GENESIS
    expected_seq = 1
    last_state: dict[tuple[str, str], dict[str, Any] | None] = {}
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        where = f"audit event {event.seq} ({event.entity_type} {event.entity_id})"
        if event.seq != expected_seq:
            findings.append(
                AuditFinding(where, f"events {expected_seq}..{event.seq - 1} are missing")
            )
        if event.prev_hash != expected_prev:
            findings.append(AuditFinding(where, "does not follow the event before it"))
        if _event_hash(event.prev_hash, event) != event.hash:
            findings.append(AuditFinding(where, "was changed after it was written"))
        expected_prev = event.hash
        expected_seq = event.seq + 1
        last_state[(event.entity_type, event.entity_id)] = event.after
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != expected_prev):
        findings.append(
            AuditFinding("audit trail tail", f"events after {expected_seq - 1} are missing")
        )
    for table, model in sorted(audited_models().items()):
        seen: set[str] = set()
        for row in session.scalars(select(model)):
            key = (table, _entity_id(row))
            seen.add(key[1])
            where = f"{table} {key[1]}"
            if key not in last_state:
                findings.append(AuditFinding(where, "is not in the audit trail"))
            elif last_state[key] is None:
                findings.append(AuditFinding(where, "was deleted in the trail but still exists"))
            elif _canonical(last_state[key]) != _canonical(snapshot(row)):
                changed = sorted(
                    name
                    for name, value in snapshot(row).items()
                    if _canonical((last_state[key] or {}).get(name)) != _canonical(value)
                )
                findings.append(
                    AuditFinding(where, f"was changed outside fleetup: {', '.join(changed)}")
                )
        for (entity_type, entity_id), state in last_state.items():
            if entity_type == table and state is not None and entity_id not in seen:
                findings.append(AuditFinding(f"{table} {entity_id}", "was deleted outside fleetup"))
    return findings


def get_all(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """Events newest first, optionally for one kind of row or one row, and how many match."""
    query = select(AuditEvent)
    if entity_type:
        query = query.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEvent.entity_id == entity_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = session.scalars(
        query.order_by(AuditEvent.seq.desc()).limit(limit).offset(offset)
    ).all()
    return list(events), total


def position(session: Session) -> int:
    """The number of the trail's last event (0 while it is empty).

    Numbers are handed out under the head's lock as each transaction commits, so every event
    up to the number read is committed, and a change committed later gets a higher number:
    a reader that remembers the position finds every later change after it.
    """
    return int(session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0)


def changed_ids(
    model: type[Base],
    since: int | ColumnElement[int],
    until: int | ColumnElement[int] | None = None,
) -> Select[int]:
    """The ids of the rows of ``model`` (a single integer key) with an event after position
    ``since`` (up to ``until``), as a subquery read by the index on the events' table and
    number: what changed since a reader last looked, whatever the size of the table."""
    query = select(cast(AuditEvent.entity_id, Integer)).where(
        AuditEvent.entity_type == model.__tablename__, AuditEvent.seq > since
    )
    return query if until is None else query.where(AuditEvent.seq <= until)


def count(session: Session) -> int:
    return session.scalar(select(func.count(AuditEvent.seq))) or 0
