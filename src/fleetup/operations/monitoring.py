"""Monitoring rules: pure functions from what the fleet reported to what should be alerted.

No database and no clock here: the caller hands in the machines' last heartbeats and reported
anomalies, the waves' counts, the open alerts, the silences and ``now``; :func:`plan` answers
which alerts to open, bump, mute or resolve. The rules, in the on-call engineer's words:

- a machine that has not sent a heartbeat for longer than the threshold is offline;
- a site whose monitored machines are all offline (and that has at least a few) is one alert,
  and its machines' own offline alerts are muted under it;
- a wave whose share of failed machines passes the rate (with a minimum count) alerts;
- an anomaly the agent reported in its health (``{"anomalies": [...]}``) alerts;
- the same rule on the same subject is one alert, counted, never a second one;
- a silence (rule and/or subject, until a time) mutes matching alerts until it expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

HEARTBEAT_MISSING = "heartbeat_missing"
SITE_OFFLINE = "site_offline"
WAVE_FAILURE_SPIKE = "wave_failure_spike"
DATA_ANOMALY = "data_anomaly"
RULES = (HEARTBEAT_MISSING, SITE_OFFLINE, WAVE_FAILURE_SPIKE, DATA_ANOMALY)


@dataclass(frozen=True)
class Rules:
    """The thresholds, from the settings."""

    heartbeat_missing: timedelta = timedelta(minutes=5)
    site_offline_min_machines: int = 2
    wave_failure_rate: float = 0.2
    wave_failure_min: int = 3


@dataclass(frozen=True)
class MachineBeat:
    """One monitored machine: its site, when it was last heard from, what it reported."""

    serial: str
    site: str
    last_seen: datetime
    anomalies: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class WaveStats:
    """Counts of one wave's machines, as campaigns report them."""

    code: str
    running: int
    failed: int
    total: int


@dataclass(frozen=True)
class Finding:
    """One rule that holds for one subject now."""

    rule: str
    subject_kind: str
    subject_ref: str
    site: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject_ref)


@dataclass(frozen=True)
class OpenAlert:
    """An alert that is not resolved (open or muted)."""

    id: int
    rule: str
    subject_ref: str
    status: str
    muted_by: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject_ref)


@dataclass(frozen=True)
class SilenceRule:
    id: int
    rule: str
    subject_ref: str
    until: datetime

    def matches(self, finding: Finding, now: datetime) -> bool:
        return (
            now < self.until
            and self.rule in ("", finding.rule)
            and self.subject_ref in ("", finding.subject_ref, finding.site)
        )


@dataclass
class Plan:
    """What the caller must persist: every finding goes to exactly one of open or bump.

    ``muted_by`` maps a finding's key to why it is muted (``site:<site>`` or
    ``silence:<id>``); findings not in it are live.
    """

    open: list[Finding] = field(default_factory=list)
    bump: list[tuple[OpenAlert, Finding]] = field(default_factory=list)
    resolve: list[OpenAlert] = field(default_factory=list)
    muted_by: dict[tuple[str, str], str] = field(default_factory=dict)


def evaluate(
    now: datetime,
    machines: Sequence[MachineBeat],
    waves: Iterable[WaveStats],
    rules: Rules,
    site_sizes: Mapping[str, int] | None = None,
) -> list[Finding]:
    """Every rule that holds now, one finding per rule and subject.

    ``machines`` is the whole fleet, or, when ``site_sizes`` gives every site's number of
    monitored machines, only the machines worth a look (silent or reporting anomalies): a
    machine that beats and reports nothing raises no finding, so a large fleet need not be
    read in full at every look.
    """
    findings: list[Finding] = []
    offline: dict[str, list[MachineBeat]] = {}
    by_site: dict[str, list[MachineBeat]] = {}
    for machine in machines:
        by_site.setdefault(machine.site, []).append(machine)
        silent = now - machine.last_seen
        if silent > rules.heartbeat_missing:
            offline.setdefault(machine.site, []).append(machine)
            findings.append(
                Finding(
                    HEARTBEAT_MISSING,
                    "machine",
                    machine.serial,
                    machine.site,
                    {
                        "last_seen": machine.last_seen.isoformat(),
                        "silent_s": int(silent.total_seconds()),
                    },
                )
            )
        if machine.anomalies:
            findings.append(
                Finding(
                    DATA_ANOMALY,
                    "machine",
                    machine.serial,
                    machine.site,
                    {"anomalies": [dict(a) for a in machine.anomalies]},
                )
            )
    for site, members in by_site.items():
        down = offline.get(site, [])
        size = site_sizes.get(site, len(members)) if site_sizes is not None else len(members)
        if size >= rules.site_offline_min_machines and len(down) == size:
            serials = sorted(m.serial for m in down)
            findings.append(Finding(SITE_OFFLINE, "site", site, site, {"machines": serials}))
    for wave in waves:
        if wave.failed >= rules.wave_failure_min and wave.total > 0:
            rate = wave.failed / wave.total
            if rate >= rules.wave_failure_rate:
                detail = {"failed": wave.failed, "total": wave.total, "rate": round(rate, 3)}
                findings.append(Finding(WAVE_FAILURE_SPIKE, "wave", wave.code, "", detail))
    return findings


def plan(
    now: datetime,
    findings: Sequence[Finding],
    alerts: Sequence[OpenAlert],
    silences: Sequence[SilenceRule],
) -> Plan:
    """Match findings with the alerts already open: merge duplicates, mute, resolve the rest."""
    result = Plan()
    sites_down = {f.subject_ref for f in findings if f.rule == SITE_OFFLINE}
    for finding in findings:
        silence = next((s for s in silences if s.matches(finding, now)), None)
        if silence is not None:
            result.muted_by[finding.key] = f"silence:{silence.id}"
        elif finding.rule == HEARTBEAT_MISSING and finding.site in sites_down:
            result.muted_by[finding.key] = f"site:{finding.site}"
    existing = {alert.key: alert for alert in alerts}
    seen: set[tuple[str, str]] = set()
    for finding in findings:
        if finding.key in seen:
            continue
        seen.add(finding.key)
        alert = existing.get(finding.key)
        if alert is None:
            result.open.append(finding)
        else:
            result.bump.append((alert, finding))
    result.resolve = [alert for alert in alerts if alert.key not in seen]
    return result
