"""The errors a user of fleetup can meet, drawn once here.

    FleetupError
    ├── NotFound          a named thing does not exist            (HTTP 404)
    ├── Conflict          it exists already, or its state forbids (HTTP 409)
    ├── InvalidInput      one or more fields are wrong            (HTTP 422)
    └── PermissionDenied  the caller may not do this              (HTTP 403)

Each carries a message written for the person who will read it. ``InvalidInput`` also carries
``FieldProblem`` entries that name the field (or the row and column of an imported file), so
the API can answer with RFC 9457 problem details and the CLI can print a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field; ``row`` is set for rows of an imported file."""

    field: str
    message: str
    row: int | None = None
    value: str | None = None


class FleetupError(Exception):
    """Root of every error fleetup raises on purpose."""

    status = 400
    title = "Bad request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(FleetupError):
    status = 404
    title = "Not found"


class Conflict(FleetupError):
    status = 409
    title = "Conflict"


class PermissionDenied(FleetupError):
    status = 403
    title = "Forbidden"


class InvalidInput(FleetupError):
    status = 422
    title = "Invalid input"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    @classmethod
    def of(
        cls, message: str, error: ValidationError, *, prefix: str = "", empty: str = ""
    ) -> InvalidInput:
        """``message``, with a problem per error pydantic found, each naming its field by its
        path (``gate.error_count``) after ``prefix``; ``empty`` names a problem of the whole."""
        return cls(
            message,
            [
                FieldProblem(prefix + (".".join(str(p) for p in item["loc"]) or empty), item["msg"])
                for item in error.errors()
            ],
        )
