"""``fleetup campaign ...``: a manager plans waves, tracks activities and reads visits."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fleetup.api.deps import Server
from fleetup.campaigns.scheduled import check_gates
from fleetup.cli import app
from fleetup.core.clock import ManualClock
from support import Account

pytest_plugins = ["campaigns.conftest"]
Runner = tuple[CliRunner, dict[str, str]]


def _wave(client: TestClient, manager: Account, campaign: dict[str, Any], code: str) -> Any:
    body = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=manager.headers).json()
    return next(w for w in body["waves"] if w["code"] == code)


def test_a_wave_is_resized_restarted_and_its_gate_changed_from_the_terminal(
    runner: Runner, client: TestClient, manager: Account, campaign: dict[str, Any]
) -> None:
    cli, env = runner
    number = str(campaign["id"])
    answer = cli.invoke(
        app,
        ["campaign", "wave", number, "E1", "--percent", "25", "--start", "2026-05-12T10:30",
         "--success", "90", "--advance", "approval"],
        env=env,
    )  # fmt: skip
    assert answer.exit_code == 0, answer.output
    assert "gate opens at 90% (approval), pauses at 3 failures or 20%" in answer.stdout
    e1 = _wave(client, manager, campaign, "E1")
    assert e1["selection"] == {"kind": "percent", "percent": 25.0}
    assert e1["planned_start"].startswith("2026-05-12T02:30")  # 10:30 in Taipei
    assert (e1["gate"]["success_share"], e1["gate"]["advance"]) == (0.9, "approval")
    assert e1["gate"]["error_count"] == 3  # a gate option left out keeps its value


def test_a_bad_wave_plan_names_its_field_and_changes_nothing(
    runner: Runner, client: TestClient, manager: Account, campaign: dict[str, Any]
) -> None:
    cli, env = runner
    before = _wave(client, manager, campaign, "E2")
    number = str(campaign["id"])
    two_kinds = cli.invoke(
        app, ["campaign", "wave", number, "E2", "--count", "5", "--rest"], env=env
    )
    assert two_kinds.exit_code == 2
    assert "give one of --count, --percent" in two_kinds.output
    zero = cli.invoke(app, ["campaign", "wave", number, "E2", "--count", "0"], env=env)
    assert zero.exit_code == 1
    assert "selection.count: Input should be greater than or equal to 1" in zero.output
    share = cli.invoke(app, ["campaign", "wave", number, "E2", "--success", "150"], env=env)
    assert "gate.success_share: Input should be less than or equal to 1" in share.output
    assert _wave(client, manager, campaign, "E2") == before


def test_machines_join_an_open_wave_and_an_activity_gets_its_owner(
    runner: Runner,
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    small_fleet: list[str],
) -> None:
    cli, env = runner
    number = str(campaign["id"])
    joined = cli.invoke(app, ["campaign", "join", number, "D1", *small_fleet[:2]], env=env)
    assert joined.exit_code == 0, joined.output
    assert "Wave D1: 2 machines joined." in joined.stdout
    members = client.get(
        f"/api/v1/campaigns/{number}/waves/D1/members", headers=manager.headers
    ).json()
    assert sorted(m["serial"] for m in members) == sorted(small_fleet[:2])
    again = cli.invoke(app, ["campaign", "join", number, "D2", small_fleet[0], "NOPE"], env=env)
    assert again.exit_code == 1
    assert "serials.1: no machine NOPE" in again.output

    owned = cli.invoke(
        app, ["campaign", "activity", number, "B1", "--owner", "Lin", "--status", "doing"], env=env
    )
    assert owned.exit_code == 0, owned.output
    body = client.get(f"/api/v1/campaigns/{number}", headers=manager.headers).json()
    b1 = next(a for a in body["activities"] if a["code"] == "B1")
    assert (b1["owner"], b1["status"]) == ("Lin", "doing")
    wave_activity = cli.invoke(
        app, ["campaign", "activity", number, "E1", "--status", "done"], env=env
    )
    assert wave_activity.exit_code == 1
    assert "follows its wave or the shutdown" in wave_activity.output


def test_visits_are_listed_per_technician_in_booked_order(
    runner: Runner,
    client: TestClient,
    manager: Account,
    campaign: dict[str, Any],
    clock: ManualClock,
    server_parts: Server,
) -> None:
    cli, env = runner
    url = f"/api/v1/campaigns/{campaign['id']}"
    body = {"selection": {"kind": "count", "count": 4}, "planned_start": clock.now().isoformat()}
    assert client.patch(f"{url}/waves/D1", headers=manager.headers, json=body).status_code == 200
    assert client.post(f"{url}/start", headers=manager.headers).status_code == 200
    check_gates(server_parts)
    booked = client.get(f"{url}/visits", headers=manager.headers).json()
    listed = cli.invoke(app, ["campaign", "visits", str(campaign["id"])], env=env)
    assert listed.exit_code == 0, listed.output
    positions = [listed.stdout.index(visit["serial"]) for visit in booked]
    assert positions == sorted(positions)
    bad = cli.invoke(app, ["campaign", "visits", str(campaign["id"]), "--day", "soon"], env=env)
    assert bad.exit_code == 2


def test_a_campaign_in_an_unknown_zone_is_refused_by_field(runner: Runner, release: str) -> None:
    cli, env = runner
    answer = cli.invoke(
        app,
        ["campaign", "create", "--name", "x", "--release", release, "--starts-on", "2026-03-02",
         "--timezone", "Asia/Taipai"],
        env=env,
    )  # fmt: skip
    assert answer.exit_code == 1
    assert "timezone: Value error, unknown time zone 'Asia/Taipai'" in answer.output
