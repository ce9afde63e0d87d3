"""``POST /api/v1/inventory/import``: managers only, a report, or a 422 problem naming rows."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetup.api.deps import Server
from fleetup.core.db import Base
from fleetup.core.security import Role
from fleetup.fleet.inventory_read import COLUMNS
from support import Account

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "inventory.csv"
BAD = REPO / "examples" / "inventory-bad.csv"
URL = "/api/v1/inventory/import"


def upload(path: Path) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (path.name, path.read_bytes(), "text/csv")}


def dump(server_parts: Server) -> dict[str, list[tuple[Any, ...]]]:
    with server_parts.sessions() as session:
        return {
            table.name: sorted((tuple(r) for r in session.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


def test_viewer_and_technician_are_refused_and_nothing_is_written(
    client: TestClient, make_account: Callable[..., Account], server_parts: Server
) -> None:
    before = dump(server_parts)
    for role in (Role.viewer, Role.technician):
        account = make_account(role)
        response = client.post(URL, files=upload(SAMPLE), headers=account.headers)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
    assert client.post(URL, files=upload(SAMPLE)).status_code == 401
    after = dump(server_parts)
    assert after["machines"] == before["machines"] == []


def test_manager_imports_the_sample_and_a_second_upload_changes_nothing(
    client: TestClient, make_account: Callable[..., Account], server_parts: Server
) -> None:
    manager = make_account(Role.manager)
    first = client.post(URL, files=upload(SAMPLE), headers=manager.headers)
    assert first.status_code == 200, first.text
    assert first.json()["machines"] == {"created": 90, "updated": 0, "unchanged": 0}
    listed = client.get("/api/v1/machines", headers=manager.headers)
    assert listed.json()["total"] == 90
    before = dump(server_parts)

    second = client.post(URL, files=upload(SAMPLE), headers=manager.headers)

    assert second.json()["machines"] == {"created": 0, "updated": 0, "unchanged": 90}
    assert second.json()["dry_run"] is False
    assert dump(server_parts) == before


def test_bad_file_is_a_422_problem_naming_rows_in_the_language_asked_for(
    client: TestClient, make_account: Callable[..., Account], server_parts: Server
) -> None:
    manager = make_account(Role.manager)
    before = dump(server_parts)

    english = client.post(
        URL, files=upload(BAD), headers=manager.headers | {"Accept-Language": "en-US,en;q=0.9"}
    )
    chinese = client.post(URL, files=upload(BAD), params={"lang": "zh-TW"}, headers=manager.headers)

    for response in (english, chinese):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        errors = response.json()["errors"]
        assert [(e["row"], e["field"]) for e in errors] == [
            (3, "serial"),
            (7, "site_code"),
            (8, "serial"),
        ]
    assert english.json()["errors"][1]["message"].startswith("Unknown site WG9")
    assert english.json()["detail"].startswith("Problems found in the file: 3.")
    assert chinese.json()["errors"][0]["message"] == "serial 為必填欄位。"
    assert chinese.json()["detail"].startswith("檔案中發現 3 個問題")
    assert dump(server_parts) == before


def test_accept_language_chinese_gets_chinese_messages(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    manager = make_account(Role.manager)
    response = client.post(
        URL, files=upload(BAD), headers=manager.headers | {"Accept-Language": "zh-Hant-TW"}
    )
    assert "也出現在第 2 列" in response.json()["errors"][2]["message"]


def test_dry_run_reports_and_writes_nothing(
    client: TestClient, make_account: Callable[..., Account], server_parts: Server
) -> None:
    manager = make_account(Role.manager)
    before = dump(server_parts)
    response = client.post(
        URL, files=upload(SAMPLE), params={"dry_run": True}, headers=manager.headers
    )
    assert response.status_code == 200
    assert response.json()["dry_run"] is True and response.json()["machines"]["created"] == 90
    assert dump(server_parts) == before


def test_xlsx_upload_is_imported(client: TestClient, make_account: Callable[..., Account]) -> None:
    manager = make_account(Role.manager)
    values = {"customer_code": "C01", "customer_name": "精密機械股份有限公司", "site_code": "TC1"}
    values |= {
        "site_name": "台中一廠",
        "serial": "M-0001",
        "model": "CNC-500",
        "ipc_os": "Debian 11",
    }
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    sheet.append([values.get(column, "") for column in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    response = client.post(
        URL, files={"file": ("fleet.xlsx", buffer.getvalue(), kind)}, headers=manager.headers
    )

    assert response.status_code == 200, response.text
    machine = client.get("/api/v1/machines/M-0001", headers=manager.headers).json()
    assert machine["site_name"] == "台中一廠"
