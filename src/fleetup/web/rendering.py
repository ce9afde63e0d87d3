"""Rendering a page: the Jinja2 environment, and ``Page``, what every page handler is given.

One environment serves every request. The gettext callables installed in it look the
language up in the template's context, so two requests in two languages never share a
translation. Every HTML response leaves through ``Page.finish``, which sets the CSRF cookie
when the visitor has none yet and the security headers.

CSRF: a form carries ``csrf_token``, a value signed with the server's key (purpose "csrf")
that names a hash of the visitor's ``fleetup_csrf`` cookie and the signed-in user's id. A
forged form on another site can neither read that cookie nor sign a token for it, and a
token taken before sign-in (or for another user) does not pass after it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from fleetup import __version__
from fleetup.api.deps import Server, optional_principal, server
from fleetup.core.i18n import gettext_for, ngettext_for
from fleetup.core.security import LinkInvalid, Principal, Role, same
from fleetup.web.language import (
    LANG_COOKIE,
    ROLE_LABELS,
    STATE_LABELS,
    WEEKDAYS,
    Language,
    MachineState,
    choose,
    other,
)

TEMPLATES = Path(__file__).with_name("templates")
CSRF_COOKIE = "fleetup_csrf"
CSRF_FIELD = "csrf_token"
CSRF_COOKIE_MAX_AGE_S = 30 * 24 * 3600

# Scripts only from our own origin (htmx and Mermaid are vendored), no framing, forms post
# only to us. Styles allow inline because Mermaid writes a <style> into every SVG it draws;
# no script is ever inline.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@pass_context
def _gettext(context: Context, message: str) -> str:
    return gettext_for(context["lang"])(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return ngettext_for(context["lang"])(singular, plural, count)


@pass_context
def _state_label(context: Context, state: MachineState) -> str:
    return gettext_for(context["lang"])(STATE_LABELS[state])


@pass_context
def _role_label(context: Context, role: Role) -> str:
    return gettext_for(context["lang"])(ROLE_LABELS[role])


@pass_context
def _weekday(context: Context, day: int) -> str:
    return gettext_for(context["lang"])(WEEKDAYS[day])


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # newstyle: ``_()`` escapes its result and formats ``%(name)s`` itself; jinja2 calls the
    # callables through the context, so the pass_context ones above receive it.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        cast(Callable[[str], str], _gettext),
        cast(Callable[[str, str, int], str], _ngettext),
        newstyle=True,
    )
    env.globals.update(
        state_label=_state_label,
        role_label=_role_label,
        weekday=_weekday,
        version=__version__,
    )
    return env


ENV = _environment()


def _binding(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


@dataclass
class Page:
    """One request's view of the visitor: language, who is signed in, the CSRF seed."""

    request: Request
    server: Server
    language: Language
    principal: Principal | None
    csrf_seed: str
    seed_is_new: bool

    def gettext(self, message: str) -> str:
        return gettext_for(self.language.code)(message)

    @property
    def current_url(self) -> str:
        """Path and query of this request, to come back to after signing in or switching."""
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def csrf_token(self) -> str:
        user_id = self.principal.user_id if self.principal else 0
        return self.server.signer.sign("csrf", {"b": _binding(self.csrf_seed), "u": user_id})

    def csrf_valid(self, token: str) -> bool:
        """Whether ``token`` was signed by us for this visitor's cookie and this user."""
        if not token or self.seed_is_new:
            return False
        try:
            value = self.server.signer.unsign(
                "csrf", token, max_age_s=self.server.settings.session_max_age_s
            )
        except LinkInvalid:
            return False
        user_id = self.principal.user_id if self.principal else 0
        return (
            isinstance(value, dict)
            and same(str(value.get("b", "")), _binding(self.csrf_seed))
            and value.get("u") == user_id
        )

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        values: dict[str, Any] = {
            "lang": self.language.code,
            "html_lang": self.language.html,
            "other_language": other(self.language),
            "principal": self.principal,
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.csrf_token(),
            "current_url": self.current_url,
            "nav": "",
        }
        values.update(context)
        html = ENV.get_template(template).render(values)
        response = HTMLResponse(html, status_code=status_code)
        self.finish(response)
        return response

    def finish(self, response: Response) -> Response:
        """Add the CSRF cookie (when new) and the security headers to any response."""
        if self.seed_is_new:
            response.set_cookie(
                CSRF_COOKIE,
                self.csrf_seed,
                max_age=CSRF_COOKIE_MAX_AGE_S,
                httponly=True,
                samesite="lax",
                secure=_secure(self.server),
            )
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _secure(parts: Server) -> bool:
    return parts.settings.effective_base_url.startswith("https://")


def page_for(request: Request, principal: Principal | None) -> Page:
    """The request's ``Page``, made once and kept on ``request.state``."""
    found: Page | None = getattr(request.state, "page", None)
    if found is not None:
        return found
    parts = server(request)
    seed = request.cookies.get(CSRF_COOKIE, "")
    made = Page(
        request=request,
        server=parts,
        language=choose(
            cookie=request.cookies.get(LANG_COOKIE),
            accept_language=request.headers.get("accept-language"),
            default=parts.settings.default_language,
        ),
        principal=principal,
        csrf_seed=seed or secrets.token_urlsafe(24),
        seed_is_new=not seed,
    )
    request.state.page = made
    return made


def page(request: Request, principal: Principal | None = Depends(optional_principal)) -> Page:
    """Dependency: the ``Page`` of this request."""
    return page_for(request, principal)


def lang_cookie_options(parts: Server) -> dict[str, Any]:
    return {"httponly": True, "samesite": "lax", "secure": _secure(parts)}
