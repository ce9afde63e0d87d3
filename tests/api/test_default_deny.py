"""Every route states who may call it; a route that states nothing refuses everyone."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from fleetup.api.access import GuardedRoute, api_routes, route_rule
from fleetup.core.security import Role
from support import Account


def test_a_route_without_a_rule_refuses_even_an_admin(
    app: FastAPI, make_account: Callable[..., Account]
) -> None:
    forgotten = APIRouter(route_class=GuardedRoute)

    @forgotten.get("/api/v1/forgotten")
    def leak() -> dict[str, str]:
        return {"secret": "should never be seen"}

    app.include_router(forgotten)
    admin = make_account(Role.admin)
    with TestClient(app) as client:
        response = client.get("/api/v1/forgotten", headers=admin.headers)
    assert response.status_code == 403
    assert "secret" not in response.text
    assert "no access rule" in response.json()["detail"]


def test_every_route_of_the_application_has_a_rule(app: FastAPI) -> None:
    routes = api_routes(app.routes)
    paths = {path for path, _route in routes}
    assert {"/api/v1/machines", "/api/v1/sop/instances/{instance_id}/events", "/login"} <= paths
    missing = [path for path, route in routes if route_rule(route.dependant) is None]
    assert missing == []
    assert [path for path, route in routes if not isinstance(route, GuardedRoute)] == []
