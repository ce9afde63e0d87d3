"""Reading an inventory file (CSV or XLSX) into rows of text keyed by canonical column.

The operator's fleet list arrives from customers and colleagues in whatever Excel produced:
UTF-8 with or without a BOM, Big5 (cp950) from older Taiwanese Windows, UTF-16 "Unicode text",
or an ``.xlsx`` workbook. This module only turns those bytes into ``Sheet`` rows; it knows
nothing of customers or the database. Headers may be the English column names or the zh-TW
aliases below, in any order. Row numbers are those a spreadsheet shows: the header is row 1.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, NoReturn

from fleetup.fleet.inventory_problems import FILE, N_, InventoryRefused, RowProblem

# The canonical columns, in the order the template and the examples use.
COLUMNS: tuple[str, ...] = (
    "customer_code",
    "customer_name",
    "customer_existing",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_line_id",
    "site_code",
    "site_name",
    "site_address",
    "site_timezone",
    "maintenance_window",
    "serial",
    "model",
    "ipc_os",
    "old_system_id",
    "program_version",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("customer_code", "site_code", "serial", "model", "ipc_os")

# Headers people write in zh-TW spreadsheets; matched after the same folding as English ones.
ALIASES: dict[str, tuple[str, ...]] = {
    "customer_code": ("客戶代碼", "客戶編號", "客戶代號"),
    "customer_name": ("客戶名稱", "客戶"),
    "customer_existing": ("既有客戶", "是否既有客戶", "舊客戶"),
    "contact_name": ("聯絡人", "聯絡人姓名", "窗口"),
    "contact_phone": ("聯絡電話", "電話", "手機"),
    "contact_email": ("電子郵件", "email", "e-mail", "信箱"),
    "contact_line_id": ("line id", "line_id", "line帳號", "line"),
    "site_code": ("場域代碼", "廠區代碼", "據點代碼"),
    "site_name": ("場域名稱", "廠區名稱", "據點名稱"),
    "site_address": ("地址", "場域地址", "廠區地址"),
    "site_timezone": ("時區",),
    "maintenance_window": ("維護時段", "維護時間", "maintenance_windows"),
    "serial": ("序號", "機台序號", "serial_number"),
    "model": ("機型", "型號"),
    "ipc_os": ("工控機作業系統", "ipc作業系統", "作業系統", "os"),
    "old_system_id": ("舊系統編號", "舊系統id", "舊系統代碼"),
    "program_version": ("程式版本", "版本"),
}

_BREAKS = re.compile(r"[\r\n\t]+")
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"


@dataclass(frozen=True)
class Limits:
    """How much one import may hold; a file beyond these is refused, not truncated."""

    max_bytes: int = 10 * 1024 * 1024
    max_rows: int = 10_000
    max_problems: int = 500


@dataclass(frozen=True)
class SheetRow:
    """One data row: its number in the file and its cells by canonical column ("" if blank)."""

    number: int
    cells: dict[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass(frozen=True)
class Sheet:
    """The header's canonical columns, the non-empty rows beneath it, and what was wrong there.

    ``problems`` are cells that could not be placed in a column; the importer reports them
    together with its own, so the user sees every problem of the file at once.
    """

    columns: tuple[str, ...]
    rows: tuple[SheetRow, ...]
    problems: tuple[RowProblem, ...] = ()


def fold_header(text: str) -> str:
    """``" Customer Code "``, ``customer-code`` and ``CUSTOMER_CODE`` all fold to one key."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    return "_".join(folded.replace("-", " ").replace("_", " ").split())


_HEADER_KEYS: dict[str, str] = {fold_header(name): name for name in COLUMNS} | {
    fold_header(alias): name for name, aliases in ALIASES.items() for alias in aliases
}


def read_sheet(data: bytes, *, limits: Limits | None = None) -> Sheet:
    """Read an inventory file's bytes, CSV or XLSX, whichever they are.

    Args:
        data: the file's whole content.
        limits: size caps; the defaults suit a fleet of thousands of machines.

    Returns:
        The recognised columns and every non-empty row, cells stripped of surrounding space.

    Raises:
        InventoryRefused: the file is empty, too large, not readable as CSV or XLSX, or its
            header is missing required columns, names a column twice or an unknown one.
    """
    limits = limits or Limits()
    if len(data) > limits.max_bytes:
        _refuse(
            N_("The file is larger than {limit} MB; split it into smaller files."),
            limit=limits.max_bytes // (1024 * 1024),
        )
    if data.startswith(XLS_MAGIC):
        _refuse(N_("Old .xls workbooks cannot be read; save the sheet as .xlsx or CSV."))
    records = _xlsx_records(data) if data.startswith(XLSX_MAGIC) else _csv_records(data)
    return _sheet(records, limits)


