"""Monitoring: offline machines found in time, a site down as one alert, silences that expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ops_helpers import Fleet

from fleetup.api.deps import Server
from fleetup.operations import monitoring, scheduled
from fleetup.worker import Scheduler

THRESHOLD = timedelta(minutes=5)
INTERVAL = timedelta(seconds=30)  # watch_every_s by default


def _alerts(ops_fleet: Fleet, status: str = "active") -> dict[tuple[str, str], dict[str, object]]:
    found = ops_fleet.get(f"/api/v1/alerts?status={status}")
    return {(a["rule"], a["subject_ref"]): a for a in found}


def test_silent_machine_is_detected_within_threshold_plus_one_check(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    worker = Scheduler(scheduled.JOBS)
    for serial in ops_fleet.ipcs:
        beat(serial)
    silent_since = ops_fleet.clock.now()
    detected = None
    for second in range(1, 400):
        ops_fleet.clock.advance(timedelta(seconds=1))
        if second % 60 == 0:
            beat("YJ-TC1-001")
            beat("YJ-TC1-002")
        worker.run_due(server_parts)
        if ("heartbeat_missing", "YJ-TC2-001") in _alerts(ops_fleet):
            detected = ops_fleet.clock.now()
            break
    assert detected is not None
    assert THRESHOLD < detected - silent_since <= THRESHOLD + INTERVAL
    assert ("heartbeat_missing", "YJ-TC1-001") not in _alerts(ops_fleet)
    incidents = ops_fleet.get("/api/v1/incidents")
    assert [i["subject_ref"] for i in incidents] == ["YJ-TC2-001"]

    beat("YJ-TC2-001")
    ops_fleet.clock.advance(INTERVAL)
    worker.run_due(server_parts)
    assert _alerts(ops_fleet) == {}
    assert len(_alerts(ops_fleet, "resolved")) == 1


def test_whole_site_offline_is_one_alert_that_mutes_its_machines(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    for serial in ops_fleet.ipcs:
        beat(serial)
    ops_fleet.clock.advance(THRESHOLD + timedelta(seconds=1))
    beat("YJ-TC2-001")
    scheduled.watch(server_parts)

    alerts = _alerts(ops_fleet)
    assert alerts[("site_offline", "YJ/TC1")]["status"] == "open"
    assert alerts[("site_offline", "YJ/TC1")]["detail"] == {
        "machines": ["YJ-TC1-001", "YJ-TC1-002"]
    }
    for serial in ("YJ-TC1-001", "YJ-TC1-002"):
        assert alerts[("heartbeat_missing", serial)]["status"] == "muted"
        assert alerts[("heartbeat_missing", serial)]["muted_by"] == "site:YJ/TC1"
    incidents = ops_fleet.get("/api/v1/incidents")
    assert len(incidents) == 1
    assert incidents[0]["subject_ref"] == "YJ/TC1"

    # Still down a minute later: the same alerts, no duplicates, no second incident.
    ops_fleet.clock.advance(timedelta(minutes=1))
    scheduled.watch(server_parts)
    assert len(_alerts(ops_fleet)) == 3
    assert len(ops_fleet.get("/api/v1/incidents")) == 1


def test_silence_mutes_an_alert_until_it_expires(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    for serial in ops_fleet.ipcs:
        beat(serial)
    ops_fleet.post(
        "/api/v1/alerts/silences",
        {"subject_ref": "YJ-TC2-001", "minutes": 30, "reason": "planned power work"},
        who="on_call",
        code=201,
    )
    ops_fleet.clock.advance(THRESHOLD + timedelta(seconds=1))
    beat("YJ-TC1-001")
    beat("YJ-TC1-002")
    scheduled.watch(server_parts)
    alert = _alerts(ops_fleet)[("heartbeat_missing", "YJ-TC2-001")]
    assert alert["status"] == "muted"
    assert str(alert["muted_by"]).startswith("silence:")
    assert ops_fleet.get("/api/v1/incidents") == []

    ops_fleet.clock.advance(timedelta(minutes=25))
    beat("YJ-TC1-001")
    beat("YJ-TC1-002")
    scheduled.watch(server_parts)
    alert = _alerts(ops_fleet)[("heartbeat_missing", "YJ-TC2-001")]
    assert alert["status"] == "open"
    assert alert["incident_id"] is not None
    assert len(ops_fleet.get("/api/v1/incidents")) == 1
    assert ops_fleet.get("/api/v1/alerts/silences") == []


def test_viewer_may_not_silence(ops_fleet: Fleet) -> None:
    ops_fleet.post(
        "/api/v1/alerts/silences", {"subject_ref": "x", "minutes": 5}, who="viewer", code=403
    )


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_wave_failure_spike_needs_both_rate_and_count() -> None:
    rules = monitoring.Rules(wave_failure_rate=0.2, wave_failure_min=3)
    waves = [
        monitoring.WaveStats("E1", running=5, failed=3, total=10),
        monitoring.WaveStats("E2", running=5, failed=2, total=4),
        monitoring.WaveStats("E3", running=5, failed=3, total=40),
    ]
    findings = monitoring.evaluate(NOW, [], waves, rules)
    assert [(f.rule, f.subject_ref) for f in findings] == [("wave_failure_spike", "E1")]


def test_same_rule_and_subject_is_merged_into_the_open_alert() -> None:
    beat = monitoring.MachineBeat("M1", "S/1", NOW - timedelta(minutes=10))
    findings = monitoring.evaluate(NOW, [beat], [], monitoring.Rules(site_offline_min_machines=2))
    existing = monitoring.OpenAlert(7, "heartbeat_missing", "M1", "open", "")
    result = monitoring.plan(NOW, [*findings, *findings], [existing], [])
    assert result.open == []
    assert [alert.id for alert, _ in result.bump] == [7]
    assert result.resolve == []


def test_expired_silence_no_longer_mutes() -> None:
    finding = monitoring.Finding("heartbeat_missing", "machine", "M1", "S/1")
    silence = monitoring.SilenceRule(1, "", "M1", NOW)
    assert monitoring.plan(NOW, [finding], [], [silence]).muted_by == {}
    earlier = NOW - timedelta(seconds=1)
    assert monitoring.plan(earlier, [finding], [], [silence]).muted_by == {
        ("heartbeat_missing", "M1"): "silence:1"
    }


def test_the_watch_reads_only_silent_or_reporting_machines_and_their_sites_sizes(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    for serial in ops_fleet.ipcs:
        beat(serial)
    ops_fleet.clock.advance(THRESHOLD + timedelta(seconds=1))
    beat("YJ-TC1-001")  # heard from, nothing to report: not read
    beat("YJ-TC1-002", health={"anomalies": [{"kind": "changed", "path": "recipes/a.db"}]})
    with server_parts.sessions() as session:
        beats, reported, sizes = scheduled.machine_beats(
            session, silent_before=ops_fleet.clock.now() - THRESHOLD
        )
    assert [(b.serial, bool(b.anomalies)) for b in beats] == [
        ("YJ-TC1-002", True),
        ("YJ-TC2-001", False),
    ]
    assert reported == {}
    assert sizes == {"YJ/TC1": 2, "YJ/TC2": 1}
    findings = monitoring.evaluate(
        ops_fleet.clock.now(), beats, [], monitoring.Rules(heartbeat_missing=THRESHOLD), sizes
    )
    assert sorted((f.rule, f.subject_ref) for f in findings) == [
        ("data_anomaly", "YJ-TC1-002"),
        ("heartbeat_missing", "YJ-TC2-001"),
    ]


def test_a_site_is_down_only_when_all_its_machines_are_silent_not_all_those_read() -> None:
    silent = monitoring.MachineBeat("M1", "S/1", NOW - timedelta(minutes=10))
    rules = monitoring.Rules(heartbeat_missing=THRESHOLD, site_offline_min_machines=1)

    def sites_down(sizes: dict[str, int]) -> list[str]:
        findings = monitoring.evaluate(NOW, [silent], [], rules, sizes)
        return [f.subject_ref for f in findings if f.rule == "site_offline"]

    assert sites_down({"S/1": 2}) == []  # its other machine beats, so it was not read
    assert sites_down({"S/1": 1}) == ["S/1"]


def test_a_look_at_a_healthy_fleet_stops_at_one_question(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    def worth_a_look() -> bool:
        with server_parts.sessions() as session:
            return scheduled.worth_a_look(session, silent_before=ops_fleet.clock.now() - THRESHOLD)

    for serial in ops_fleet.ipcs:
        beat(serial)
    assert not worth_a_look()
    assert scheduled.watch(server_parts) == 0

    beat("YJ-TC1-002", health={"anomalies": [{"kind": "changed", "path": "recipes/a.db"}]})
    assert worth_a_look()
    beat("YJ-TC1-002")
    assert not worth_a_look()

    ops_fleet.clock.advance(THRESHOLD + timedelta(seconds=1))
    assert worth_a_look()  # every machine is silent now
    assert scheduled.watch(server_parts) > 0  # and the look opens their alerts
    for serial in ops_fleet.ipcs:
        beat(serial)
    assert worth_a_look()  # the open alerts are still to be resolved
    scheduled.watch(server_parts)
    assert not worth_a_look()


def test_the_worker_skips_the_watch_of_a_healthy_fleet_and_runs_it_for_a_silent_one(
    ops_fleet: Fleet, server_parts: Server, beat: Callable[..., None]
) -> None:
    scheduler = Scheduler(scheduled.JOBS[:1])  # the watch alone
    for serial in ops_fleet.ipcs:
        beat(serial)
    assert scheduler.run_due(server_parts) == {}  # asked with the other jobs, found idle

    ops_fleet.clock.advance(THRESHOLD + timedelta(seconds=1))
    ran = scheduler.run_due(server_parts)
    assert ran["operations.watch"] > 0
    assert "site_offline" in {a["rule"] for a in _alerts(ops_fleet).values()}
