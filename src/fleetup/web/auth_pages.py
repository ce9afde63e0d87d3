"""Signing in and out, the language switch, and the front door."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from fleetup.accounts import service as accounts
from fleetup.api.access import GuardedRoute, public
from fleetup.api.deps import SESSION_COOKIE, db
from fleetup.api.v1.auth import set_session_cookie
from fleetup.core.i18n import normalise
from fleetup.web.guard import HOME, PageError, home_of, safe_next
from fleetup.web.language import LANG_COOKIE, LANG_COOKIE_MAX_AGE_S, N_
from fleetup.web.rendering import Page, lang_cookie_options, page

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)


@router.get("/", dependencies=[public()])
def home(current: Page = Depends(page)) -> Response:
    return current.finish(RedirectResponse(home_of(current.principal), status_code=303))


def _login_form(
    current: Page, *, next_url: str, username: str = "", error: str = "", status_code: int = 200
) -> Response:
    return current.render(
        "login.html",
        status_code=status_code,
        next_url=next_url,
        username=username,
        error=error,
    )


@router.get("/login", dependencies=[public()])
def login_form(
    current: Page = Depends(page), next_url: str = Query(HOME, alias="next")
) -> Response:
    target = safe_next(next_url)
    if current.principal is not None:
        return current.finish(RedirectResponse(target, status_code=303))
    return _login_form(current, next_url=target)


@router.post("/login", dependencies=[public()])
def login(
    current: Page = Depends(page),
    session: Session = Depends(db),
    username: str = Form(""),
    password: str = Form(""),
    next_url: str = Form(HOME, alias="next"),
    csrf_token: str = Form(""),
) -> Response:
    _ = current.gettext
    target = safe_next(next_url)
    username = username.strip()
    # The sign-in form is the one most often left open for hours on a phone, so an expired
    # token shows the form again with a fresh one instead of a bare refusal.
    if not current.csrf_valid(csrf_token):
        error = _("The sign-in form had expired. Please sign in again.")
        return _login_form(
            current, next_url=target, username=username, error=error, status_code=403
        )
    if not username or not password:
        error = _("Enter both your username and your password.")
        return _login_form(
            current, next_url=target, username=username, error=error, status_code=422
        )
    user = accounts.authenticate(session, username=username, password=password)
    if user is None:
        error = _("Wrong username or password. Check both (passwords are case-sensitive).")
        return _login_form(
            current, next_url=target, username=username, error=error, status_code=401
        )
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, current.server, user.id)
    return current.finish(response)


@router.post("/logout", dependencies=[public()])
def logout(current: Page = Depends(page), csrf_token: str = Form("")) -> Response:
    # Signed out already (an expired session): nothing to protect, just show the sign-in page.
    if current.principal is not None and not current.csrf_valid(csrf_token):
        raise PageError(
            403,
            N_("The form has expired"),
            N_("Reload the page and press “Sign out” again."),
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return current.finish(response)


@router.get("/lang/{code}", dependencies=[public()])
def switch_language(
    code: str, current: Page = Depends(page), next_url: str = Query(HOME, alias="next")
) -> Response:
    language = normalise(code)
    if language is None:
        raise PageError(
            404,
            N_("Unknown language"),
            N_("fleetup is available in Traditional Chinese (zh-TW) and English (en)."),
        )
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        language,
        max_age=LANG_COOKIE_MAX_AGE_S,
        **lang_cookie_options(current.server),
    )
    return current.finish(response)
