"""A seeded simulated campaign: repeatable, and inside the maintenance windows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from fleetup.api.app import build_server
from fleetup.core.clock import utc
from fleetup.core.config import Settings
from fleetup.devices.models import DeviceAction, DeviceEvent
from fleetup.sim.faults import PROFILES
from fleetup.sim.runner import Options, run

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


def test_no_install_starts_before_the_window_opens(tmp_path: Path, database_url: str) -> None:
    settings = _settings(tmp_path / "var", database_url)
    result = run(settings, Options(machines=6, seed=3, profile="realistic"))
    assert result.succeeded >= 1
    parts = build_server(settings)
    with parts.sessions() as session:
        rows = session.execute(
            select(DeviceEvent.at, DeviceAction.not_before, DeviceAction.not_after)
            .join(DeviceAction, DeviceEvent.action_id == DeviceAction.id)
            .where(DeviceEvent.step == "install", DeviceEvent.status == "started")
        ).all()
    parts.engine.dispose()
    assert rows
    for at, not_before, not_after in rows:
        assert not_before is not None and not_after is not None
        assert utc(not_before) <= utc(at) < utc(not_after)
