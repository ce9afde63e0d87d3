"""The device API (``/device/v1``, docs/agent.md) and the deployments that feed it.

``mount(app)`` adds both routers and signs the TUF timestamp again if it is close to expiry,
which is what a server start needs.
"""

from __future__ import annotations

from fastapi import FastAPI

from fleetup.api.deps import Server
from fleetup.api.device import deployments, routes, tuf


def mount(app: FastAPI, parts: Server) -> None:
    app.include_router(routes.router)
    app.include_router(tuf.router)
    app.include_router(deployments.router)
    tuf.refresh(parts)
