"""A seeded simulated campaign: driven through the campaign, repeatable, inside the windows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from fleetup.api.app import build_server
from fleetup.campaigns.models import Campaign, GateEvent, Visit, Wave
from fleetup.core import migrate
from fleetup.core.clock import utc
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.customers.models import Acceptance, SiteVisit, Survey
from fleetup.devices.models import DeviceAction, DeviceEvent
from fleetup.fleet.inventory import import_inventory
from fleetup.fleet.models import Machine, Site
from fleetup.sim.faults import PROFILES
from fleetup.sim.manager import widened
from fleetup.sim.runner import Options, run

REPO = Path(__file__).resolve().parents[2]
# Faults that touch every path of the IPC and the technician, on a fleet small enough to be quick.
STORMY = PROFILES["harsh"].with_rates(install_failure=0.3, hardware_fault=0.3, user_problem=0.3)


def _settings(path: Path, database_url: str) -> Settings:
    return Settings(var_dir=path, database_url=database_url, secret_key="test-secret-key-simulator")


def test_a_seeded_campaign_reaches_the_same_counts_twice(tmp_path: Path) -> None:
    options = Options(machines=10, seed=7, profile=STORMY)
    first = run(_settings(tmp_path / "a", f"sqlite:///{tmp_path / 'a.db'}"), options)
    second = run(_settings(tmp_path / "b", f"sqlite:///{tmp_path / 'b.db'}"), options)
    assert first.counts() == second.counts()
    assert sum(count.planned for count in first.waves.values()) == 10
    assert first.succeeded >= 1
    assert first.problems  # the stormy profile opened problems
    assert not first.errors, first.errors


def test_the_simulated_people_run_the_campaign_the_server_plans(
    tmp_path: Path, database_url: str
) -> None:
    settings = _settings(tmp_path / "var", database_url)
    result = run(settings, Options(machines=12, seed=3, profile="realistic"))
    assert not result.errors, result.errors
    parts = build_server(settings)
    with parts.sessions() as session:
        campaign = session.scalars(select(Campaign)).one()
        waves = session.scalars(select(Wave).order_by(Wave.position)).all()
        kinds = set(session.scalars(select(GateEvent.kind)))
        visits = session.scalars(select(Visit)).all()
        signed = session.scalar(select(func.count()).select_from(Acceptance))
        answered = session.scalar(
            select(func.count()).select_from(Survey).where(Survey.score.is_not(None))
        )
        confirmed = session.scalar(
            select(func.count()).select_from(SiteVisit).where(SiteVisit.answer == "confirmed")
        )
    parts.engine.dispose()
    # The manager made and started the campaign; the worker started every wave in turn; with
    # every machine migrated, the old system was shut down and week 16 closed the campaign.
    assert result.counts()["shutdown"] == {"blockers": 0, "shut_down": True}
    assert campaign.status == "completed"
    assert [w.code for w in waves] == ["D1", "D2", "E1", "E2", "E3"]
    assert all(w.started_at is not None for w in waves)
    assert {"started", "awaiting_approval", "approved", "completed"} <= kinds
    # The server booked the visits; the technicians who got them did them.
    assert {v.technician for v in visits} == set(result_technicians(visits))
    assert sum(1 for v in visits if v.status == "done") == result.succeeded + result.failed
    # The customers signed on the technician's phone, answered surveys and confirmed notices.
    assert signed == result.acceptances == result.succeeded
    assert answered == result.surveys["answered"] >= 1
    assert confirmed == result.surveys["notices_confirmed"] >= 1
    assert result.succeeded >= 10
    assert result.wakeups >= 1  # a new deployment woke its enrolled IPC at once


def result_technicians(visits: list[Visit]) -> list[str]:
    return [v.technician for v in visits if v.technician.startswith("sim-tech-")]


def test_no_install_starts_outside_the_visit_or_the_sites_window(
    tmp_path: Path, database_url: str
) -> None:
    settings = _settings(tmp_path / "var", database_url)
    result = run(settings, Options(machines=8, seed=5, profile="realistic"))
    assert result.succeeded >= 1
    parts = build_server(settings)
    with parts.sessions() as session:
        rows = session.execute(
            select(DeviceEvent.at, DeviceAction.not_before, DeviceAction.not_after, Site)
            .join(DeviceAction, DeviceEvent.action_id == DeviceAction.id)
            .join(Machine, DeviceAction.machine_id == Machine.id)
            .join(Site, Machine.site_id == Site.id)
            .where(DeviceEvent.step == "install", DeviceEvent.status == "started")
        ).all()
    parts.engine.dispose()
    assert rows
    for at, not_before, not_after, site in rows:
        assert not_before is not None and not_after is not None
        assert utc(not_before) <= utc(at) < utc(not_after)
        assert _inside(site, utc(at)), (site.code, at, site.maintenance_windows)


def _inside(site: Site, moment: datetime) -> bool:
    """Whether ``moment`` falls in one of the site's weekly windows (its own time zone)."""
    local = moment.astimezone(ZoneInfo(site.timezone))
    for window in site.maintenance_windows or []:
        start, end = (_minutes(window[key]) for key in ("start", "end"))
        now = local.hour * 60 + local.minute
        if end <= start:  # past midnight: the part after midnight belongs to the day before
            if local.weekday() in window["days"] and now >= start:
                return True
            if (local.weekday() - 1) % 7 in window["days"] and now < end:
                return True
        elif local.weekday() in window["days"] and start <= now < end:
            return True
    return not site.maintenance_windows


