"""The web app: server-rendered pages in zh-TW and English, with htmx for live parts.

Pages live in ``*_pages.py`` (one router per area, each route with an explicit access rule),
templates in ``templates/``, the handwritten stylesheet and the vendored browser libraries in
``static/``. Pages call services only; see docs/web.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from fleetup.web import (
    auth_pages,
    campaign_pages,
    customer_pages,
    fleet_pages,
    notification_pages,
    operations_pages,
    schedule_pages,
    technician_pages,
    upgrade_pages,
)
from fleetup.web.guard import PageError, SignInRequired, error_page, sign_in_redirect

STATIC = Path(__file__).with_name("static")


def mount(app: FastAPI) -> None:
    """Add the pages, their error handlers and the static files to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        auth_pages,
        fleet_pages,
        upgrade_pages,
        campaign_pages,
        schedule_pages,
        technician_pages,
        operations_pages,
        notification_pages,
        customer_pages,
    ):
        app.include_router(module.router)

    # Both exceptions are raised by pages only, so these handlers leave the API's alone.
    @app.exception_handler(SignInRequired)
    async def _sign_in_first(request: Request, error: SignInRequired) -> Response:
        return sign_in_redirect(request, error)

    @app.exception_handler(PageError)
    async def _error_page(request: Request, error: PageError) -> Response:
        return error_page(request, error)
