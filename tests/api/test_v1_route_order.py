"""The REST API's modules are matched busiest first; that is safe only while no two modules
have routes that could answer the same request."""

from __future__ import annotations

import itertools
import re

from fastapi.routing import APIRoute
from starlette.routing import compile_path

from fleetup.api import v1


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_no_route_of_one_module_answers_a_path_of_another() -> None:
    routes = [
        (module.__name__, method, route.path)
        for module in v1.MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    ]
    assert len({module for module, _, _ in routes}) == len(v1.MODULES)
    clashes = [
        (first, second)
        for first, second in itertools.permutations(routes, 2)
        if first[0] != second[0]
        and first[1] == second[1]
        and compile_path(first[2])[0].match(_sample(second[2]))
    ]
    assert clashes == []
