"""The inventory import: the SOP's sample fleet, idempotence, refusals that change nothing."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from babel.messages.extract import extract_from_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fleetup.core import audit
from fleetup.core.context import Ctx
from fleetup.core.db import Base
from fleetup.core.errors import InvalidInput
from fleetup.core.i18n import translations
from fleetup.fleet import service
from fleetup.fleet.inventory import InventoryRefused, import_inventory
from fleetup.fleet.inventory_cells import BadCell, parse_windows
from fleetup.fleet.inventory_read import COLUMNS
from fleetup.fleet.models import Contact, Customer, Machine, Site
from fleetup.fleet.schemas import CustomerIn, MachineIn, MaintenanceWindow, SiteIn

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "inventory.csv"
BAD = REPO / "examples" / "inventory-bad.csv"
SOURCES = [
    REPO / "src/fleetup/fleet/inventory_problems.py",
    REPO / "src/fleetup/fleet/inventory_read.py",
    REPO / "src/fleetup/fleet/inventory_cells.py",
    REPO / "src/fleetup/fleet/inventory_rows.py",
    REPO / "src/fleetup/fleet/inventory.py",
    REPO / "src/fleetup/cli/inventory.py",
    REPO / "src/fleetup/api/v1/inventory.py",
]


def dump(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order, for before/after comparisons."""
    return {
        table.name: sorted(
            (tuple(row) for row in session.execute(select(table))), key=lambda r: repr(r)
        )
        for table in Base.metadata.sorted_tables
    }


