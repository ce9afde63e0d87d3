"""The upgrade journal: an explicit state machine saved to disk before every step.

One JSON file (``work_dir/journal.json``) holds the action being run, the state it is in,
how often each state was entered, the facts each finished step left for the next (archive
path and hash, backup id, package path, versions), the event ids of reports and the outbox of
reports not yet accepted by the server. It is rewritten atomically (temporary file, fsync,
``os.replace``, fsync of the folder), so after a power cut it holds either the previous or the
next state, never half of one.

States, in the order a good upgrade runs through them::

    idle → backup → backup_uploaded → download → downloaded → install → installed
         → network → register → function_test → commit → done
    (any state) → rollback → failed          (something was changed, then a step failed)
    (any state before install) → failed      (nothing was changed)

Remote actions (``agent/remote_actions.py``) run one state each, then ``done`` or ``failed``::

    idle → diagnose | switch_network | snapshot | restore → done

A state is entered (and saved) *before* its step runs, and each step first checks whether its
work is already done, so re-running a state after a crash is safe. Entering the same state
more than ``cap`` times raises :class:`StateLoopError`: a step that keeps crashing the agent
ends in ``failed`` and is reported instead of looping forever.
"""

from __future__ import annotations

import json
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

from fleetup.agent._internal.files import atomic_write_json
from fleetup.agent.errors import JournalError, StateLoopError

SCHEMA = 1
_FINISHED_KEEP = 50


class State(StrEnum):
    """The upgrade's states; see the module docstring for the order."""

    IDLE = "idle"
    BACKUP = "backup"
    BACKUP_UPLOADED = "backup_uploaded"
    DOWNLOAD = "download"
    DOWNLOADED = "downloaded"
    INSTALL = "install"
    INSTALLED = "installed"
    NETWORK = "network"
    REGISTER = "register"
    FUNCTION_TEST = "function_test"
    COMMIT = "commit"
    DONE = "done"
    ROLLBACK = "rollback"
    FAILED = "failed"
    DIAGNOSE = "diagnose"
    SWITCH_NETWORK = "switch_network"
    SNAPSHOT = "snapshot"
    RESTORE = "restore"


FINAL_STATES = frozenset({State.IDLE, State.DONE, State.FAILED})


class Journal:
    """The journal file and the state machine it records.

    Use :meth:`open`; every mutating method saves before it returns.
    """

    def __init__(self, path: Path, cap: int, record: dict[str, Any]) -> None:
        self.path = path
        self.cap = cap
        self._record = record

    @classmethod
    def open(cls, path: Path, *, cap: int = 5) -> Journal:
        """Read the journal, or start an idle one when there is none.

        Raises:
            JournalError: the file exists but cannot be read or is not a journal.
        """
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            record = _fresh()
        except (OSError, ValueError) as e:
            raise JournalError(f"journal {path} cannot be read: {e}") from e
        if not isinstance(record, dict) or record.get("schema") != SCHEMA:
            raise JournalError(f"journal {path} is not a schema-{SCHEMA} journal")
        try:
            State(record["state"])
        except (KeyError, ValueError) as e:
            raise JournalError(f"journal {path} has an unknown state: {e}") from e
        return cls(path, cap, record)

    @property
    def state(self) -> State:
        """The state last entered."""
        return State(self._record["state"])

    @property
    def action(self) -> dict[str, Any] | None:
        """The action being (or last) run, as the server sent it."""
        action = self._record.get("action")
        return action if isinstance(action, dict) else None

    @property
    def action_id(self) -> str | None:
        """The id of :attr:`action`."""
        return None if self.action is None else str(self.action["id"])

    @property
    def active(self) -> bool:
        """Whether an action is in progress (not idle, done or failed)."""
        return self.state not in FINAL_STATES

    @property
    def facts(self) -> dict[str, Any]:
        """What finished steps left for later ones (read-only view; use :meth:`note`)."""
        return dict(self._record["facts"])

    @property
    def last_step(self) -> dict[str, Any] | None:
        """The last reported step: ``{step, status, at, duration_s, error}``."""
        value = self._record.get("last_step")
        return value if isinstance(value, dict) else None

    def entries(self, state: State) -> int:
        """How many times ``state`` was entered for the current action."""
        return int(self._record["entries"].get(state.value, 0))

    def is_finished(self, action_id: str) -> bool:
        """Whether ``action_id`` already ran to ``done`` or ``failed``."""
        return action_id in self._record["finished"]

    def begin(self, action: dict[str, Any]) -> None:
        """Take on a new action; the journal must not be active.

        Raises:
            JournalError: another action is still in progress.
        """
        if self.active:
            raise JournalError(f"action {self.action_id} is still in state {self.state}")
        finished = self._record["finished"]
        outbox = self._record["outbox"]
        self._record = _fresh()
        self._record["finished"] = finished
        self._record["outbox"] = outbox
        self._record["action"] = action
        self.save()

    def enter(self, state: State) -> None:
        """Record that ``state`` starts now, before its step runs.

        Raises:
            StateLoopError: ``state`` was already entered ``cap`` times for this action.
        """
        count = self.entries(state) + 1
        if count > self.cap and state is not State.FAILED:
            raise StateLoopError(f"state {state} entered {count} times (cap {self.cap})")
        self._record["entries"][state.value] = count
        self._record["state"] = state.value
        if state in (State.DONE, State.FAILED):
            finished = self._record["finished"]
            if self.action_id and self.action_id not in finished:
                finished.append(self.action_id)
                del finished[:-_FINISHED_KEEP]
        self.save()

    def note(self, **facts: Any) -> None:
        """Store facts for later steps (JSON values)."""
        self._record["facts"].update(facts)
        self.save()

    def event_id(self, key: str) -> str:
        """The event id for ``key``, made once and kept, so a resent report reuses it."""
        ids = self._record["event_ids"]
        if key not in ids:
            ids[key] = str(uuid.uuid4())
            self.save()
        return str(ids[key])

    def queue_event(self, action_id: str, event: dict[str, Any]) -> None:
        """Put a report in the outbox (kept until the server accepts it)."""
        if any(item["event"]["event_id"] == event["event_id"] for item in self._record["outbox"]):
            return
        self._record["outbox"].append({"action_id": action_id, "event": event})
        if event["status"] != "started":
            self._record["last_step"] = {
                "step": event["step"],
                "status": event["status"],
                "at": event["at"],
                "duration_s": event["evidence"].get("duration_s"),
                "error": event["evidence"].get("error"),
            }
        self.save()

    def outbox(self) -> list[dict[str, Any]]:
        """Reports not yet accepted, oldest first: ``[{action_id, event}]``."""
        return [dict(item) for item in self._record["outbox"]]

    def event_sent(self, event_id: str) -> None:
        """Drop an accepted report from the outbox."""
        self._record["outbox"] = [
            item for item in self._record["outbox"] if item["event"]["event_id"] != event_id
        ]
        self.save()

    def save(self) -> None:
        """Write the journal atomically.

        Raises:
            JournalError: the file could not be written.
        """
        try:
            atomic_write_json(self.path, self._record)
        except OSError as e:
            raise JournalError(f"journal {self.path} cannot be written: {e}") from e

    def snapshot(self) -> dict[str, Any]:
        """A copy of the whole record, for ``status`` and tests."""
        return json.loads(json.dumps(self._record))  # type: ignore[no-any-return]


def _fresh() -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "state": State.IDLE.value,
        "action": None,
        "entries": {},
        "facts": {},
        "event_ids": {},
        "outbox": [],
        "finished": [],
        "last_step": None,
    }
