"""SOP instance states as committed, kept in memory, so that a step need not read and parse
the instance's whole state document again.

Every step of an upgrade reads its instance's state (several kilobytes of JSON), validates it
into the engine's models and digests it for the audit trail's ``before``, then writes the new
one. The state a step writes is, most of the time, the one the next step of the same machine
reads, so the process keeps the last few thousand it wrote.

A state is known by its instance's key (unique across databases) and its transition count:
every write of a state moves the count, and the write finds the count it read or stores
nothing, so the pair names exactly one state. A state written in a transaction is kept once
that transaction commits; one whose transaction or savepoint rolls back never is. A state
not kept (another process wrote it, or it was pushed out) is read from the database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.event import listens_for
from sqlalchemy.orm import Session, SessionTransaction

from fleetup.sop.state import InstanceState

KEPT = 4096
_PENDING = "fleetup_sop_states_pending"


@dataclass(frozen=True)
class Known:
    """A committed state as the engine takes it (without history), and its audit digest."""

    state: InstanceState
    digest: str


_known: OrderedDict[tuple[str, int], Known] = OrderedDict()
# By instance key, the transition count of the state kept for it: only the newest is kept.
_newest: dict[str, int] = {}
_lock = threading.Lock()


def recall(key: str, transitions: int) -> Known | None:
    """The state instance ``key`` held after ``transitions`` events, if this process has it."""
    with _lock:
        found = _known.get((key, transitions))
        if found is not None:
            _known.move_to_end((key, transitions))
        return found


def remember(session: Session, key: str, transitions: int, known: Known) -> None:
    """Keep ``known`` as instance ``key``'s state after ``transitions`` events once the
    session's transaction commits."""
    pending: dict[tuple[str, int], Known] = session.info.setdefault(_PENDING, {})
    pending[(key, transitions)] = known


def forget_all() -> None:
    """Drop every kept state (the database was replaced under this process)."""
    with _lock:
        _known.clear()
        _newest.clear()


@listens_for(Session, "after_commit")
def _keep_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: the outer transaction may still roll back
    pending: dict[tuple[str, int], Known] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    with _lock:
        for (key, transitions), known in pending.items():
            older = _newest.get(key)
            if older is not None and older > transitions:
                continue
            if older is not None and older != transitions:
                _known.pop((key, older), None)
            _newest[key] = transitions
            _known[(key, transitions)] = known
            _known.move_to_end((key, transitions))
        while len(_known) > KEPT:
            (key, transitions), _ = _known.popitem(last=False)
            if _newest.get(key) == transitions:
                del _newest[key]


@listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, _previous: SessionTransaction) -> None:
    # A savepoint or the transaction rolled back: what it wrote must not be kept. Dropping
    # everything pending is the simple safe answer; those states are read again if needed.
    session.info.pop(_PENDING, None)