def csv_bytes(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def row(serial: str, **cells: str) -> dict[str, str]:
    base = {
        "customer_code": "C01",
        "customer_name": "精密機械股份有限公司",
        "customer_existing": "是",
        "contact_name": "陳建宏",
        "contact_phone": "0912-345-678",
        "contact_email": "chen@c01.example.com",
        "contact_line_id": "jhchen",
        "site_code": "TC1",
        "site_name": "台中一廠",
        "site_address": "台中市西屯區工業區一路1號",
        "site_timezone": "",
        "maintenance_window": "mon-fri 18:00-22:00; sat 08:00-12:00",
        "serial": serial,
        "model": "CNC-V850",
        "ipc_os": "Windows 10 IoT Enterprise LTSC 2019",
        "old_system_id": f"OLD-{serial}",
        "program_version": "3.2.0",
    }
    return base | cells


def refused(ctx: Ctx, data: bytes) -> InventoryRefused:
    with pytest.raises(InventoryRefused) as caught:
        import_inventory(ctx, data)
    ctx.session.rollback()
    return caught.value


def where(error: InventoryRefused) -> list[tuple[int | None, str]]:
    return [(p.row, p.column) for p in error.row_problems]


# The sample fleet ----------------------------------------------------------------------------


def test_sample_fleet_imports_ninety_machines_across_its_customers_and_sites(ctx: Ctx) -> None:
    report = import_inventory(ctx, SAMPLE.read_bytes())
    ctx.session.commit()

    assert report.rows == 90 and report.machines.created == 90
    assert ctx.session.scalar(select(func.count(Machine.id))) == 90
    customers = ctx.session.scalar(select(func.count(Customer.id)))
    sites = ctx.session.scalar(select(func.count(Site.id)))
    assert (report.customers.created, report.sites.created) == (customers, sites)
    assert 15 <= (customers or 0) <= 20 and 25 <= (sites or 0) <= 35
    site = service.get_site(ctx.session, customer_code="YJPM", code="WG1")
    assert site.timezone == "Asia/Taipei"
    assert site.maintenance_windows == [
        {"days": [0, 1, 2, 3, 4], "start": "18:00", "end": "22:00"},
        {"days": [5], "start": "08:00", "end": "12:00"},
    ]
    assert service.get_customer(ctx.session, code="LSME").is_existing is False
    assert audit.verify(ctx.session) == []


def test_importing_the_same_file_twice_changes_nothing_and_writes_no_audit_events(
    ctx: Ctx,
) -> None:
    import_inventory(ctx, SAMPLE.read_bytes())
    ctx.session.commit()
    before, events = dump(ctx.session), audit.count(ctx.session)

    again = import_inventory(ctx, SAMPLE.read_bytes())
    ctx.session.commit()

    assert dump(ctx.session) == before
    assert audit.count(ctx.session) == events
    assert (again.machines.created, again.machines.updated, again.machines.unchanged) == (0, 0, 90)
    assert again.customers.created == again.customers.updated == 0
    assert again.sites.created == again.sites.updated == 0
    assert again.contacts.created == again.contacts.updated == 0


def test_changed_row_updates_that_machine_alone_with_one_audit_event(ctx: Ctx) -> None:
    rows = [row("M-1"), row("M-2")]
    import_inventory(ctx, csv_bytes(rows))
    ctx.session.commit()
    events = audit.count(ctx.session)

    rows[1]["program_version"] = "3.4.1"
    report = import_inventory(ctx, csv_bytes(rows))
    ctx.session.commit()

    assert (report.machines.updated, report.machines.unchanged) == (1, 1)
    assert service.get_machine(ctx.session, serial="M-2").program_version == "3.4.1"
    assert audit.count(ctx.session) == events + 1


def test_contacts_are_matched_by_name_updated_and_added_never_deleted(ctx: Ctx) -> None:
    import_inventory(ctx, csv_bytes([row("M-1")]))
    ctx.session.commit()

    rows = [row("M-1", contact_phone="0987-654-321"), row("M-2", contact_name="林怡君")]
    rows[1] |= {"contact_phone": "", "contact_email": "", "contact_line_id": ""}
    report = import_inventory(ctx, csv_bytes(rows))
    ctx.session.commit()

    assert (report.contacts.created, report.contacts.updated) == (1, 1)
    contacts = service.get_customer(ctx.session, code="C01").contacts
    assert [(c.name, c.phone) for c in contacts] == [("陳建宏", "0987-654-321"), ("林怡君", "")]
    assert contacts[0].email == "chen@c01.example.com"
    assert audit.verify(ctx.session) == []


def test_blank_cells_keep_what_the_database_holds(ctx: Ctx) -> None:
    import_inventory(ctx, csv_bytes([row("M-1")]))
    ctx.session.commit()
    sparse = {"customer_code": "C01", "site_code": "TC1", "serial": "M-1"}
    sparse |= {"model": "CNC-V850", "ipc_os": "Windows 10 IoT Enterprise LTSC 2019"}

    report = import_inventory(ctx, csv_bytes([sparse]))

    assert report.machines.unchanged == 1 and report.sites.unchanged == 1
    assert service.get_machine(ctx.session, serial="M-1").program_version == "3.2.0"
    assert service.get_site(ctx.session, customer_code="C01", code="TC1").maintenance_windows


def test_dry_run_counts_the_changes_and_writes_nothing(ctx: Ctx) -> None:
    before, events = dump(ctx.session), audit.count(ctx.session)

    report = import_inventory(ctx, SAMPLE.read_bytes(), dry_run=True)

    assert report.dry_run and report.machines.created == 90
    assert dump(ctx.session) == before and audit.count(ctx.session) == events


# Refusals ------------------------------------------------------------------------------------


def test_bad_file_is_refused_naming_each_row_and_the_database_is_untouched(ctx: Ctx) -> None:
    import_inventory(ctx, SAMPLE.read_bytes())
    ctx.session.commit()
    before = dump(ctx.session)

    error = refused(ctx, BAD.read_bytes())

    assert where(error) == [(3, "serial"), (7, "site_code"), (8, "serial")]
    assert isinstance(error, InvalidInput) and [p.row for p in error.problems] == [3, 7, 8]
    assert dump(ctx.session) == before


def test_bad_file_is_refused_on_an_empty_database_too(ctx: Ctx) -> None:
    before = dump(ctx.session)
    error = refused(ctx, BAD.read_bytes())
    assert where(error) == [(3, "serial"), (7, "site_code"), (8, "serial")]
    assert dump(ctx.session) == before


def test_problems_render_in_traditional_chinese_and_english(ctx: Ctx) -> None:
    error = refused(ctx, BAD.read_bytes())
    english = [p.message for p in error.problems_in("en")]
    chinese = [p.message for p in error.problems_in("zh-TW")]

    assert english[0] == "A value is required in serial."
    assert "Unknown site WG9 of customer YJPM" in english[1]
    assert "also on row 2" in english[2]
    assert chinese[0] == "serial 為必填欄位。"
    assert "未知的場域" in chinese[1] and "WG9" in chinese[1]
    assert "也出現在第 2 列" in chinese[2]
    assert error.message_in("zh-TW").startswith("檔案中發現 3 個問題")
    assert error.message_in("en").startswith("Problems found in the file: 3.")


def test_rows_of_one_site_that_disagree_are_refused_naming_the_later_row(ctx: Ctx) -> None:
    rows = [row("M-1"), row("M-2", site_name="台中二廠"), row("M-3", site_name="")]
    error = refused(ctx, csv_bytes(rows))
    assert where(error) == [(3, "site_name")]
    assert "on row 2" in error.row_problems[0].text("en")


def test_every_bad_cell_is_reported_at_once(ctx: Ctx) -> None:
    rows = [
        row(
            "M 1",
            contact_email="not-an-email",
            site_timezone="Asia/Taipie",
            maintenance_window="someday 18:00-22:00",
            customer_existing="maybe",
            contact_phone="call me",
        )
    ]
    error = refused(ctx, csv_bytes(rows))
    assert sorted(column for _, column in where(error)) == sorted(
        [
            "customer_existing",
            "contact_phone",
            "contact_email",
            "site_timezone",
            "maintenance_window",
            "serial",
        ]
    )


def test_new_customer_without_a_name_is_refused(ctx: Ctx) -> None:
    error = refused(ctx, csv_bytes([row("M-1", customer_name="")]))
    assert where(error) == [(2, "customer_name")]


def test_machine_registered_at_another_site_is_not_moved(ctx: Ctx) -> None:
    service.create_customer(ctx, CustomerIn(code="C01", name="精密機械"))
    service.create_site(ctx, SiteIn(customer_code="C01", code="KH1", name="高雄廠"))
    machine = MachineIn(
        serial="M-1", model="CNC", ipc_os="Debian 11", customer_code="C01", site_code="KH1"
    )
    service.create_machine(ctx, machine)
    ctx.session.commit()
    before = dump(ctx.session)

    error = refused(ctx, csv_bytes([row("M-1")]))

    assert where(error) == [(2, "serial")]
    assert "KH1" in error.row_problems[0].text("en")
    assert dump(ctx.session) == before


def test_unknown_and_missing_header_columns_are_refused(ctx: Ctx) -> None:
    data = b"customer_code,site_code,serail,model,ipc_os\nC01,TC1,M-1,X,Y\n"
    error = refused(ctx, data)
    assert where(error) == [(1, "serail"), (1, "serial")]


@pytest.mark.parametrize(
    "data",
    [b"", b"\xd0\xcf\x11\xe0 old excel", b"PK\x03\x04 not really a zip", b"\xff\xfe\x00"],
    ids=["empty", "xls", "broken-xlsx", "broken-utf16"],
)
def test_unreadable_files_are_refused_as_a_whole(ctx: Ctx, data: bytes) -> None:
    error = refused(ctx, data)
    assert [p.column for p in error.row_problems] == ["file"]


def test_workbook_with_a_damaged_sheet_is_refused(ctx: Ctx) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    sheet.append([row("M-1")[column] for column in COLUMNS])
    good = io.BytesIO()
    workbook.save(good)
    damaged = io.BytesIO()
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content[: len(content) // 2]  # cut mid-element
            target.writestr(item, content)

    error = refused(ctx, damaged.getvalue())

    assert [p.column for p in error.row_problems] == ["file"]
    assert "損毀" in error.row_problems[0].text("zh-TW")


# Other encodings and formats -----------------------------------------------------------------


def test_zh_tw_headers_in_a_big5_file_are_read(ctx: Ctx) -> None:
    aliases = {"customer_code": "客戶代碼", "customer_name": "客戶名稱", "site_code": "場域代碼"}
    aliases |= {"site_name": "場域名稱", "serial": "序號", "model": "機型"}
    aliases |= {"ipc_os": "工控機作業系統", "maintenance_window": "維護時段"}
    header = ",".join(aliases.values())
    line = "C01,精密機械股份有限公司,TC1,台中一廠,M-1,CNC-V850,Windows 7 Embedded,"
    line += "週一至週五 18:00-22:00"
    data = f"{header}\r\n{line}\r\n".encode("cp950")

    report = import_inventory(ctx, data)

    assert report.machines.created == 1
    site = service.get_site(ctx.session, customer_code="C01", code="TC1")
    assert site.name == "台中一廠"
    assert site.maintenance_windows == [{"days": [0, 1, 2, 3, 4], "start": "18:00", "end": "22:00"}]


def test_xlsx_workbook_imports_like_the_csv(ctx: Ctx) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    for serial in ("M-1", "M-2"):
        sheet.append([row(serial)[column] for column in COLUMNS])
    sheet.append([row("12345")[column] for column in COLUMNS])
    sheet.cell(row=4, column=COLUMNS.index("serial") + 1, value=12345)  # typed as a number
    buffer = io.BytesIO()
    workbook.save(buffer)

    report = import_inventory(ctx, buffer.getvalue())

    assert (report.rows, report.machines.created, report.sites.created) == (3, 3, 1)
    assert service.get_machine(ctx.session, serial="12345").site.code == "TC1"


def test_xlsx_errors_name_the_rows_excel_shows(ctx: Ctx) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    sheet.append([row("M-1")[column] for column in COLUMNS])
    sheet.append([])  # an empty row in between keeps Excel's numbering
    sheet.append([row("M-1")[column] for column in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)

    assert where(refused(ctx, buffer.getvalue())) == [(4, "serial")]


# Cells ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "mon-fri 18:00-22:00; sat 08:00-12:00",
            [([0, 1, 2, 3, 4], "18:00", "22:00"), ([5], "08:00", "12:00")],
        ),
        (
            "週一至週五 18:00～22:00；週六 8:00-12:00",
            [([0, 1, 2, 3, 4], "18:00", "22:00"), ([5], "08:00", "12:00")],
        ),
        ("fri-mon 22:00-02:00", [([0, 4, 5, 6], "22:00", "02:00")]),
        ("daily 00:00-24:00", [([0, 1, 2, 3, 4, 5, 6], "00:00", "24:00")]),
        ("mon,wed,fri 12:00-13:30", [([0, 2, 4], "12:00", "13:30")]),
        ("none", []),
    ],
)
def test_maintenance_windows_are_read_as_the_sop_writes_them(
    text: str, expected: list[tuple[list[int], str, str]]
) -> None:
    wanted = [MaintenanceWindow(days=d, start=s, end=e) for d, s, e in expected]
    assert parse_windows(text) == wanted


