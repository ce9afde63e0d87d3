"""Notifications: queue messages in the caller's transaction, manage channels, read the log.

``send`` is the transactional outbox: it resolves each recipient to their channels and adds one
row per recipient and channel in the same transaction as the change that caused it, so a
notification exists exactly when its cause was committed. The worker (``notify.delivery``)
sends the rows. The event's idempotency key makes ``send`` safe to call twice: a row already
queued for the same key, recipient and channel is not queued again.

Settings (role and customer channels, the mail server, the MQTT broker) come from the settings
the server was built with when it registered them with ``use_settings``; otherwise from the
process's configuration (``FLEETUP_*`` and ``fleetup.toml``), which is what every fleetup
process reads anyway.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote

from sqlalchemy import Engine, Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleetup.accounts.models import User
from fleetup.core.audit import Change, Written, snapshot
from fleetup.core.config import LANGUAGES, Settings, load_settings
from fleetup.core.context import Ctx
from fleetup.core.db import Prepared
from fleetup.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from fleetup.core.security import Role
from fleetup.fleet.models import Contact
from fleetup.notify import channels, templates
from fleetup.notify.models import (
    NO_CHANNEL,
    QUEUED,
    STATUSES,
    DeviceWakeup,
    Notification,
    Subscription,
)

_SETTINGS: weakref.WeakKeyDictionary[Engine, Settings] = weakref.WeakKeyDictionary()
_PROCESS_SETTINGS: list[Settings] = []


def use_settings(engine: Engine, settings: Settings) -> None:
    """Make ``send`` and ``wake`` on sessions of ``engine`` read ``settings``."""
    _SETTINGS[engine] = settings


def settings_for(session: Session) -> Settings:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    found = _SETTINGS.get(engine)
    if found is not None:
        return found
    if not _PROCESS_SETTINGS:
        _PROCESS_SETTINGS.append(load_settings())
    return _PROCESS_SETTINGS[0]


@dataclass(frozen=True)
class _Target:
    recipient: str
    language: str
    url: str  # "" when the recipient has no channel


# -- send -----------------------------------------------------------------------------------


def send(ctx: Ctx, *, template: str, key: str, to: Sequence[str], params: Mapping[str, Any]) -> int:
    """Queue one notification per resolved recipient and channel in the caller's transaction.

    Args:
        template: a template name under ``notify/templates`` (``<name>.<lang>.txt``).
        key: the causing event's idempotency key; the same key never queues twice for the
            same recipient and channel.
        to: ``user:<username>``, ``role:<role>``, ``contact:<id>`` or ``url:<apprise url>``.
        params: the template's parameters.

    Returns:
        How many rows were queued now (0 when every one was queued before).

    Raises:
        InvalidInput: the template does not exist or needs a missing parameter, the key is
            empty, or a ``to`` item names nothing known. Nothing is written then.
    """
    templates.check(template)
    if not key or len(key) > 200:
        raise InvalidInput("the key must be 1 to 200 characters", [FieldProblem("key", "1-200")])
    settings = settings_for(ctx.session)
    targets: dict[tuple[str, str], _Target] = {}
    for item in to:
        for target in _resolve(ctx.session, settings, item):
            targets.setdefault((target.recipient, _channel_of(target.url)), target)
    rendered = {lang: templates.render(template, lang, params) for lang in LANGUAGES}
    values = [
        _values(ctx, template, key, recipient, channel, target, rendered[target.language])
        for (recipient, channel), target in targets.items()
    ]
    # A row whose key, recipient and channel are queued already (by an earlier send, or by
    # a concurrent one that committed first) is left as it is: the insert skips it.
    connection = ctx.session.connection()
    insert = _QUEUE[connection.dialect.name]
    added = [
        Written(Notification, {**row, "id": ids[0][0]})
        for row in values
        if (ids := insert.rows(connection, row))
    ]
    ctx.audit_all(
        [
            Change("queue", row, None, note=f"{template} to {row.values['recipient']}")
            for row in added
        ]
    )
    return len(added)


def _values(
    ctx: Ctx,
    template: str,
    key: str,
    recipient: str,
    channel: str,
    target: _Target,
    rendered: tuple[str, str],
) -> dict[str, Any]:
    subject, body = rendered
    return {
        "template": template,
        "key": key,
        "recipient": recipient,
        "language": target.language,
        "channel": channel,
        "channel_label": channels.label(target.url) if target.url else "",
        "channel_url": target.url,
        "subject": subject,
        "body": body,
        "status": QUEUED if target.url else NO_CHANNEL,
        "attempts": 0,
        "created_at": ctx.now(),
        "next_attempt_at": ctx.now(),
        "last_error": "" if target.url else "the recipient has no notification channel",
        "last_attempt_at": None,
        "delivered_at": None,
    }


# Every notification is queued with this, compiled once. ``ON CONFLICT DO NOTHING`` on the
# key, recipient and channel makes ``send`` idempotent in one statement per row: no lookup
# first, and no savepoint for a concurrent send that wins the race for a row.
_NOTIFICATIONS = cast(Table, Notification.__table__)
_QUEUED = tuple(column.key for column in _NOTIFICATIONS.columns if column.key != "id")


def _queue(insert: Callable[[Table], Any]) -> Prepared:
    return Prepared(
        insert(_NOTIFICATIONS)
        .values({name: bindparam(name) for name in _QUEUED})
        .on_conflict_do_nothing(index_elements=["key", "recipient", "channel"])
        .returning(_NOTIFICATIONS.c.id)
    )


_QUEUE = {"sqlite": _queue(sqlite.insert), "postgresql": _queue(postgresql.insert)}


def _channel_of(url: str) -> str:
    return channels.digest(url) if url else ""


def _bad_recipient(item: str, message: str) -> InvalidInput:
    shown = item if not item.startswith("url:") else "url:" + channels.label(item[4:])
    return InvalidInput(f"cannot notify '{shown}': {message}", [FieldProblem("to", message)])


def _resolve(session: Session, settings: Settings, item: str) -> list[_Target]:
    kind, _, value = item.partition(":")
    if kind == "user":
        user = session.scalar(select(User).where(User.username == value))
        if user is None:
            raise _bad_recipient(item, "no such user")
        return _user_targets(session, user) if user.active else []
    if kind == "role":
        if value not in {role.value for role in Role}:
            raise _bad_recipient(item, f"roles are {', '.join(r.value for r in Role)}")
        users = session.scalars(
            select(User).where(User.role == Role(value), User.active.is_(True)).order_by(User.id)
        ).all()
        found = [t for user in users for t in _user_targets(session, user)]
        found += [
            _Target(f"role:{value}", settings.default_language, url)
            for url in settings.notify_role_urls.get(value, [])
        ]
        return found or [_Target(f"role:{value}", settings.default_language, "")]
    if kind == "contact":
        contact = session.get(Contact, int(value)) if value.isdigit() else None
        if contact is None:
            raise _bad_recipient(item, "no such customer contact")
        return _contact_targets(settings, contact)
    if kind == "url":
        if not channels.is_usable(value):
            raise _bad_recipient(item, "Apprise does not recognise this channel URL")
        return [_Target(f"url:{channels.label(value)}", settings.default_language, value)]
    raise _bad_recipient(item, "recipients look like user:NAME, role:ROLE, contact:ID or url:URL")


def _user_targets(session: Session, user: User) -> list[_Target]:
    recipient = f"user:{user.username}"
    subscriptions = session.scalars(
        select(Subscription).where(Subscription.user_id == user.id).order_by(Subscription.id)
    ).all()
    if not subscriptions:
        language = user.language if user.language in LANGUAGES else LANGUAGES[0]
        return [_Target(recipient, language, "")]
    return [_Target(recipient, s.language, s.url) for s in subscriptions]


def _contact_targets(settings: Settings, contact: Contact) -> list[_Target]:
    recipient = f"contact:{contact.id}"
    language = settings.default_language
    urls = list(settings.notify_customer_urls.get(contact.customer.code, []))
    if contact.email and settings.notify_mail_url:
        joiner = "&" if "?" in settings.notify_mail_url else "?"
        urls.append(f"{settings.notify_mail_url}{joiner}to={quote(contact.email, safe='@')}")
    return [_Target(recipient, language, url) for url in urls] or [_Target(recipient, language, "")]


def send_test(ctx: Ctx, *, username: str) -> int:
    """A test message to every channel of ``username``; returns how many were queued."""
    now = ctx.now()
    return send(
        ctx,
        template="test_message",
        key=f"test:{username}:{now.isoformat()}",
        to=[f"user:{username}"],
        params={"username": username, "sent_at": now.strftime("%Y-%m-%d %H:%M:%S UTC")},
    )


# -- wake-ups -------------------------------------------------------------------------------


def wake(ctx: Ctx, *, device_id: int) -> None:
    """Queue an MQTT wake-up for the device; the worker publishes it after commit."""
    wake_device(ctx.session, device_id=device_id, at=ctx.now())


def wake_device(session: Session, *, device_id: int, at: datetime | None = None) -> None:
    """``wake`` for code that holds a session but no write context; no-op without a broker."""
    if not settings_for(session).mqtt_url:
        return
    pending = session.scalar(
        select(DeviceWakeup.id).where(DeviceWakeup.device_id == device_id).limit(1)
    )
    if pending is None:
        session.add(DeviceWakeup(device_id=device_id, queued_at=at))


def wake_topic(device_id: int) -> str:
    return f"fleetup/devices/dev-{device_id}/wake"


# -- subscriptions --------------------------------------------------------------------------


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named '{username}'")
    return user


def get_subscriptions(session: Session, *, username: str) -> Sequence[Subscription]:
    user = _user(session, username)
    return session.scalars(
        select(Subscription).where(Subscription.user_id == user.id).order_by(Subscription.id)
    ).all()


def add_subscription(ctx: Ctx, *, username: str, url: str, language: str) -> Subscription:
    """Give ``username`` a channel.

    Raises:
        NotFound: no such user.
        InvalidInput: Apprise does not know the URL, or the language is not zh-TW or en.
        Conflict: the user has this channel already.
    """
    user = _user(ctx.session, username)
    problems = []
    if not channels.is_usable(url):
        problems.append(FieldProblem("url", "not an Apprise URL (see docs/notifications.md)"))
    if language not in LANGUAGES:
        problems.append(FieldProblem("language", f"must be one of {', '.join(LANGUAGES)}"))
    if problems:
        raise InvalidInput("the channel cannot be added", problems)
    url_digest = channels.digest(url)
    taken = ctx.session.scalar(
        select(Subscription.id).where(
            Subscription.user_id == user.id, Subscription.url_digest == url_digest
        )
    )
    if taken is not None:
        raise Conflict(f"{username} has this channel already")
    row = Subscription(
        user_id=user.id,
        url=url,
        url_digest=url_digest,
        label=channels.label(url),
        language=language,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    ctx.audit("create", row, None)
    return row


def remove_subscription(ctx: Ctx, *, username: str, subscription_id: int) -> None:
    user = _user(ctx.session, username)
    row = ctx.session.get(Subscription, subscription_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"{username} has no channel {subscription_id}")
    before = snapshot(row)
    ctx.audit("delete", row, before, deleted=True)
    ctx.session.delete(row)


# -- the delivery log -----------------------------------------------------------------------


def get_all(
    session: Session,
    *,
    status: str | None = None,
    template: str | None = None,
    recipient: str | None = None,
    key: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Notification], int]:
    """Notifications newest first, filtered, and how many match."""
    if status and status not in STATUSES:
        raise InvalidInput(
            "unknown status", [FieldProblem("status", f"one of {', '.join(STATUSES)}")]
        )
    query = select(Notification)
    if status:
        query = query.where(Notification.status == status)
    if template:
        query = query.where(Notification.template == template)
    if recipient:
        query = query.where(Notification.recipient == recipient)
    if key:
        query = query.where(Notification.key == key)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Notification.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def counts(session: Session) -> dict[str, int]:
    """How many notifications are in each status."""
    found = {
        status: count
        for status, count in session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)
        )
    }
    return {status: int(found.get(status, 0)) for status in STATUSES}
