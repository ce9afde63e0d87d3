"""Signing in and out, API tokens, and users."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from fleetup.accounts import service
from fleetup.accounts.schemas import LoginIn, TokenIn, TokenOut, UserIn, UserOut
from fleetup.api.access import READERS, GuardedRoute, allow, public
from fleetup.api.deps import SESSION_COOKIE, Server, current_principal, db, server, write_context
from fleetup.api.schemas import RowId
from fleetup.core.context import Ctx
from fleetup.core.security import Principal

router = APIRouter(route_class=GuardedRoute, tags=["auth"])
signed_in = allow(*READERS)


def set_session_cookie(response: Response, parts: Server, user_id: int) -> None:
    """Sign ``user_id`` into the session cookie (HttpOnly, SameSite=Lax)."""
    value = parts.signer.sign("session", {"uid": user_id})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=parts.settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=parts.settings.effective_base_url.startswith("https://"),
    )


@router.post("/auth/login", response_model=UserOut, dependencies=[public()])
def login(
    body: LoginIn, request: Request, response: Response, session: Session = Depends(db)
) -> UserOut:
    user = service.authenticate(session, username=body.username, password=body.password)
    if user is None:
        raise HTTPException(401, "wrong username or password")
    set_session_cookie(response, server(request), user.id)
    return UserOut.model_validate(user)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, dependencies=[public()])
def logout(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE)


@router.get("/auth/me", response_model=UserOut, dependencies=[signed_in])
def me(
    principal: Principal = Depends(current_principal), session: Session = Depends(db)
) -> UserOut:
    return UserOut.model_validate(service.get_user(session, username=principal.username))


@router.post(
    "/tokens",
    response_model=TokenOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[signed_in],
)
def create_token(
    body: TokenIn,
    principal: Principal = Depends(current_principal),
    ctx: Ctx = Depends(write_context),
) -> TokenOut:
    user = service.get_user(ctx.session, username=principal.username)
    token, plain = service.create_token(ctx, user=user, name=body.name)
    ctx.session.commit()
    return TokenOut(id=token.id, name=token.name, token=plain)


@router.delete(
    "/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[signed_in]
)
def revoke_token(
    token_id: RowId,
    principal: Principal = Depends(current_principal),
    ctx: Ctx = Depends(write_context),
) -> None:
    user = service.get_user(ctx.session, username=principal.username)
    service.revoke_token(ctx, token_id=token_id, user=user)
    ctx.session.commit()


@router.get("/users", response_model=list[UserOut], dependencies=[allow()])
def list_users(session: Session = Depends(db)) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in service.get_all_users(session)]


@router.post(
    "/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, dependencies=[allow()]
)
def create_user(body: UserIn, ctx: Ctx = Depends(write_context)) -> UserOut:
    user = service.create_user(ctx, body)
    ctx.session.commit()
    return UserOut.model_validate(user)
