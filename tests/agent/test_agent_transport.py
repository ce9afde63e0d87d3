"""The transport falls over to the 4G link, retries transient errors, keeps report ids."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from fleetup.agent.errors import NotEnrolled, ServerRejected, ServerUnreachable
from fleetup.agent.journal import Journal, State
from fleetup.agent.network import check_links
from fleetup.agent.transport import FALLBACK, PRIMARY, Transport


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self):  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        return datetime(2026, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_primary_down_uses_fallback_and_reports_the_link() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.host == "primary.test":
            raise httpx.ConnectError("no route", request=request)
        return httpx.Response(200, json={"ok": True})

    transport = Transport(
        primary_url="http://primary.test",
        fallback_url="http://lte.test",
        http=httpx.MockTransport(handler),
        clock=_Clock(),
    )
    assert transport.post_json("/device/v1/heartbeat", {}) == {"ok": True}
    assert transport.link == FALLBACK
    assert transport.get_json("/x") == {"ok": True}
    assert hosts == ["primary.test", "lte.test", "lte.test"]  # no re-probe while recent


def test_transient_errors_are_retried_with_backoff_then_give_up() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503 if len(calls) < 3 else 200, json={"n": len(calls)})

    clock = _Clock()
    transport = Transport(
        primary_url="http://p.test",
        http=httpx.MockTransport(handler),
        retries=4,
        backoff_s=0.5,
        clock=clock,
    )
    assert transport.get_json("/x") == {"n": 3}
    assert clock.slept == [0.5, 1.0]
    assert transport.link == PRIMARY

    down = Transport(
        primary_url="http://p.test",
        retries=3,
        backoff_s=0,
        clock=_Clock(),
        http=httpx.MockTransport(lambda r: httpx.Response(502)),
    )
    with pytest.raises(ServerUnreachable):
        down.get_json("/x")


def test_client_errors_are_not_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("Authorization", ""))
        return httpx.Response(401 if request.url.path == "/a" else 422, text="bad")

    transport = Transport(
        primary_url="http://p.test",
        credential="c1",
        http=httpx.MockTransport(handler),
        clock=_Clock(),
    )
    with pytest.raises(NotEnrolled):
        transport.get_json("/a")
    with pytest.raises(ServerRejected) as caught:
        transport.get_json("/b")
    assert caught.value.status == 422
    assert calls == ["Bearer c1", "Bearer c1"]


def test_reports_wait_in_the_outbox_and_are_resent_with_the_same_event_id(
    tmp_path: Path,
) -> None:
    from fleetup.agent.runner import UpgradeRunner

    seen: list[str] = []
    online = {"up": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if not online["up"]:
            raise httpx.ConnectError("down", request=request)
        event_id = json.loads(request.content)["event_id"]
        duplicate = event_id in seen
        seen.append(event_id)
        return httpx.Response(200, json={"accepted": not duplicate, "duplicate": duplicate})

    transport = Transport(
        primary_url="http://p.test", http=httpx.MockTransport(handler), retries=1, clock=_Clock()
    )
    journal = Journal.open(tmp_path / "journal.json")
    journal.begin({"id": "act-9"})
    journal.enter(State.BACKUP)
    runner = UpgradeRunner.__new__(UpgradeRunner)
    runner.transport, runner.journal, runner.clock = transport, journal, _Clock()
    runner._report(State.BACKUP, "started", {})
    runner._report(State.BACKUP, "started", {})  # the same report again: same id, queued once
    assert len(Journal.open(tmp_path / "journal.json").outbox()) == 1

    online["up"] = True
    assert runner.flush_reports() == 0
    first_id = seen[0]
    runner._report(State.BACKUP, "started", {})
    assert seen == [first_id, first_id]  # the server recognises the retry as a duplicate


def test_network_check_prefers_primary_then_falls_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.host == "lte.cloud" else 503)

    result = check_links(
        {"primary_url": "http://main.cloud", "fallback_url": "http://lte.cloud"},
        http=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )
    assert (result.link, result.url) == ("fallback", "http://lte.cloud")
    assert result.tried == ["primary: HTTP 503", "fallback: HTTP 200"]


def test_a_report_refused_with_403_is_dropped_and_the_agent_stays_enrolled(
    tmp_path: Path,
) -> None:
    """403 is a valid credential asking about another device's action (say, a journal
    restored from the IPC a spare replaced): that report is dropped, the others go on."""
    from fleetup.agent.runner import UpgradeRunner

    sent: list[str] = []
    online = {"up": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if not online["up"]:
            raise httpx.ConnectError("down", request=request)
        sent.append(request.url.path)
        if "/act-8/" in request.url.path:
            return httpx.Response(403, json={"detail": "action act-8 is not this device's"})
        return httpx.Response(200, json={"accepted": True, "duplicate": False})

    transport = Transport(
        primary_url="http://p.test", http=httpx.MockTransport(handler), retries=1, clock=_Clock()
    )
    journal = Journal.open(tmp_path / "journal.json")
    runner = UpgradeRunner.__new__(UpgradeRunner)
    runner.transport, runner.journal, runner.clock = transport, journal, _Clock()
    journal.begin({"id": "act-8"})
    runner._report(State.BACKUP, "started", {})
    journal.begin({"id": "act-9"})
    runner._report(State.BACKUP, "started", {})
    assert [item["action_id"] for item in journal.outbox()] == ["act-8", "act-9"]

    online["up"] = True
    with pytest.raises(ServerRejected) as refused:
        transport.post_json("/device/v1/actions/act-8/events", {})
    assert refused.type is ServerRejected and refused.value.status == 403
    assert runner.flush_reports() == 0
    assert sent[1:] == ["/device/v1/actions/act-8/events", "/device/v1/actions/act-9/events"]
