"""Fuzzing the inventory import: whatever arrives, a clear refusal naming row and column, and
the database exactly as it was.

The database first holds the sample fleet, so a refused file has something it could wrongly
have changed. Two kinds of input are thrown at ``import_inventory``:

- arbitrary bytes, raw or behind the signatures the reader looks at (an ``.xlsx`` zip, an old
  ``.xls``, byte-order marks, a good header): refused as a whole file or at the cells named;
- the sample file itself, as CSV or as an ``.xlsx`` workbook, with a few cells made wrong in
  ways the column's rules forbid (blank required cells, codes with spaces, text over the
  length limit, control characters, bad e-mail, phone, yes/no, time zone or maintenance
  window): refused with exactly those cells named, by the row number a spreadsheet shows,
  in English and in Traditional Chinese.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetup.core import audit
from fleetup.core.context import Ctx
from fleetup.fleet.inventory import InventoryRefused, import_inventory
from fleetup.fleet.inventory_read import COLUMNS, REQUIRED_COLUMNS
from fleetup.fleet.models import Contact, Customer, Machine, Site
from fleetup.fleet.schemas import ContactIn, CustomerIn, MachineIn, SiteIn

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory.csv"
FILE = "file"
TABLES = (Customer, Contact, Site, Machine, audit.AuditEvent)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    # The database is shared by the examples on purpose: each must leave it as it found it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


ROWS = sample_rows()


@pytest.fixture
def fleet(ctx: Ctx) -> Ctx:
    """``ctx`` over a database that already holds the sample fleet, committed."""
    import_inventory(ctx, SAMPLE.read_bytes())
    ctx.session.commit()
    return ctx


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the fleet tables and the audit trail, in a stable order."""
    return {
        model.__tablename__: sorted(
            (tuple(row) for row in session.execute(select(model.__table__))), key=repr
        )
        for model in TABLES
    }


def refusal(ctx: Ctx, data: bytes) -> InventoryRefused:
    """Import ``data``, expecting a refusal that leaves the database unchanged."""
    before = snapshot(ctx.session)
    with pytest.raises(InventoryRefused) as caught:
        import_inventory(ctx, data)
    ctx.session.rollback()
    assert snapshot(ctx.session) == before
    return caught.value


def assert_readable(error: InventoryRefused) -> None:
    """Every problem names a column (or the file) and reads in English and in Chinese."""
    assert error.problems, "a refusal lists at least one problem"
    english, chinese = error.problems_in("en"), error.problems_in("zh-TW")
    for problem, in_english, in_chinese in zip(error.row_problems, english, chinese, strict=True):
        assert problem.column, problem
        assert problem.row is None or problem.row >= 1, problem
        assert in_english.message.strip() and in_chinese.message.strip(), problem
        assert in_english.field == in_chinese.field == problem.column
    assert error.message_in("en") != error.message_in("zh-TW")


# --- arbitrary bytes -------------------------------------------------------------------------

_PREFIXES = st.sampled_from(
    [
        b"",
        b"PK\x03\x04",  # what an .xlsx starts with
        b"\xd0\xcf\x11\xe0",  # an old .xls
        codecs.BOM_UTF8,
        codecs.BOM_UTF16_LE,
        codecs.BOM_UTF16_BE,
        ",".join(REQUIRED_COLUMNS).encode() + b"\n",  # a good header, then anything
    ]
)


@FUZZ
@given(prefix=_PREFIXES, tail=st.binary(max_size=600))
def test_arbitrary_bytes_are_refused_naming_the_file_or_cells_and_change_nothing(
    fleet: Ctx, prefix: bytes, tail: bytes
) -> None:
    data = prefix + tail
    before = snapshot(fleet.session)
    try:
        report = import_inventory(fleet, data)
    except InventoryRefused as error:
        assert_readable(error)
        for problem in error.row_problems:
            # A known column, the whole file, or an unknown header quoted as written.
            assert problem.column in (*COLUMNS, FILE) or problem.column == problem.value, problem
    else:
        # Only a good header over blank lines gets through, and it changes nothing.
        assert prefix.startswith(b"customer_code"), data
        assert report.rows == 0, report
    finally:
        fleet.session.rollback()
    assert snapshot(fleet.session) == before


# --- the sample file with wrong cells --------------------------------------------------------


def _limit(model: type[BaseModel], name: str) -> int:
    """The ``max_length`` the API schema gives ``model.name``; the import applies the same."""
    found = [m.max_length for m in model.model_fields[name].metadata if hasattr(m, "max_length")]
    return int(found[0])


