"""The campaign dashboard, its gate decisions, the report and the exports, as pages."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from web_helpers import csrf_token, sign_in

from campaigns.conftest import settle
from fleetup.api.deps import Server
from fleetup.campaigns import report
from fleetup.campaigns.report import CampaignReport, StepLine
from fleetup.campaigns.scheduled import check_gates
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from fleetup.fleet import service as fleet
from fleetup.fleet.schemas import MachineState, MachineUpdate
from support import Account

pytest_plugins = ["campaigns.conftest"]


@pytest.fixture
def running(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    clock: ManualClock,
    server_parts: Server,
) -> dict[str, Any]:
    """The campaign running, with wave D1 (4 machines) started now; one machine succeeded."""
    url = f"/api/v1/campaigns/{campaign['id']}"
    body = {"selection": {"kind": "count", "count": 4}, "planned_start": clock.now().isoformat()}
    assert client.patch(f"{url}/waves/D1", headers=manager.headers, json=body).status_code == 200
    assert client.post(f"{url}/start", headers=manager.headers).status_code == 200
    check_gates(server_parts)
    members = client.get(f"{url}/waves/D1/members", headers=manager.headers).json()
    settle(server_parts, members[0]["serial"], "succeeded")
    check_gates(server_parts)
    return campaign


def _as(client: TestClient, account: Account, lang: str = "en") -> TestClient:
    client.cookies.set("lang", lang)
    sign_in(client, account)
    return client


def _d1(client: TestClient, manager: Account, campaign: dict[str, Any]) -> Any:
    answer = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers)
    return next(w for w in answer.json()["waves"] if w["code"] == "D1")


def test_campaigns_leads_to_the_latest_dashboard(
    client: TestClient, manager: Account, campaign: dict[str, Any]
) -> None:
    _as(client, manager)
    answer = client.get("/campaigns", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/campaigns/{campaign['id']}"


def test_without_a_campaign_the_page_says_how_to_make_one(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    _as(client, make_account(Role.viewer))
    answer = client.get("/campaigns")
    assert answer.status_code == 200
    assert "fleetup campaign create" in answer.text
    assert "/api/v1/campaigns" in answer.text


def test_a_viewer_sees_the_gantt_the_waves_and_their_counts(
    client: TestClient, make_account: Callable[..., Account], running: dict[str, Any]
) -> None:
    _as(client, make_account(Role.viewer))
    page = client.get(f"/campaigns/{running['id']}")
    assert page.status_code == 200, page.text
    html = page.text
    for code in ("B", "C", "D", "E", "F", "B1", "E4", "F3"):
        assert f'data-code="{code}"' in html
    assert 'class="gantt__now"' in html
    assert 'class="gantt__actual' in html  # D1 has started, so its actual bar is drawn
    for code in ("D1", "D2", "E1", "E2", "E3"):
        assert f'id="wave-{code}"' in html
    assert 'data-count="total">4<' in html
    assert 'data-count="succeeded">1<' in html
    assert "Recent gate events" in html
    assert 'hx-trigger="every 3s"' in html
    assert "Reason for the decision" not in html  # a viewer decides nothing
    assert 'href="/machines/S1-M001"' in html


def test_the_dashboard_speaks_chinese(
    client: TestClient, make_account: Callable[..., Account], running: dict[str, Any]
) -> None:
    _as(client, make_account(Role.viewer), "zh-TW")
    html = client.get(f"/campaigns/{running['id']}").text
    assert "波次" in html
    assert "近期關卡事件" in html


def test_the_live_part_answers_204_until_something_changes(
    client: TestClient,
    make_account: Callable[..., Account],
    running: dict[str, Any],
    server_parts: Server,
    manager: Account,
) -> None:
    _as(client, make_account(Role.viewer))
    first = client.get(f"/campaigns/{running['id']}/live")
    assert first.status_code == 200
    since = first.text.split('data-since="', 1)[1].split('"', 1)[0]
    assert client.get(f"/campaigns/{running['id']}/live?since={since}").status_code == 204
    members = client.get(
        f"/api/v1/campaigns/{running['id']}/waves/D1/members", headers=manager.headers
    ).json()
    settle(server_parts, members[1]["serial"], "succeeded")
    check_gates(server_parts)
    changed = client.get(f"/campaigns/{running['id']}/live?since={since}")
    assert changed.status_code == 200
    assert 'data-count="succeeded">2<' in changed.text


def test_the_gantt_answers_204_until_time_or_an_activity_moves(
    client: TestClient,
    make_account: Callable[..., Account],
    running: dict[str, Any],
    clock: ManualClock,
) -> None:
    _as(client, make_account(Role.viewer))
    page = client.get(f"/campaigns/{running['id']}").text
    since = page.split('id="campaign-gantt"', 1)[1].split('data-since="', 1)[1].split('"', 1)[0]
    part = f"/campaigns/{running['id']}/gantt"
    assert client.get(f"{part}?since={since}").status_code == 204

    clock.advance(timedelta(days=2))
    moved = client.get(f"{part}?since={since}")
    assert moved.status_code == 200
    local = clock.now().astimezone(ZoneInfo(running["timezone"]))
    assert f"the line is now ({local:%Y-%m-%d %H:%M})" in moved.text
    assert 'data-code="D1"' in moved.text and "<table" in moved.text
    fresh = moved.text.split('data-since="', 1)[1].split('"', 1)[0]
    assert fresh != since
    assert client.get(f"{part}?since={fresh}").status_code == 204


def test_a_manager_pauses_a_wave_from_its_card(
    client: TestClient, manager: Account, running: dict[str, Any]
) -> None:
    _as(client, manager)
    page = client.get(f"/campaigns/{running['id']}")
    assert "Reason for the decision" in page.text
    answer = client.post(
        f"/campaigns/{running['id']}/waves/D1/decide",
        data={
            "action": "pause",
            "reason": "the customer asked",
            "csrf_token": csrf_token(page.text),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert _d1(client, manager, running)["status"] == "paused"
    shown = client.get(answer.headers["location"])
    assert "Wave D1 is paused" in shown.text
    assert "the customer asked" in shown.text  # the status reason on the card and the event


def test_a_refused_decision_is_shown_on_the_page(
    client: TestClient, manager: Account, running: dict[str, Any]
) -> None:
    _as(client, manager)
    token = csrf_token(client.get(f"/campaigns/{running['id']}").text)
    answer = client.post(
        f"/campaigns/{running['id']}/waves/D1/decide",
        data={"action": "resume", "reason": "go on", "csrf_token": token},
    )
    assert answer.status_code == 200
    assert "the decision was refused" in answer.text
    assert "only a paused wave resumes" in answer.text
    assert _d1(client, manager, running)["status"] == "running"


def test_a_viewer_cannot_pause_a_wave(
    client: TestClient,
    make_account: Callable[..., Account],
    manager: Account,
    running: dict[str, Any],
) -> None:
    _as(client, make_account(Role.viewer))
    token = csrf_token(client.get(f"/campaigns/{running['id']}").text)
    answer = client.post(
        f"/campaigns/{running['id']}/waves/D1/decide",
        data={"action": "pause", "reason": "no", "csrf_token": token},
    )
    assert answer.status_code == 403
    assert _d1(client, manager, running)["status"] == "running"


def test_a_decision_without_a_csrf_token_is_refused(
    client: TestClient, manager: Account, running: dict[str, Any]
) -> None:
    _as(client, manager)
    answer = client.post(
        f"/campaigns/{running['id']}/waves/D1/decide", data={"action": "pause", "reason": "x"}
    )
    assert answer.status_code == 403
    assert _d1(client, manager, running)["status"] == "running"


def test_csv_export_lists_every_member_under_a_translated_header(
    client: TestClient, manager: Account, running: dict[str, Any]
) -> None:
    _as(client, manager, "zh-TW")
    answer = client.get(f"/campaigns/{running['id']}/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["波次", "序號", "客戶"]
    assert len(rows) == 5
    assert {row[0] for row in rows[1:]} == {"D1"}
    assert all(row[2] == "ACME" for row in rows[1:])
    assert "成功" in [row[5] for row in rows[1:]]


def test_xlsx_exports_hold_the_members_and_the_report(
    client: TestClient, manager: Account, running: dict[str, Any]
) -> None:
    _as(client, manager)
    answer = client.get(f"/campaigns/{running['id']}/export.xlsx")
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0][:2] == ["Wave", "Serial"]
    assert len(rows) == 5
    assert sorted(r[1] for r in rows[1:]) == ["S1-M001", "S1-M002", "S1-M003", "S1-M004"]

    book = load_workbook(io.BytesIO(client.get(f"/campaigns/{running['id']}/report.xlsx").content))
    assert book.sheetnames == [
        "Waves", "Step durations", "Problems", "Satisfaction", "Incidents", "Shutdown"
    ]  # fmt: skip
    waves = [[cell.value for cell in row] for row in book["Waves"].iter_rows()]
    assert waves[1][0] == "D1" and waves[1][5] == 1


def test_report_page_shows_success_per_wave(
    client: TestClient, make_account: Callable[..., Account], running: dict[str, Any]
) -> None:
    _as(client, make_account(Role.viewer))
    page = client.get(f"/campaigns/{running['id']}/report")
    assert page.status_code == 200
    assert "Success per wave" in page.text
    row = page.text.split('<tr data-wave="D1">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="success-share">25 %</td>' in row
    assert "Shutdown of the old system (E4)" in page.text


def test_an_unknown_campaign_gets_a_friendly_404(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    _as(client, make_account(Role.viewer))
    answer = client.get("/campaigns/999")
    assert answer.status_code == 404
    assert "There is no campaign 999" in answer.text


def test_step_durations_are_drawn_against_their_budget(
    client: TestClient,
    make_account: Callable[..., Account],
    running: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = report.build

    def with_steps(*args: Any, **kwargs: Any) -> CampaignReport:
        built = real(*args, **kwargs)
        built.steps = [
            StepLine(node="C", label_zh_tw="備份", label_en="Backup", budget_minutes=30,
                     runs=3, median_minutes=45, p90_minutes=50, over_budget=2),
            StepLine(node="D", label_zh_tw="安裝", label_en="Install", budget_minutes=60,
                     runs=3, median_minutes=30, p90_minutes=40, over_budget=0),
        ]  # fmt: skip
        return built

    monkeypatch.setattr(report, "build", with_steps)
    _as(client, make_account(Role.viewer))
    for path in (f"/campaigns/{running['id']}", f"/campaigns/{running['id']}/report"):
        html = client.get(path).text
        assert html.count('<li class="step-chart__row') == 2
        assert "step-chart__row--over" in html  # C took 45 min against 30
        assert 'class="step-chart__median" x="0" y="2" height="6" width="75.0"' in html
        assert "C: median 45.0 min, budget 30.0 min" in html


def _plan(client: TestClient, campaign_id: int, code: str, **fields: str) -> Any:
    token = csrf_token(client.get(f"/campaigns/{campaign_id}").text)
    return client.post(
        f"/campaigns/{campaign_id}/waves/{code}/plan", data={**fields, "csrf_token": token}
    )


def _wave(client: TestClient, manager: Account, campaign: dict[str, Any], code: str) -> Any:
    answer = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers)
    return next(w for w in answer.json()["waves"] if w["code"] == code)


def test_each_wave_card_says_what_the_wave_takes_and_when_its_gate_opens(
    client: TestClient, make_account: Callable[..., Account], running: dict[str, Any]
) -> None:
    _as(client, make_account(Role.viewer))
    html = client.get(f"/campaigns/{running['id']}").text
    assert "Takes: 4 machines" in html  # D1, as the manager sized it
    assert "Takes: every machine no other wave takes (30 planned)" in html  # E3, the rest
    assert "Opens at 95 % succeeded, then the next wave may start; pauses at 3 failures" in html
    assert "Change the plan" not in html  # a viewer changes nothing


def test_a_manager_resizes_a_planned_wave_and_moves_its_start_from_its_card(
    client: TestClient, manager: Account, campaign: dict[str, Any]
) -> None:
    _as(client, manager)
    answer = _plan(
        client, campaign["id"], "E1",
        kind="percent", percent="25", planned_start="2027-01-25T10:30",
        success_percent="90", advance="approval", error_count="2", error_percent="",
    )  # fmt: skip
    assert answer.status_code == 200
    assert "Wave E1: the plan is saved." in answer.text
    assert "Started now, it would take 10 machines." in answer.text  # 25 % of 40
    e1 = _wave(client, manager, campaign, "E1")
    assert e1["selection"] == {"kind": "percent", "percent": 25.0}
    assert e1["planned_start"].startswith("2027-01-25T02:30")  # 10:30 in Taipei
    assert e1["gate"] == {
        "success_share": 0.9, "advance": "approval", "error_count": 2, "error_share": None,
    }  # fmt: skip
    assert "Takes: 25 % of the fleet" in answer.text


def test_a_filter_wave_names_its_customer_site_and_model(
    client: TestClient, manager: Account, campaign: dict[str, Any]
) -> None:
    _as(client, manager)
    answer = _plan(
        client, campaign["id"], "D2",
        kind="filter", customer="ACME", site="S2", model="CNC-5",
        planned_start="2027-02-01T09:00", success_percent="95", error_count="3",
    )  # fmt: skip
    assert "Started now, it would take 10 machines." in answer.text  # S2's odd serials
    assert "Takes: the machines of customer ACME, site S2, model CNC-5" in answer.text
    assert _wave(client, manager, campaign, "D2")["selection"] == {
        "kind": "filter", "customer": "ACME", "site": "S2", "model": "CNC-5",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"kind": "count", "count": "0"}, "count: Input should be greater than or equal to 1"),
        ({"kind": "count", "count": ""}, "kind: Value error, a count selection needs count"),
        ({"kind": "percent", "percent": "half"}, "percent: is not a number"),
        ({"success_percent": "120"}, "success_percent: Input should be less than or equal"),
        ({"planned_start": "next monday"}, "planned_start: is not a date and time"),
        ({"error_count": "", "error_percent": ""}, "error_count: Value error, give error_count"),
    ],
)
def test_a_plan_with_a_bad_field_names_it_and_changes_nothing(
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    fields: dict[str, str],
    named: str,
) -> None:
    _as(client, manager)
    before = _wave(client, manager, campaign, "E2")
    form = {
        "kind": "count", "count": "40", "planned_start": "2027-02-15T09:00",
        "success_percent": "95", "advance": "auto", "error_count": "3", "error_percent": "20",
    }  # fmt: skip
    answer = _plan(client, campaign["id"], "E2", **(form | fields))
    assert "Wave E2: the plan was not changed." in answer.text
    assert named in answer.text
    assert _wave(client, manager, campaign, "E2") == before


def test_a_started_wave_keeps_its_machines_and_start_but_its_gate_may_change(
    client: TestClient, manager: Account, running: dict[str, Any]
) -> None:
    _as(client, manager)
    html = client.get(f"/campaigns/{running['id']}").text
    assert 'id="kind-D1"' not in html  # what D1 takes is set once it runs
    assert 'id="kind-D2"' in html
    assert 'id="success-D1"' in html
    refused = _plan(
        client, running["id"], "D1", kind="count", count="8", success_percent="95", error_count="3"
    )
    assert "its machines and start are set" in refused.text
    saved = _plan(client, running["id"], "D1", success_percent="75", error_count="5")
    assert "Wave D1: the plan is saved." in saved.text
    d1 = _wave(client, manager, running, "D1")
    assert d1["selection"] == {"kind": "count", "count": 4}
    assert (d1["gate"]["success_share"], d1["gate"]["error_count"]) == (0.75, 5)


def test_a_viewer_cannot_change_a_plan_nor_an_activity(
    client: TestClient,
    make_account: Callable[..., Account],
    manager: Account,
    campaign: dict[str, Any],
) -> None:
    _as(client, make_account(Role.viewer))
    before = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers).json()
    assert _plan(client, campaign["id"], "E1", kind="count", count="5").status_code == 403
    token = csrf_token(client.get(f"/campaigns/{campaign['id']}").text)
    answer = client.post(
        f"/campaigns/{campaign['id']}/activities/B1",
        data={"owner": "me", "status": "done", "csrf_token": token},
    )
    assert answer.status_code == 403
    after = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers).json()
    assert after == before


def test_a_manager_tracks_an_activity_owner_and_status_in_the_table(
    client: TestClient, manager: Account, campaign: dict[str, Any], clock: ManualClock
) -> None:
    _as(client, manager)
    page = client.get(f"/campaigns/{campaign['id']}").text
    assert 'id="owner-B1"' in page
    assert 'id="owner-E1"' not in page  # a wave's activity follows its wave
    assert 'id="owner-B"' not in page  # a phase follows its activities
    answer = client.post(
        f"/campaigns/{campaign['id']}/activities/B1",
        data={"owner": "  Lin Mei-hua ", "status": "doing", "csrf_token": csrf_token(page)},
    )
    assert "Activity B1 is saved." in answer.text
    assert '<details class="campaign-details" open>' in answer.text  # back where it was made
    assert 'value="Lin Mei-hua"' in answer.text
    body = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers).json()
    b1 = next(a for a in body["activities"] if a["code"] == "B1")
    assert (b1["owner"], b1["status"]) == ("Lin Mei-hua", "doing")
    assert b1["actual_start"] is not None


def test_an_activity_that_follows_its_wave_is_refused_by_name(
    client: TestClient, manager: Account, campaign: dict[str, Any]
) -> None:
    _as(client, manager)
    token = csrf_token(client.get(f"/campaigns/{campaign['id']}").text)
    answer = client.post(
        f"/campaigns/{campaign['id']}/activities/E1",
        data={"owner": "x", "status": "done", "csrf_token": token},
    )
    assert "Activity E1 was not changed." in answer.text
    assert "follows its wave or the shutdown" in answer.text
    bad = client.post(
        f"/campaigns/{campaign['id']}/activities/B2",
        data={"owner": "x", "status": "finished", "csrf_token": token},
    )
    assert "Activity B2 was not changed." in bad.text
    assert "status: Input should be" in bad.text
    body = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers).json()
    assert {a["code"]: a["status"] for a in body["activities"]}["B2"] == "todo"


def test_a_machine_joins_a_running_wave_late_from_its_card(
    client: TestClient, manager: Account, running: dict[str, Any]
) -> None:
    _as(client, manager)
    url = f"/api/v1/campaigns/{running['id']}/waves/D1/members"
    before = client.get(url, headers=manager.headers).json()
    taken = before[0]["serial"]
    token = csrf_token(client.get(f"/campaigns/{running['id']}").text)
    refused = client.post(
        f"/campaigns/{running['id']}/waves/D1/members",
        data={"serials": f"S2-M020, NOPE\n{taken}", "csrf_token": token},
    )
    assert "Wave D1: no machine joined." in refused.text
    assert "serials.1: no machine NOPE" in refused.text
    assert f"serials.2: {taken} is in a wave already" in refused.text
    assert len(client.get(url, headers=manager.headers).json()) == len(before)

    joined = client.post(
        f"/campaigns/{running['id']}/waves/D1/members",
        data={"serials": "S2-M020", "csrf_token": token},
    )
    assert "Wave D1: the machines joined." in joined.text
    late = [m for m in client.get(url, headers=manager.headers).json() if m["serial"] == "S2-M020"]
    assert late and late[0]["late"] is True


def test_a_manager_makes_a_campaign_from_the_page_then_starts_it(
    client: TestClient, manager: Account, release: str, small_fleet: list[str]
) -> None:
    _as(client, manager)
    page = client.get("/campaigns")
    assert 'action="/campaigns"' in page.text
    assert f'<option value="{release}" selected>' in page.text
    made = client.post(
        "/campaigns",
        data={
            "name": "2027 rollout", "release_version": release, "starts_on": "2027-01-04",
            "timezone": "Asia/Taipei", "csrf_token": csrf_token(page.text),
        },
    )  # fmt: skip
    assert made.status_code == 200
    assert "made from chart 1 as a draft" in made.text
    assert "Start the campaign" in made.text
    listed = client.get("/api/v1/campaigns", headers=manager.headers).json()
    assert [(c["name"], c["status"], c["starts_on"]) for c in listed] == [
        ("2027 rollout", "draft", "2027-01-04")
    ]
    assert [w["code"] for w in listed[0]["waves"]] == ["D1", "D2", "E1", "E2", "E3"]

    started = client.post(
        f"/campaigns/{listed[0]['id']}/start", data={"csrf_token": csrf_token(made.text)}
    )
    assert "The campaign is running" in started.text
    assert "Start the campaign" not in started.text
    again = client.get(f"/api/v1/campaigns/{listed[0]['id']}", headers=manager.headers)
    assert again.json()["status"] == "running"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("starts_on", "2027-01-05", "must be a Monday"),
        ("starts_on", "soon", "Input should be a valid date"),
        ("timezone", "Mars/Olympus", "unknown time zone &#39;Mars/Olympus&#39;"),
        ("release_version", "9.9.9", "9.9.9"),
        ("name", "", "String should have at least 1 character"),
    ],
)
def test_a_campaign_with_a_bad_field_is_not_made_and_the_form_names_it(
    client: TestClient,
    manager: Account,
    release: str,
    field: str,
    value: str,
    named: str,
) -> None:
    _as(client, manager)
    form = {"name": "2027", "release_version": release, "starts_on": "2027-01-04"}
    token = csrf_token(client.get("/campaigns/new").text)
    answer = client.post("/campaigns", data=form | {field: value, "csrf_token": token})
    assert answer.status_code == 422
    assert "The campaign was not made:" in answer.text
    assert f"<strong>{field}</strong>" in answer.text
    assert named in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert client.get("/api/v1/campaigns", headers=manager.headers).json() == []


def test_a_viewer_reads_how_to_make_a_campaign_but_has_no_form(
    client: TestClient, make_account: Callable[..., Account], manager: Account, release: str
) -> None:
    _as(client, make_account(Role.viewer))
    page = client.get("/campaigns")
    assert 'action="/campaigns"' not in page.text
    assert client.get("/campaigns/new").status_code == 403
    form = {"name": "x", "release_version": release, "starts_on": "2027-01-04"}
    answer = client.post("/campaigns", data=form | {"csrf_token": csrf_token(page.text)})
    assert answer.status_code == 403
    assert client.get("/api/v1/campaigns", headers=manager.headers).json() == []


def test_a_manager_records_the_shutdown_once_nothing_blocks_it(
    client: TestClient, manager: Account, campaign: dict[str, Any], small_fleet: list[str], ctx: Ctx
) -> None:
    _as(client, manager)
    page = client.get(f"/campaigns/{campaign['id']}").text
    assert 'action="/campaigns/{}/shutdown"'.format(campaign["id"]) not in page  # 40 block it
    form = {"archive": "nas://old-system/2026.tar", "reason": "every machine moved"}
    refused = client.post(
        f"/campaigns/{campaign['id']}/shutdown", data=form | {"csrf_token": csrf_token(page)}
    )
    assert "The shutdown was not recorded." in refused.text
    assert "40 machines not on the new platform" in refused.text

    for serial in small_fleet:
        fleet.update_machine(ctx, serial=serial, data=MachineUpdate(state=MachineState.retired))
    ctx.session.commit()
    page = client.get(f"/campaigns/{campaign['id']}").text
    assert "Record the shutdown" in page
    empty = client.post(
        f"/campaigns/{campaign['id']}/shutdown",
        data={"archive": " ", "reason": "x", "csrf_token": csrf_token(page)},
    )
    assert "archive: String should have at least 1 character" in empty.text
    done = client.post(
        f"/campaigns/{campaign['id']}/shutdown", data=form | {"csrf_token": csrf_token(page)}
    )
    assert "The old system&#39;s shutdown is recorded." in done.text
    assert "its archive is kept at nas://old-system/2026.tar" in done.text
    assert "Record the shutdown" not in done.text
    gate = client.get(f"/api/v1/campaigns/{campaign['id']}/shutdown", headers=manager.headers)
    assert gate.json()["shut_down"] is True
