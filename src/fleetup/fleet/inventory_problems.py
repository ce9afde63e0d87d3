"""Problems found in an inventory file, kept as message ids so each reader gets their language.

A problem stores the English message id and its parameters, not finished text: the CLI and the
API render it in zh-TW or English when they show it, so one import can be refused to a
technician in Chinese and to a script in English. Message ids are marked with ``N_`` so that
Babel's extractor finds them (``pybabel extract -k N_``); their translations live in
``translations/zh_TW/LC_MESSAGES/fleet.po``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fleetup.core.errors import FieldProblem, InvalidInput
from fleetup.core.i18n import gettext_for

FILE = "file"
"""The ``column`` of a problem with the whole file rather than one cell."""

_VALUE_SHOWN = 80


def N_(msgid: str) -> str:
    """Mark ``msgid`` for translation without translating it yet (gettext's ``gettext_noop``)."""
    return msgid


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong with one cell (or the file), renderable in any supported language.

    ``row`` counts as a spreadsheet shows the file: the header is row 1.
    """

    column: str
    msgid: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    row: int | None = None
    value: str | None = None

    def text(self, language: str) -> str:
        """The message in ``language`` (zh-TW or en), with its parameters filled in.

        Args:
            language: ``zh-TW`` or ``en``; anything else gets English.

        Returns:
            The finished sentence.
        """
        return gettext_for(language)(self.msgid).format(**self.params)

    def field_problem(self, language: str) -> FieldProblem:
        """This problem as the ``FieldProblem`` that ``InvalidInput`` carries."""
        shown = self.value
        if shown is not None and len(shown) > _VALUE_SHOWN:
            shown = shown[: _VALUE_SHOWN - 1] + "…"
        return FieldProblem(
            field=self.column, message=self.text(language), row=self.row, value=shown
        )


SUMMARY = N_(
    "Problems found in the file: {count}. Nothing was imported; "
    "correct the rows listed and import the whole file again."
)
NOT_LISTED = N_("{count} more problems are not listed; correct the ones above first.")


class InventoryRefused(InvalidInput):
    """The inventory file was refused; nothing was written.

    ``message`` and ``problems`` are in English, as for every ``InvalidInput``;
    ``message_in`` and ``problems_in`` give them in another language.
    """

    def __init__(self, problems: Sequence[RowProblem], *, max_listed: int = 500) -> None:
        listed = list(problems[:max_listed])
        if len(problems) > max_listed:
            listed.append(
                RowProblem(
                    column=FILE, msgid=NOT_LISTED, params={"count": len(problems) - max_listed}
                )
            )
        self.total = len(problems)
        self.row_problems: tuple[RowProblem, ...] = tuple(listed)
        super().__init__(self.message_in("en"), self.problems_in("en"))

    def message_in(self, language: str) -> str:
        """The summary sentence in ``language``."""
        return gettext_for(language)(SUMMARY).format(count=self.total)

    def problems_in(self, language: str) -> list[FieldProblem]:
        """Every listed problem, rendered in ``language``."""
        return [problem.field_problem(language) for problem in self.row_problems]

    def in_language(self, language: str) -> InvalidInput:
        """A plain ``InvalidInput`` in ``language``, for layers that render any FleetupError."""
        return InvalidInput(self.message_in(language), self.problems_in(language))
