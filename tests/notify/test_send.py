"""``send``: the outbox rows it writes, idempotency by key, and what it refuses."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from notify_helpers import RecordingChannel
from sqlalchemy import func, select

from fleetup.api.deps import Server
from fleetup.core import audit
from fleetup.core.context import Ctx
from fleetup.core.errors import InvalidInput
from fleetup.core.security import Role
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import ContactIn, CustomerIn
from fleetup.notify import delivery
from fleetup.notify import service as notify
from fleetup.notify.models import Notification

HOOK = "json://127.0.0.1:9/hook"
PARAMS = {"username": "amy", "sent_at": "now"}


def _send(parts: Server, key: str, to: list[str], template: str = "test_message") -> int:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        queued = notify.send(ctx, template=template, key=key, to=to, params=PARAMS)
        session.commit()
    return queued


def _rows(parts: Server) -> list[tuple[str, str, str]]:
    with parts.sessions() as session:
        return [
            (row.recipient, row.status, row.channel_label)
            for row in session.scalars(select(Notification).order_by(Notification.id))
        ]


def test_sending_twice_with_the_same_key_delivers_once(
    parts: Server, person: Callable[..., str]
) -> None:
    person("amy", url=HOOK)
    channel = RecordingChannel()
    assert _send(parts, "incident-7:opened", ["user:amy"]) == 1
    assert _send(parts, "incident-7:opened", ["user:amy", "user:amy"]) == 0
    assert delivery.deliver_due(parts, channel) == 1
    assert _send(parts, "incident-7:opened", ["user:amy"]) == 0
    assert delivery.deliver_due(parts, channel) == 0
    assert [(url, title) for url, title, _ in channel.sent] == [(HOOK, "[fleetup] Test message")]


def test_a_send_that_finds_one_recipient_queued_already_still_queues_the_others(
    parts: Server, person: Callable[..., str]
) -> None:
    person("amy", url=HOOK)
    person("bob", url="json://127.0.0.1:9/bob")
    assert _send(parts, "incident-8:opened", ["user:amy"]) == 1
    assert _send(parts, "incident-8:opened", ["user:amy", "user:bob"]) == 1
    assert sorted(recipient for recipient, _, _ in _rows(parts)) == ["user:amy", "user:bob"]
    with parts.sessions() as session:
        assert audit.verify(session) == []


def test_two_sends_of_one_event_at_the_same_time_queue_it_once(
    parts: Server, person: Callable[..., str]
) -> None:
    person("amy", url=HOOK)
    queued: list[int] = []
    with parts.sessions() as first:
        ctx = Ctx(session=first, actor="test", clock=parts.clock)
        assert notify.send(ctx, template="test_message", key="k-9", to=["user:amy"], params=PARAMS)
        # The second send waits for the first's transaction (its write lock, or on
        # PostgreSQL the row it inserted), then finds the row queued.
        second = threading.Thread(target=lambda: queued.append(_send(parts, "k-9", ["user:amy"])))
        second.start()
        second.join(timeout=0.5)
        assert second.is_alive()
        first.commit()
    second.join(timeout=20)
    assert queued == [0]
    assert [(recipient, status) for recipient, status, _ in _rows(parts)] == [
        ("user:amy", "queued")
    ]
    with parts.sessions() as session:
        assert audit.verify(session) == []


def test_a_missing_template_is_refused_by_name_and_writes_nothing(
    parts: Server, person: Callable[..., str]
) -> None:
    person("amy", url=HOOK)
    with parts.sessions() as session:
        events_before = audit.count(session)
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        with pytest.raises(InvalidInput) as refused:
            notify.send(ctx, template="incident_nope", key="k", to=["user:amy"], params={})
        session.commit()
        assert "incident_nope" in refused.value.message
        assert refused.value.problems[0].field == "template"
        assert session.scalar(select(func.count(Notification.id))) == 0
        assert audit.count(session) == events_before


def test_a_parameter_the_template_needs_is_required(parts: Server) -> None:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        with pytest.raises(InvalidInput, match="sent_at"):
            notify.send(
                ctx, template="test_message", key="k", to=["role:admin"], params={"username": "x"}
            )


def test_unknown_recipients_are_refused(parts: Server) -> None:
    for bad in ("user:nobody", "role:boss", "contact:999", "url:nonsense", "team:x"):
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="test", clock=parts.clock)
            with pytest.raises(InvalidInput) as refused:
                notify.send(ctx, template="test_message", key="k", to=[bad], params=PARAMS)
            assert refused.value.problems[0].field == "to"


def test_a_recipient_without_a_channel_is_logged_as_no_channel(
    parts: Server, person: Callable[..., str]
) -> None:
    person("amy")
    assert _send(parts, "k", ["user:amy", "role:manager"]) == 2
    assert _rows(parts) == [("user:amy", "no_channel", ""), ("role:manager", "no_channel", "")]
    assert delivery.deliver_due(parts, RecordingChannel()) == 0


def test_a_role_reaches_its_users_and_its_configured_channels(
    server_parts: Server, person: Callable[..., str], tmp_path: Path
) -> None:
    settings = server_parts.settings.model_copy(
        update={"notify_role_urls": {"on_call": ["tgram://123456789:secret-token/4242"]}}
    )
    notify.use_settings(server_parts.engine, settings)
    person("amy", Role.on_call, url=HOOK)
    person("bo", Role.on_call)
    person("cy", Role.manager, url=HOOK)
    assert _send(server_parts, "k", ["role:on_call"]) == 3
    rows = _rows(server_parts)
    assert [(r, s) for r, s, _ in rows] == [
        ("user:amy", "queued"),
        ("user:bo", "no_channel"),
        ("role:on_call", "queued"),
    ]
    assert "secret-token" not in rows[2][2]
    assert rows[2][2].startswith("tgram://…")


def test_a_customer_contact_gets_mail_only_when_a_mail_server_is_set(
    server_parts: Server,
) -> None:
    with server_parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=server_parts.clock)
        fleet.create_customer(ctx, CustomerIn(code="YJ", name="永捷精機"))
        contact = fleet.add_contact(
            ctx, customer_code="YJ", data=ContactIn(name="林先生", email="lin@example.com")
        )
        session.commit()
        contact_id = contact.id
    notify.use_settings(server_parts.engine, server_parts.settings)
    assert _send(server_parts, "k1", [f"contact:{contact_id}"]) == 1
    assert _rows(server_parts)[0][1] == "no_channel"
    settings = server_parts.settings.model_copy(
        update={"notify_mail_url": "mailtos://fleetup:pw@smtp.example.com?from=ops@example.com"}
    )
    notify.use_settings(server_parts.engine, settings)
    assert _send(server_parts, "k2", [f"contact:{contact_id}"]) == 1
    with server_parts.sessions() as session:
        row = session.scalars(select(Notification).where(Notification.key == "k2")).one()
        assert row.channel_url.endswith("&to=lin@example.com")
        assert row.channel_label.startswith("mailtos://smtp.example.com")
        assert row.language == "zh-TW"


def test_the_audit_trail_keeps_only_a_digest_of_channel_urls(
    parts: Server, person: Callable[..., str]
) -> None:
    person("amy", url="tgram://123456789:secret-token/4242")
    _send(parts, "k", ["user:amy"])
    with parts.sessions() as session:
        events, _ = audit.get_all(session, limit=100)
        kinds = {event.entity_type for event in events}
        assert {"notify_subscriptions", "notifications"} <= kinds
        assert all("secret-token" not in str(event.after) for event in events)
        subscription = next(e for e in events if e.entity_type == "notify_subscriptions")
        assert str((subscription.after or {})["url"]).startswith("sha256:")
