"""Numbers in page addresses, bounded as the API bounds them (``fleetup.api.schemas.RowId``).

Row ids are 32-bit integers on PostgreSQL and SQLite keeps at most 64 bits, while a Python
``int`` has no bound: an id or an offset beyond the column's range would reach the database and
fail there, a server error for an address that merely names nothing. So a page declares its row
ids with ``page_row_id``, and an id outside ``1..MAX_ROW_ID`` gets the page's own "not found"
page at once, as an id that names no row does. A list's offset is a ``PageOffset``: anything
but digits still means the first page, and a number beyond ``MAX_ROW_ID`` is a 422 that names
the parameter.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator

from fleetup.api.schemas import MAX_ROW_ID
from fleetup.web.guard import PageError


def page_row_id(title: str, message: str, placeholder: str = "") -> AfterValidator:
    """The check for a page's row id: out of range, the page answers 404 with its own words.

    Args:
        title: the English msgid of the page's "not found" title, as its lookup uses it.
        message: the English msgid of the explanation, as its lookup uses it.
        placeholder: the ``%(name)s`` in ``message`` that the id fills, if it has one.

    Returns:
        Metadata for ``Annotated[int, ...]``; its check raises ``PageError`` (404), which
        ``web.mount`` shows as an error page, before the database is asked.
    """

    def in_range(value: int) -> int:
        if not 1 <= value <= MAX_ROW_ID:
            params = {placeholder: str(value)} if placeholder else {}
            raise PageError(404, title, message, **params)
        return value

    return AfterValidator(in_range)


def _digits_or_zero(raw: object) -> object:
    """Lists have always read a missing or malformed offset as the first page."""
    if isinstance(raw, str):
        return int(raw) if raw.isascii() and raw.isdigit() else 0
    return raw


PageOffset = Annotated[int, BeforeValidator(_digits_or_zero), Query(ge=0, le=MAX_ROW_ID)]
