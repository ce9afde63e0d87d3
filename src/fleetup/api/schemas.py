"""Shapes shared by every API router."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel

T = TypeVar("T")

# Row ids are 32-bit integers on PostgreSQL: a larger id (or offset) is refused with a 422
# naming the parameter, before the database fails on it with a server error.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class PageOut(BaseModel, Generic[T]):
    """One page of a list; ``total`` counts every match, not just this page."""

    items: list[T]
    total: int
    limit: int
    offset: int
