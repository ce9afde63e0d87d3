"""The import's first pass: the rows of a file read against each other, without the database.

Every cell is parsed; the customer, contact and site columns, which repeat on the rows of one
customer or site, are gathered into one description each, and rows that state different values
for the same thing are reported. Duplicate serials are reported on their second row. What the
database knows (existing customers, sites, machines) is the second pass's business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fleetup.fleet.inventory_cells import BadCell, CellValue, parse_cell
from fleetup.fleet.inventory_problems import N_, RowProblem
from fleetup.fleet.inventory_read import COLUMNS, REQUIRED_COLUMNS, Sheet

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; ``phase`` is ``validate`` or ``apply``."""

CUSTOMER_COLUMNS = ("customer_name", "customer_existing")
CONTACT_DETAILS = ("contact_phone", "contact_email", "contact_line_id")
SITE_COLUMNS = ("site_name", "site_address", "site_timezone", "maintenance_window")
MACHINE_COLUMNS = ("model", "ipc_os", "old_system_id", "program_version")

_CONFLICT = {
    "customer": N_(
        "Customer {code} has {column} {earlier!r} on row {first}; "
        "every row of one customer must agree."
    ),
    "site": N_(
        "Site {code} has {column} {earlier!r} on row {first}; every row of one site must agree."
    ),
    "contact": N_(
        "Contact {code} has {column} {earlier!r} on row {first}; "
        "every row of one contact must agree."
    ),
}


@dataclass(frozen=True)
class Stated:
    """A value the file gives, with the cell's text and the row that first gave it."""

    value: CellValue
    text: str
    row: int


@dataclass
class Described:
    """A customer, contact or site as the file describes it, gathered over its rows."""

    rows: list[int] = field(default_factory=list)
    stated: dict[str, Stated] = field(default_factory=dict)

    def get(self, column: str) -> CellValue | None:
        found = self.stated.get(column)
        return None if found is None else found.value

    def text(self, column: str) -> str | None:
        value = self.get(column)
        return value if isinstance(value, str) else None


@dataclass
class MachineRow:
    """One machine's row: its site (None when that cell was bad) and its stated columns."""

    row: int
    serial: str
    site: tuple[str, str] | None
    values: dict[str, str]


@dataclass
class FleetFile:
    """Everything the file says, gathered, and what is wrong with it on its own."""

    rows: int
    customers: dict[str, Described] = field(default_factory=dict)
    contacts: dict[str, dict[str, Described]] = field(default_factory=dict)
    sites: dict[tuple[str, str], Described] = field(default_factory=dict)
    machines: dict[str, MachineRow] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)

    def problem(
        self, row: int, where: str, msgid: str, value: str | None = None, **params: str | int
    ) -> None:
        self.problems.append(
            RowProblem(column=where, msgid=msgid, params=params, row=row, value=value)
        )


def read_rows(sheet: Sheet, progress: Progress | None = None) -> FleetFile:
    """Parse and gather every row of ``sheet``; problems are collected, never raised.

    Args:
        sheet: the rows as read from the file.
        progress: told after each row, as ``progress("validate", done, total)``.

    Returns:
        The gathered customers, contacts, sites and machines, and the problems found.
    """
    fleet = FleetFile(rows=len(sheet.rows), problems=list(sheet.problems))
    for done, row in enumerate(sheet.rows, start=1):
        _read_row(fleet, row.number, row.cells)
        if progress is not None:
            progress("validate", done, len(sheet.rows))
    return fleet


def _parse(fleet: FleetFile, number: int, cells: dict[str, str]) -> dict[str, CellValue]:
    values: dict[str, CellValue] = {}
    for column in COLUMNS:
        text = cells.get(column, "")
        if not text:
            if column in REQUIRED_COLUMNS:
                fleet.problem(number, column, N_("A value is required in {column}."), column=column)
            continue
        try:
            values[column] = parse_cell(column, text)
        except BadCell as bad:
            fleet.problems.append(
                RowProblem(
                    column=column, msgid=bad.msgid, params=bad.params, row=number, value=text
                )
            )
    return values


def _read_row(fleet: FleetFile, number: int, cells: dict[str, str]) -> None:
    values = _parse(fleet, number, cells)
    customer_code, site_code = values.get("customer_code"), values.get("site_code")
    site_key: tuple[str, str] | None = None
    if isinstance(customer_code, str):
        customer = fleet.customers.setdefault(customer_code, Described())
        customer.rows.append(number)
        _agree(fleet, customer, "customer", customer_code, number, cells, values, CUSTOMER_COLUMNS)
        _read_contact(fleet, customer_code, number, cells, values)
        if isinstance(site_code, str):
            site_key = (customer_code, site_code)
            site = fleet.sites.setdefault(site_key, Described())
            site.rows.append(number)
            _agree(fleet, site, "site", site_code, number, cells, values, SITE_COLUMNS)
    serial = values.get("serial")
    if not isinstance(serial, str):
        return
    earlier = fleet.machines.get(serial)
    if earlier is not None:
        fleet.problem(
            number,
            "serial",
            N_("Serial {serial} is also on row {first}; list each machine once."),
            serial,
            serial=serial,
            first=earlier.row,
        )
        return
    stated = {c: v for c in MACHINE_COLUMNS if isinstance(v := values.get(c), str)}
    fleet.machines[serial] = MachineRow(number, serial, site_key, stated)


def _read_contact(
    fleet: FleetFile,
    customer_code: str,
    number: int,
    cells: dict[str, str],
    values: dict[str, CellValue],
) -> None:
    name = values.get("contact_name")
    if not isinstance(name, str):
        if not cells.get("contact_name") and any(cells.get(c) for c in CONTACT_DETAILS):
            fleet.problem(
                number,
                "contact_name",
                N_("Give the contact's name with their phone, e-mail or LINE id."),
            )
        return
    contact = fleet.contacts.setdefault(customer_code, {}).setdefault(name, Described())
    contact.rows.append(number)
    _agree(fleet, contact, "contact", name, number, cells, values, CONTACT_DETAILS)


def _agree(
    fleet: FleetFile,
    described: Described,
    kind: str,
    code: str,
    number: int,
    cells: dict[str, str],
    values: dict[str, CellValue],
    columns: Iterable[str],
) -> None:
    # Blank cells are "not stated" and never conflict; stated values must match the first.
    for column in columns:
        if column not in values:
            continue
        earlier = described.stated.get(column)
        if earlier is None:
            described.stated[column] = Stated(values[column], cells[column], number)
        elif earlier.value != values[column]:
            fleet.problem(
                number,
                column,
                _CONFLICT[kind],
                cells[column],
                code=code,
                column=column,
                earlier=earlier.text,
                first=earlier.row,
            )