_LIMITS = {
    "customer_code": _limit(CustomerIn, "code"),
    "customer_name": _limit(CustomerIn, "name"),
    "contact_name": _limit(ContactIn, "name"),
    "contact_phone": _limit(ContactIn, "phone"),
    "contact_line_id": _limit(ContactIn, "line_id"),
    "site_code": _limit(SiteIn, "code"),
    "site_name": _limit(SiteIn, "name"),
    "site_address": _limit(SiteIn, "address"),
    "serial": _limit(MachineIn, "serial"),
    "model": _limit(MachineIn, "model"),
    "ipc_os": _limit(MachineIn, "ipc_os"),
    "old_system_id": _limit(MachineIn, "old_system_id"),
    "program_version": _limit(MachineIn, "program_version"),
}
_CODES = ("customer_code", "site_code", "serial")
# Control characters a cell can carry through CSV. Tabs and line breaks are turned into spaces
# on reading, and the others that count as white space are stripped at either end of a cell,
# so those are wrong only inside it.
_CONTROLS = ("\x00", "\x01", "\x07", "\x08", "\x1b", "\x7f")
_CONTROL_SPACES = ("\x0b", "\x0c", "\x1c", "\x85")


def _too_long(column: str) -> st.SearchStrategy[str]:
    letter = "9" if column == "contact_phone" else "A"
    return st.integers(1, 40).map(lambda extra: letter * (_LIMITS[column] + extra))


def _with_control(value: str) -> st.SearchStrategy[str]:
    anywhere = st.tuples(st.integers(0, len(value)), st.sampled_from(_CONTROLS))
    inside = st.tuples(st.integers(1, max(len(value) - 1, 1)), st.sampled_from(_CONTROL_SPACES))
    cuts = anywhere | inside if len(value) >= 2 else anywhere
    return cuts.map(lambda cut: value[: cut[0]] + cut[1] + value[cut[0] :])


def _wrong_value(column: str, value: str) -> st.SearchStrategy[str]:
    """Text that ``column``'s rules refuse, whatever the rest of the row says."""
    options: list[st.SearchStrategy[str]] = []
    if column in REQUIRED_COLUMNS:
        options.append(st.just(""))
    if column in _LIMITS:
        options.append(_too_long(column))
    if value and column != "maintenance_window":
        options.append(_with_control(value))
    if column in _CODES:
        options.append(st.sampled_from(["has space", "-leading-dash", "機台一號", "a/b", "x;y"]))
    options.append(
        {
            "customer_existing": st.sampled_from(["maybe", "是否", "2", "yes!", "TRUE-ish"]),
            "contact_phone": st.sampled_from(["call me", "0912-abc", "+886 (0)9 x"]),
            "contact_email": st.sampled_from(["no-at-sign", "a@", "@b.example", "a b@c.example"]),
            "site_timezone": st.sampled_from(["Mars/Olympus", "Taipei", "UTC+8", "Asia/台北"]),
            "maintenance_window": st.sampled_from(
                [
                    "sometimes",
                    "mon-fri 25:00-26:00",
                    "mon 18:00-18:00",
                    "funday 08:00-12:00",
                    "mon-fri 18:00",
                    "18:00-24:30",
                ]
            ),
        }.get(column, st.nothing())
    )
    return st.one_of(options)


@st.composite
def wrong_cells(draw: st.DrawFn) -> dict[tuple[int, str], str]:
    """One to three cells of the sample, by (row as a spreadsheet shows it, column)."""
    chosen: dict[tuple[int, str], str] = {}
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(ROWS) - 1))
        column = draw(st.sampled_from(COLUMNS))
        chosen[(index + 2, column)] = draw(_wrong_value(column, ROWS[index][column]))
    return chosen


def _rows_with(cells: dict[tuple[int, str], str]) -> list[list[str]]:
    rows = [[row[column] for column in COLUMNS] for row in ROWS]
    for (number, column), value in cells.items():
        rows[number - 2][COLUMNS.index(column)] = value
    return rows


def as_csv(cells: dict[tuple[int, str], str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(_rows_with(cells))
    return buffer.getvalue().encode("utf-8-sig")


def as_xlsx(cells: dict[tuple[int, str], str]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    for row in _rows_with(cells):
        # openpyxl refuses to store most control characters; such cells stay CSV-only.
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_can_hold(cells: dict[tuple[int, str], str]) -> bool:
    return not any(ord(char) < 32 or 0x7F <= ord(char) < 0xA0 for v in cells.values() for char in v)


@FUZZ
@given(cells=wrong_cells(), workbook=st.booleans())
def test_sample_with_wrong_cells_is_refused_naming_exactly_those_cells(
    fleet: Ctx, cells: dict[tuple[int, str], str], workbook: bool
) -> None:
    data = as_xlsx(cells) if workbook and _xlsx_can_hold(cells) else as_csv(cells)
    error = refusal(fleet, data)
    assert_readable(error)
    named = {(problem.row, problem.column) for problem in error.row_problems}
    assert named == set(cells), error.problems


@FUZZ
@given(cells=wrong_cells())
def test_wrong_cells_are_refused_on_an_empty_database_too(
    ctx: Ctx, cells: dict[tuple[int, str], str]
) -> None:
    error = refusal(ctx, as_csv(cells))
    assert_readable(error)
    named = {(problem.row, problem.column) for problem in error.row_problems}
    assert set(cells) <= named, error.problems
