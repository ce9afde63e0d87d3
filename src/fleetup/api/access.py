"""Who may call which route: every route states its rule, and a route without one refuses.

``allow(Role.viewer, ...)`` is a dependency that admits a signed-in user or token holder whose
role is listed (admins are always admitted); ``public()`` admits anyone and says so explicitly,
passing on the caller it recognised; ``open_to_all()`` admits anyone without looking at who.
``GuardedRoute`` is the route class of every router: when the rule is missing it answers 403
whatever the handler would have done, so forgetting a rule fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from fleetup.api.deps import current_principal, optional_principal
from fleetup.core.security import ALL_ROLES, Principal, Role

RULE_ATTR = "__fleetup_rule__"


def allow(*roles: Role) -> Any:
    """Admit principals with one of ``roles`` (and admins); 401 when nobody is signed in."""
    admitted = frozenset(roles) | {Role.admin}

    async def rule(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in admitted:
            raise HTTPException(403, f"the {principal.role.value} role may not do this")
        return principal

    setattr(rule, RULE_ATTR, admitted)
    return Depends(rule)


def public() -> Any:
    """Admit anyone; the principal, if any, is passed on."""

    async def rule(principal: Principal | None = Depends(optional_principal)) -> Principal | None:
        return principal

    setattr(rule, RULE_ATTR, ALL_ROLES | {"anonymous"})
    return Depends(rule)


def open_to_all() -> Any:
    """Admit everyone without reading any credential: for an answer that is the same for all.

    ``public()`` still reads the caller, so a stale or unknown bearer token gets 401 there.
    A health check must not: a load balancer sends nothing, and an IPC's client sends its
    device credential (no API token) on every request, so ``Authorization`` is ignored here.
    """

    async def rule() -> None:
        return None

    setattr(rule, RULE_ATTR, ALL_ROLES | {"anonymous", "device"})
    return Depends(rule)


def route_rule(dependant: Dependant) -> frozenset[Any] | None:
    """The roles a route admits, found among its dependencies; None when it has no rule."""
    for sub in dependant.dependencies:
        rule = getattr(sub.call, RULE_ATTR, None)
        if rule is not None:
            return frozenset(rule)
        found = route_rule(sub)
        if found is not None:
            return found
    return None


def _refuse() -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def handler(_request: Request) -> Response:
        raise HTTPException(403, "this route has no access rule, so it refuses everyone")

    return handler


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if route_rule(self.dependant) is None:
            return _refuse()
        return super().get_route_handler()


READERS: Iterable[Role] = (Role.viewer, Role.technician, Role.on_call, Role.manager)


def api_routes(routes: Iterable[Any], prefix: str = "") -> list[tuple[str, APIRoute]]:
    """Every API route under ``routes`` with its full path, looking into included routers.

    Recent FastAPI keeps an included router as one entry that holds the original router and
    the prefix it was included with, so the route table is a tree, walked here.
    """
    found: list[tuple[str, APIRoute]] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append((prefix + route.path, route))
            continue
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            found.extend(api_routes(inner.routes, prefix + getattr(context, "prefix", "")))
    return found
