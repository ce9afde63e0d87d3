"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error body has ``type``, ``title``, ``status`` and ``detail``; validation errors add
``errors``: one entry per field, with its dotted location, so a client can point at it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route, compile_path

from fleetup.core.errors import FleetupError, InvalidInput

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

# What every error body holds, for the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "row": {"type": "integer"},
                },
            },
        },
    },
}
# Any route can refuse a request with problem details (401, 403, 404, 405, 409, 422 ...).
# Documenting the 4XX range once also replaces FastAPI's default 422 entry, which describes
# an application/json body fleetup never sends.
RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "description": "Refused: RFC 9457 problem details, naming each bad field.",
        "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    }
}


def problem(
    status: int, title: str, detail: str, *, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        source, rest = parts[0], parts[1:]
        return ".".join(rest) if rest and source == "body" else ".".join([source, *rest])
    return ".".join(parts)


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(FleetupError)
    async def _fleetup_error(_request: Request, error: FleetupError) -> JSONResponse:
        errors = None
        if isinstance(error, InvalidInput):
            errors = [
                {"field": p.field, "message": p.message}
                | ({"row": p.row} if p.row is not None else {})
                for p in error.problems
            ]
        return problem(error.status, error.title, error.message, errors=errors)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _location(tuple(item["loc"])), "message": item["msg"]}
            for item in error.errors()
        ]
        named = ", ".join(sorted({e["field"] or "body" for e in errors}))
        return problem(422, "Invalid input", f"check these fields: {named}", errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        response = problem(
            error.status_code, _TITLES.get(error.status_code, "Error"), str(error.detail)
        )
        if error.headers:
            response.headers.update(error.headers)
        if error.status_code == 405:
            allowed = allowed_methods(request.app.routes, _route_path(request))
            if allowed:
                response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=error)
        return problem(500, "Internal server error", "the server failed; the error is logged")


def allowed_methods(routes: Iterable[Any], path: str) -> set[str]:
    """Every method some route serves at ``path``, for a 405's ``Allow`` (RFC 9110 §15.5.6).

    The router answers 405 from the first route whose path matched, so its ``Allow`` would
    name that registration's methods only, while GET and POST on one path are often two
    routes, or come from two routers. Empty when no route serves ``path`` at all.
    """
    found: set[str] = set()
    for route_path, methods in _served(routes):
        if _path_pattern(route_path).match(path):
            found |= methods
    return found


def _served(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, frozenset[str]]]:
    """Each route's full path pattern and methods, looking into included routers.

    Recent FastAPI keeps an included router as one entry holding the router and its prefix.
    """
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _served(inner.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Route) and route.methods:
            yield prefix + route.path, frozenset(route.methods)
        elif isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            yield prefix + route.path + "/{path:path}", frozenset({"GET", "HEAD"})


def _route_path(request: Request) -> str:
    """The path as the router matched it: without the prefix a proxy serves the app under."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path.removeprefix(root) if root else path


@cache
def _path_pattern(route_path: str) -> re.Pattern[str]:
    pattern, _format, _convertors = compile_path(route_path)
    return pattern


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
}
