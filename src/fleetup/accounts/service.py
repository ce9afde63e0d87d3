"""Users, sign-in and API tokens."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from fleetup.accounts.models import ApiToken, User
from fleetup.accounts.schemas import AccountIn, UserIn
from fleetup.core.audit import snapshot
from fleetup.core.context import Ctx
from fleetup.core.db import Prepared
from fleetup.core.errors import Conflict, NotFound
from fleetup.core.security import (
    Principal,
    Role,
    check_password,
    hash_password,
    new_token,
    token_digest,
)


@cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so a wrong name costs as long as a wrong
    password and sign-in does not reveal which users exist. Made at the first sign-in, not at
    import, so a command that never signs anyone in does not pay for an argon2 hash."""
    return hash_password("not a real password, never matches")


def get_user(session: Session, *, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def get_user_by_id(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_all_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()


# Stored instead of a hash for an account that signs in with API tokens only: no password
# hashes to it, so no password opens it.
NO_PASSWORD = "!"


def create_user(ctx: Ctx, data: UserIn) -> User:
    return _add_user(ctx, data, hash_password(data.password))


def create_token_user(ctx: Ctx, data: AccountIn) -> User:
    """An account that works with API tokens only (a simulated technician, a script): it has
    no password, so none opens it, and making it costs no password hash."""
    return _add_user(ctx, data, NO_PASSWORD)


def _add_user(ctx: Ctx, data: AccountIn, password_hash: str) -> User:
    if ctx.session.scalar(select(User.id).where(User.username == data.username)) is not None:
        raise Conflict(f"user {data.username!r} exists already")
    user = User(
        username=data.username,
        display_name=data.display_name or data.username,
        email=data.email,
        phone=data.phone,
        role=data.role,
        password_hash=password_hash,
        language=data.language,
        created_at=ctx.now(),
    )
    ctx.session.add(user)
    ctx.audit("create", user, None)
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password(_dummy_hash(), password)
        return None
    if user.password_hash == NO_PASSWORD:
        check_password(_dummy_hash(), password)  # as long as for any other refusal
        return None
    if not user.active or not check_password(user.password_hash, password):
        return None
    return user


def principal_for(user: User, *, via: str) -> Principal:
    return Principal(user_id=user.id, username=user.username, role=user.role, via=via)


def create_token(ctx: Ctx, *, user: User, name: str) -> tuple[ApiToken, str]:
    """Make an API token for ``user``; the plain token is returned once and never stored."""
    plain = new_token()
    token = ApiToken(user_id=user.id, name=name, digest=token_digest(plain), created_at=ctx.now())
    ctx.session.add(token)
    ctx.audit("create", token, None)
    return token, plain


def revoke_token(ctx: Ctx, *, token_id: int, user: User) -> None:
    token = ctx.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"no token {token_id} for user {user.username!r}")
    if token.revoked_at is None:
        before = snapshot(token)
        token.revoked_at = ctx.now()
        ctx.audit("revoke", token, before)


# Every API call asks it: compiled once, it runs on the driver's cursor.
_TOKEN_CALLER = Prepared(
    select(User.id, User.username, User.role)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.digest == bindparam("digest"),
        ApiToken.revoked_at.is_(None),
        User.active.is_(True),
    )
)


def principal_from_token(connection: Connection, plain: str) -> Principal | None:
    """The caller an API token names, or None when it is unknown, revoked or its user inactive.

    Every API call asks this, so it reads three columns rather than two whole rows, straight
    on a connection (no session, no ORM entities). The role is stored by its name.
    """
    rows = _TOKEN_CALLER.rows(connection, {"digest": token_digest(plain)})
    if not rows:
        return None
    user_id, username, role = rows[0]
    return Principal(user_id=user_id, username=username, role=Role[role], via="token")
