"""The REST API, version 1: one router per domain, all guarded by an explicit role rule."""

from fastapi import FastAPI

from fleetup.api.v1 import (
    audit,
    auth,
    campaigns,
    customers,
    fleet,
    inventory,
    notifications,
    operations,
    simulation,
    sop,
)

PREFIX = "/api/v1"
# Routes match in order, so the busiest come first: the technicians' phones posting steps,
# the simulated clock (two routes, only busy when the server runs on it), customers' links
# and the campaign pages. No two modules' paths overlap, so the order changes nothing else.
MODULES = (
    sop,
    simulation,
    customers,
    campaigns,
    fleet,
    operations,
    notifications,
    auth,
    inventory,
    audit,
)


def mount(app: FastAPI) -> None:
    """Add every module's routes under ``PREFIX``, each module's router directly on the app:
    a request is matched against one level of routers, not two."""
    for module in MODULES:
        app.include_router(module.router, prefix=PREFIX)
