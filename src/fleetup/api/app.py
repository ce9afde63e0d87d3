"""Builds the ASGI application: API, web pages and static files over one set of server parts."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from fleetup import __version__, web
from fleetup.api import device, idempotency, problems, v1
from fleetup.api.access import GuardedRoute, open_to_all
from fleetup.api.deps import Server
from fleetup.api.device.fast_poll import PollFastPath
from fleetup.api.text_guard import refuse_nul
from fleetup.core.clock import Clock, SystemClock
from fleetup.core.config import Settings
from fleetup.core.db import make_engine, session_factory
from fleetup.core.security import Signer
from fleetup.notify import service as notify_service
from fleetup.notify.inbox import SimulatedInbox
from fleetup.upgrades.library import SopLibrary


def build_server(
    settings: Settings, clock: Clock | None = None, *, inbox: SimulatedInbox | None = None
) -> Server:
    """The server's long-lived parts; ``inbox`` keeps what a simulated server delivers."""
    engine = make_engine(settings.effective_database_url)
    notify_service.use_settings(engine, settings)
    return Server(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        clock=clock or SystemClock(),
        signer=Signer(settings.effective_secret_key()),
        library=SopLibrary(settings.sop_definitions),
        inbox=inbox,
    )


def create_app(parts: Server) -> FastAPI:
    """The application for an already built ``Server`` (its schema must be migrated)."""
    app = FastAPI(
        title="fleetup",
        version=__version__,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        responses=problems.RESPONSES,
        dependencies=[Depends(refuse_nul)],
    )
    app.router.route_class = GuardedRoute
    app.state.server = parts
    problems.install(app)
    device.mount(app, parts)  # first: agents' polls are most requests, and routes match in order
    v1.mount(app)

    @app.get("/healthz", dependencies=[open_to_all()], tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    web.mount(app)
    app.add_middleware(PollFastPath, parts=parts)
    idempotency.install(app, parts)  # a client's Idempotency-Key is honoured everywhere
    return app
