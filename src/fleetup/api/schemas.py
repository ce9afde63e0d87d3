"""Shapes shared by every API router."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    """One page of a list; ``total`` counts every match, not just this page."""

    items: list[T]
    total: int
    limit: int
    offset: int
