"""What routes are handed: the server's parts, a database session, the caller, a write context.

FastAPI runs a plain ``def`` dependency in its thread pool and an ``async def`` one on the
event loop. Those that read the database (the session, the caller) are plain, so they never
block the loop; those that only combine what others resolved (``current_principal``,
``write_context``, the access rules) are ``async``, which spares each request their hops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException

from fleetup.accounts import service as accounts
from fleetup.core.clock import Clock
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.security import LinkInvalid, Principal, Signer
from fleetup.notify.inbox import SimulatedInbox
from fleetup.upgrades.library import SopLibrary

SESSION_COOKIE = "fleetup_session"


@dataclass
class Server:
    """The long-lived parts of a running server, kept on ``app.state.server``."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    signer: Signer
    library: SopLibrary
    # On simulated time, messages and wake-ups go here instead of the outside world.
    inbox: SimulatedInbox | None = None


def server(request: Request) -> Server:
    found: Server = request.app.state.server
    return found


def db(request: Request) -> Iterator[Session]:
    with server(request).sessions() as session:
        yield session


def _from_cookie(request: Request, session: Session, parts: Server) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        value = parts.signer.unsign("session", cookie, max_age_s=parts.settings.session_max_age_s)
    except LinkInvalid:
        return None
    user = accounts.get_user_by_id(session, user_id=int(value["uid"]))
    if user is None or not user.active:
        return None
    return accounts.principal_for(user, via="session")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _cross_site(request: Request) -> bool:
    """An unsafe request whose ``Origin`` is another host's: a cookie must not carry it.

    Hosts are compared, not schemes, so a proxy that ends TLS does not look like another site.
    """
    origin = request.headers.get("origin")
    if request.method in SAFE_METHODS or not origin:
        return False
    return urlsplit(origin).netloc != request.headers.get("host", "")


def optional_principal(request: Request, session: Session = Depends(db)) -> Principal | None:
    """The caller from a bearer token or the session cookie, or None."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    principal: Principal | None
    if header.lower().startswith("bearer "):
        # On a connection of its own: the route's session has not begun a transaction yet.
        with server(request).engine.connect() as connection:
            principal = accounts.principal_from_token(connection, header[7:].strip())
        if principal is None:
            raise HTTPException(
                401, "the API token is unknown or revoked", {"WWW-Authenticate": "Bearer"}
            )
    else:
        principal = _from_cookie(request, session, server(request))
        session.rollback()  # end the read transaction so the route starts its own
        if principal is not None and _cross_site(request):
            raise HTTPException(403, "a signed-in browser may change things only from this site")
    request.state.principal = principal
    return principal


async def current_principal(
    principal: Principal | None = Depends(optional_principal),
) -> Principal:
    if principal is None:
        raise HTTPException(401, "sign in or send an API token", {"WWW-Authenticate": "Bearer"})
    return principal


async def write_context(
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(db),
) -> Ctx:
    """For routes that write: the caller's session, name and the server's clock.

    The route commits when its work is done; an exception leaves the transaction to roll back.
    """
    return Ctx(session=session, actor=principal.actor, clock=server(request).clock)