def _minutes(text: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    return hours * 60 + minutes


def test_a_machine_no_visit_fits_gets_a_wider_window_and_the_old_system_is_shut_down(
    tmp_path: Path, database_url: str
) -> None:
    """One site's only window (12:00-13:00) is shorter than a visit: the planner leaves its
    machine unplanned, the simulated manager widens the window as the note asks and retries,
    and once every machine is on the new platform the shutdown (E4) is recorded; the campaign
    completes at the end of week 16."""
    lines = (REPO / "examples" / "inventory.csv").read_text(encoding="utf-8-sig").splitlines()
    narrow = next(line for line in lines if ",mon-fri 12:00-13:00," in line)
    settings = _settings(tmp_path / "var", database_url)
    parts = build_server(settings)
    migrate.upgrade(parts.engine)
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="test", clock=parts.clock)
        import_inventory(ctx, "\n".join([lines[0], *lines[1:6], narrow]).encode())
        session.commit()
    serial = narrow.split(",")[12]

    result = run(settings, Options(machines=6, seed=3, profile="none", load_inventory=False))

    assert result.decisions["retry"] == 1
    assert result.succeeded == 6 and not result.errors, result.errors
    assert result.counts()["shutdown"] == {"blockers": 0, "shut_down": True}
    with parts.sessions() as session:
        site = session.scalars(
            select(Site).join(Machine, Machine.site_id == Site.id).where(Machine.serial == serial)
        ).one()
        assert [(w["start"], w["end"]) for w in site.maintenance_windows] == [("12:00", "14:00")]
        assert session.scalar(select(Campaign.shutdown_at)) is not None
        # The acceptance tasks were ticked off in weeks 15 and 16, which closed the campaign.
        assert session.scalar(select(Campaign.status)) == "completed"
    parts.engine.dispose()


def test_a_window_is_widened_to_two_hours_and_a_long_one_is_left_as_it_is() -> None:
    days = [0, 1, 2, 3, 4]
    assert widened({"days": days, "start": "12:00", "end": "13:00"})["end"] == "14:00"
    assert widened({"days": days, "start": "23:30", "end": "00:15"})["end"] == "01:30"
    long = {"days": days, "start": "22:00", "end": "06:00"}
    assert widened(long) == long