def _refuse(msgid: str, **params: str | int) -> NoReturn:
    raise InventoryRefused([RowProblem(column=FILE, msgid=msgid, params=params)])


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        # utf-8-sig reads both plain UTF-8 and Excel's BOM; cp950 is Big5 as Windows writes it.
        encodings = ("utf-8-sig", "cp950")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    _refuse(N_("The file is not text in UTF-8 or Big5, nor an .xlsx workbook."))


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    # Excel's "Unicode text" export uses tabs, some European locales semicolons.
    return max((",", "\t", ";"), key=first.count) if first else ","


def _csv_records(data: bytes) -> Iterator[list[str]]:
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    try:
        yield from reader
    except csv.Error as error:
        _refuse(
            N_("The CSV file cannot be read near line {line}: {reason}"),
            line=reader.line_num,
            reason=str(error),
        )


def _xlsx_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a serial typed as a number must not become "12345.0"
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _xlsx_records(data: bytes) -> Iterator[list[str]]:
    # Deferred: openpyxl is slow to import and most files are CSV.
    import openpyxl

    damaged = N_("The .xlsx workbook cannot be opened; it may be damaged.")
    # A damaged workbook can fail in zipfile, the XML parser or openpyxl itself, on opening or
    # on any row; all of them mean the same thing to the user.
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:
        raise InventoryRefused([RowProblem(column=FILE, msgid=damaged)]) from error
    try:
        if not workbook.worksheets:
            _refuse(N_("The workbook has no sheets."))
        # read_only sheets fill gaps with empty rows, so the enumeration matches Excel's numbers.
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except Exception as error:
                raise InventoryRefused([RowProblem(column=FILE, msgid=damaged)]) from error
            yield [_xlsx_cell(value) for value in values]
    finally:
        workbook.close()


def _clean(text: str) -> str:
    # Alt+Enter line breaks inside an Excel cell become spaces; other control characters
    # (NUL in particular, which PostgreSQL refuses) are left for validation to report.
    return _BREAKS.sub(" ", text).strip()


def _header(cells: list[str], number: int) -> tuple[dict[int, str], list[RowProblem]]:
    columns: dict[int, str] = {}
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(cells):
        title = _clean(raw)
        if not title:
            continue
        column = _HEADER_KEYS.get(fold_header(title))
        if column is None:
            problems.append(
                RowProblem(
                    column=title,
                    row=number,
                    value=title,
                    msgid=N_(
                        "Unknown column {header!r}. The columns are: {columns} "
                        "(or their Chinese names)."
                    ),
                    params={"header": title, "columns": ", ".join(COLUMNS)},
                )
            )
        elif column in seen:
            problems.append(
                RowProblem(
                    column=column,
                    row=number,
                    value=title,
                    msgid=N_("Column {column} appears twice in the header; keep one."),
                    params={"column": column},
                )
            )
        else:
            seen[column] = index
            columns[index] = column
    for column in REQUIRED_COLUMNS:
        if column not in seen:
            problems.append(
                RowProblem(
                    column=column,
                    row=number,
                    msgid=N_("The header has no {column} column; it is required."),
                    params={"column": column},
                )
            )
    return columns, problems


def _sheet(records: Iterator[list[str]], limits: Limits) -> Sheet:
    header: dict[int, str] | None = None
    rows: list[SheetRow] = []
    problems: list[RowProblem] = []
    for number, record in enumerate(records, start=1):
        if not any(cell.strip() for cell in record):
            continue  # blank lines keep their number but hold nothing
        if header is None:
            header, header_problems = _header(record, number)
            if header_problems:
                raise InventoryRefused(header_problems, max_listed=limits.max_problems)
            continue
        if len(rows) >= limits.max_rows:
            _refuse(
                N_("The file has more than {limit} rows; split it into smaller files."),
                limit=limits.max_rows,
            )
        cells = {column: "" for column in header.values()}
        for index, raw in enumerate(record):
            value = _clean(raw)
            if index in header:
                cells[header[index]] = value
            elif value:
                problems.append(
                    RowProblem(
                        column=FILE,
                        row=number,
                        value=value,
                        msgid=N_(
                            "Column {cell} holds a value but has no header; "
                            "add the header or remove the value."
                        ),
                        params={"cell": index + 1},
                    )
                )
        rows.append(SheetRow(number=number, cells=cells))
    if header is None:
        _refuse(N_("The file is empty; it needs a header row and one row per machine."))
    return Sheet(columns=tuple(header.values()), rows=tuple(rows), problems=tuple(problems))