@pytest.mark.parametrize(
    "text", ["mon 18:00", "funday 18:00-22:00", "mon 25:00-26:00", "mon 08:00-08:00"]
)
def test_impossible_maintenance_windows_are_refused(text: str) -> None:
    with pytest.raises(BadCell):
        parse_windows(text)


def test_every_message_has_a_traditional_chinese_translation_with_the_same_placeholders() -> None:
    catalog = translations("zh-TW")
    messages = {
        message
        for path in SOURCES
        for _line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords={"N_": None, "_": None}
        )
    }
    assert len(messages) > 40
    for message in messages:
        assert isinstance(message, str)
        translated = catalog.gettext(message)
        assert translated != message, f"no zh-TW translation for {message!r}"
        placeholders = re.compile(r"\{[^}]*\}")
        assert sorted(placeholders.findall(translated)) == sorted(placeholders.findall(message))


# Garbage never gets past validation ----------------------------------------------------------


def _counts(session: Session) -> dict[str, int]:
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Customer, Contact, Site, Machine, audit.AuditEvent)
    }


_RELAXED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_RELAXED
@given(st.text(max_size=400) | st.binary(max_size=400).map(lambda b: b.decode("latin-1")))
def test_random_text_is_refused_with_invalid_input_and_writes_nothing(
    ctx: Ctx, garbage: str
) -> None:
    before = _counts(ctx.session)
    for data in (garbage.encode("utf-8"), garbage.encode("utf-8", "replace")[::-1]):
        with pytest.raises(InvalidInput):
            import_inventory(ctx, data)
        assert _counts(ctx.session) == before
        ctx.session.rollback()


_CELL = st.sampled_from(
    ["", "C01", "TC1", "yes", "否", "Asia/Taipei", "mon-fri 18:00-22:00", "a@b.example.com", "M-1"]
) | st.text(max_size=12)


@_RELAXED
@given(st.lists(st.lists(_CELL, min_size=len(COLUMNS), max_size=len(COLUMNS)), max_size=6))
def test_random_rows_under_a_good_header_are_imported_or_refused_cleanly(
    ctx: Ctx, rows: list[list[str]]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    before = _counts(ctx.session)
    try:
        import_inventory(ctx, buffer.getvalue().encode())
    except InvalidInput:
        assert _counts(ctx.session) == before
    finally:
        ctx.session.rollback()
        ctx.session.execute(text("SELECT 1"))
