"""The REST API, version 1: one router per domain, all guarded by an explicit role rule."""

from fastapi import APIRouter

from fleetup.api.access import GuardedRoute
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

router = APIRouter(prefix="/api/v1", route_class=GuardedRoute)
for module in (
    auth,
    fleet,
    inventory,
    sop,
    audit,
    campaigns,
    operations,
    notifications,
    customers,
    simulation,
):
    router.include_router(module.router)
