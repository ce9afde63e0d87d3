"""The journal survives crashes mid-write, stops state loops, and keeps event ids."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleetup.agent.errors import JournalError, StateLoopError
from fleetup.agent.journal import Journal, State

ACTION = {"id": "act-1", "kind": "upgrade"}


def test_journal_saves_state_before_the_step_and_reopens_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal = Journal.open(path)
    journal.begin(ACTION)
    journal.enter(State.BACKUP)
    journal.note(backup_archive="a.tar.zst")

    reopened = Journal.open(path)
    assert reopened.state is State.BACKUP
    assert reopened.active
    assert reopened.action_id == "act-1"
    assert reopened.facts["backup_archive"] == "a.tar.zst"


def test_crash_during_write_leaves_the_previous_journal_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.json"
    journal = Journal.open(path)
    journal.begin(ACTION)
    journal.enter(State.BACKUP)
    before = path.read_bytes()

    def power_cut(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(JournalError):
        journal.enter(State.BACKUP_UPLOADED)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert Journal.open(path).state is State.BACKUP
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]


def test_entering_a_state_more_than_the_cap_raises_state_loop(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "journal.json", cap=3)
    journal.begin(ACTION)
    for _ in range(3):
        journal.enter(State.DOWNLOAD)
    with pytest.raises(StateLoopError):
        journal.enter(State.DOWNLOAD)
    assert Journal.open(tmp_path / "journal.json", cap=3).entries(State.DOWNLOAD) == 3
    journal.enter(State.FAILED)
    assert not journal.active
    assert journal.is_finished("act-1")


def test_event_id_is_kept_so_a_resent_report_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal = Journal.open(path)
    journal.begin(ACTION)
    first = journal.event_id("backup:started:1")
    assert Journal.open(path).event_id("backup:started:1") == first
    assert journal.event_id("backup:started:2") != first


def test_outbox_keeps_reports_until_sent_and_across_new_actions(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    journal = Journal.open(path)
    journal.begin(ACTION)
    event = {"event_id": "e1", "step": "backup", "status": "failed", "at": "t", "evidence": {}}
    journal.queue_event("act-1", event)
    journal.queue_event("act-1", event)
    journal.enter(State.FAILED)
    journal.begin({"id": "act-2", "kind": "upgrade"})
    assert [item["event"]["event_id"] for item in Journal.open(path).outbox()] == ["e1"]
    journal.event_sent("e1")
    assert Journal.open(path).outbox() == []


def test_begin_refuses_while_another_action_is_active(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "journal.json")
    journal.begin(ACTION)
    journal.enter(State.BACKUP)
    with pytest.raises(JournalError):
        journal.begin({"id": "act-2"})


def test_a_garbled_journal_is_a_journal_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text("{not json")
    with pytest.raises(JournalError):
        Journal.open(path)
    path.write_text(json.dumps({"schema": 1, "state": "dancing"}))
    with pytest.raises(JournalError):
        Journal.open(path)
