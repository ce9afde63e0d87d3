"""Access and refusals for pages: sign-in redirects, friendly error pages, CSRF checks.

The API answers an unknown caller with a 401 problem+json; a person in a browser should land on
the sign-in page instead and come back afterwards. So a page's dependencies are
``signed_in(...)``: a check that raises ``SignInRequired`` (or ``PageError`` for a role that
may not see the page) *before* the ``allow(...)`` rule of ``fleetup.api.access`` runs, which
stays the route's declared rule. Both exceptions are this module's own, so the handlers that
``web.mount`` installs for them never touch the API's errors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from fleetup.api.access import allow
from fleetup.api.deps import optional_principal
from fleetup.core.security import Principal, Role
from fleetup.web.language import N_
from fleetup.web.rendering import Page, page, page_for

# Where a sign-in goes when no page was asked for: the front door, which sends each role on to
# the page of its daily work.
HOME = "/"
ROLE_HOMES = {
    Role.technician: "/technician",  # today's visits, on the phone
    Role.on_call: "/on-call",
    Role.manager: "/campaigns",
    Role.admin: "/campaigns",
    Role.viewer: "/machines",
}


def home_of(principal: Principal | None) -> str:
    """The page a signed-in person starts on; the sign-in page for anyone else."""
    if principal is None:
        return "/login"
    return ROLE_HOMES.get(principal.role, "/machines")


class SignInRequired(Exception):
    """Nobody is signed in; send them to the sign-in page and back to ``next_url``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageError(Exception):
    """Shown as an error page; ``title`` and ``message`` are English msgids, translated late.

    ``message`` may hold ``%(name)s`` placeholders, filled from ``params`` after translation.
    """

    def __init__(self, status: int, title: str, message: str, **params: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.params = params


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, else the home page (no open redirects)."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(c in value for c in "\r\n\\")
    ):
        return HOME
    return value


def signed_in(*roles: Role) -> list[Any]:
    """The dependencies of a page for ``roles``: redirect or refuse, then the access rule."""
    admitted = frozenset(roles) | {Role.admin}

    def page_guard(
        request: Request, principal: Principal | None = Depends(optional_principal)
    ) -> None:
        if principal is None:
            query = request.url.query
            raise SignInRequired(request.url.path + (f"?{query}" if query else ""))
        if principal.role not in admitted:
            raise PageError(
                403,
                N_("Not for your role"),
                N_("Your role may not open this page. Ask the project manager if you need it."),
            )

    return [Depends(page_guard), allow(*roles)]


def csrf_protected(current: Page = Depends(page), csrf_token: str = Form("")) -> None:
    """Dependency for form POSTs: refuse (403) one without a valid token."""
    if not current.csrf_valid(csrf_token):
        raise PageError(
            403,
            N_("The form has expired"),
            N_(
                "This form is too old or did not come from fleetup. Go back, reload the page "
                "and send it again."
            ),
        )


def sign_in_redirect(request: Request, error: SignInRequired) -> Response:
    target = "/login?" + urlencode({"next": safe_next(error.next_url)})
    current = page_for(request, None)
    if request.headers.get("HX-Request") == "true":
        # htmx would swap the sign-in page into the part it asked for; make it navigate.
        return current.finish(Response(status_code=200, headers={"HX-Redirect": target}))
    return current.finish(RedirectResponse(target, status_code=303))


def error_page(request: Request, error: PageError) -> Response:
    current = page_for(request, getattr(request.state, "principal", None))
    return current.render(
        "error.html",
        status_code=error.status,
        title=current.gettext(error.title),
        message=current.gettext(error.message) % error.params,
    )
