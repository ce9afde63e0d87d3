"""The operations jobs: watch the fleet, escalate unanswered incidents, follow device actions.

``watch`` reads what the machines reported, asks the pure rules in ``monitoring`` what to
alert, and persists it: alerts opened, counted, muted, resolved; live alerts open or join
incidents; a data anomaly starts its runbook; a problem an agent reported is opened.
``escalate`` keeps the on-call promise. ``follow`` finishes playbook and runbook steps whose
device action has reported. Each runs in its own transaction and finds nothing to do twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from fleetup.core.audit import snapshot
from fleetup.core.clock import utc
from fleetup.core.config import Settings
from fleetup.core.context import Ctx
from fleetup.core.db import UTCDateTime
from fleetup.devices.models import Device
from fleetup.fleet.models import Customer, Machine, Site
from fleetup.operations import incidents, monitoring, outside, problems, runbook
from fleetup.operations.models import Alert, Silence
from fleetup.upgrades.library import SopLibrary
from fleetup.worker import Job

if TYPE_CHECKING:
    from fleetup.api.deps import Server

# The worker looks every second; ``watch_when_due`` runs the rules every ``watch_every_s``.
WATCH_LOOK = timedelta(seconds=1)
LAST_WATCH = "_operations_last_watch"
# Escalation looks every 5 s (one indexed query) so the promise is kept to within 5 s whatever
# the moment an incident opened; every 15 s would let it run up to 14 s late.
ESCALATE_EVERY = timedelta(seconds=5)
FOLLOW_EVERY = timedelta(seconds=30)


def rules_of(settings: Settings) -> monitoring.Rules:
    return monitoring.Rules(
        heartbeat_missing=timedelta(seconds=settings.heartbeat_missing_s),
        site_offline_min_machines=settings.site_offline_min_machines,
        wave_failure_rate=settings.wave_failure_rate,
        wave_failure_min=settings.wave_failure_min,
    )


def escalation_of(settings: Settings) -> incidents.Escalation:
    return incidents.Escalation(
        promise=timedelta(minutes=settings.ack_promise_min),
        chain=tuple(settings.escalation_chain),
    )


def site_key(customer_code: str, site_code: str) -> str:
    return f"{customer_code}/{site_code}"


def _worth_reading(
    silent_before: datetime | ColumnElement[datetime],
) -> ColumnElement[bool]:
    """A monitored device silent since before ``silent_before`` or whose last health report
    names anomalies or a problem. Each branch is indexed (``last_seen``, ``reporting``), so
    asking it of a healthy fleet does not read the fleet."""
    return and_(
        Device.revoked.is_(False),
        or_(
            Device.last_seen < silent_before,
            and_(Device.last_seen.is_(None), Device.enrolled_at < silent_before),
            Device.reporting.is_(True),
        ),
    )


def machine_beats(
    session: Session, *, silent_before: datetime
) -> tuple[list[monitoring.MachineBeat], dict[str, Any], dict[str, int]]:
    """The machines worth a look, the problems their agents reported, and their sites' sizes.

    Worth a look: enrolled machines last heard from before ``silent_before``, and those whose
    last health report names anomalies or a problem (``Device.reporting``). A fleet that beats
    and reports nothing costs this one query; the sizes are read only for the sites of the
    machines found.
    """
    found = session.execute(
        select(
            Machine.serial,
            Site.code,
            Customer.code,
            Device.last_seen,
            Device.enrolled_at,
            Device.health,
        )
        .join(Machine, Device.machine_id == Machine.id)
        .join(Site, Machine.site_id == Site.id)
        .join(Customer, Site.customer_id == Customer.id)
        .where(_worth_reading(silent_before))
    ).all()
    # Sorted here, not by the query: ordered by serial, SQLite walks every machine in serial
    # order instead of the indexes that find the few devices worth a look.
    rows = sorted(found, key=lambda row: str(row[0]))
    beats = []
    reported: dict[str, Any] = {}
    for serial, site_code, customer_code, last_seen, enrolled_at, raw_health in rows:
        health = raw_health if isinstance(raw_health, dict) else {}
        raw = health.get("anomalies") or []
        anomalies = tuple(dict(a) for a in raw if isinstance(a, dict))
        seen = utc(last_seen or enrolled_at)
        beats.append(
            monitoring.MachineBeat(serial, site_key(customer_code, site_code), seen, anomalies)
        )
        if health.get("problem"):
            reported[serial] = health["problem"]
    if not rows:
        return beats, reported, {}
    sizes = session.execute(
        select(Customer.code, Site.code, func.count())
        .select_from(Device)
        .join(Machine, Device.machine_id == Machine.id)
        .join(Site, Machine.site_id == Site.id)
        .join(Customer, Site.customer_id == Customer.id)
        .where(
            Device.revoked.is_(False),
            Site.code.in_({site for _, site, *_ in rows}),
            Customer.code.in_({customer for _, _, customer, *_ in rows}),
        )
        .group_by(Customer.code, Site.code)
    ).all()
    site_sizes = {site_key(customer, site): int(count) for customer, site, count in sizes}
    return beats, reported, site_sizes


def _waves(session: Session) -> list[monitoring.WaveStats]:
    found = outside.wave_stats(session) or []
    return [
        monitoring.WaveStats(
            code=str(getattr(w, "code", "")),
            running=int(getattr(w, "running", 0)),
            failed=int(getattr(w, "failed", 0)),
            total=int(getattr(w, "total", 0)),
        )
        for w in found
    ]


def _open_alerts(session: Session) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert).where(Alert.status.in_(("open", "muted"))).order_by(Alert.id)
        ).all()
    )


def _silences(session: Session, now: datetime) -> list[monitoring.SilenceRule]:
    rows = session.scalars(select(Silence).where(Silence.until > now)).all()
    return [monitoring.SilenceRule(s.id, s.rule, s.subject_ref, utc(s.until)) for s in rows]


def _changed(alert: Alert, finding: monitoring.Finding) -> bool:
    def strip(detail: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in detail.items() if k != "silent_s"}

    return strip(alert.detail) != strip(finding.detail)


def evaluate_and_store(ctx: Ctx, settings: Settings, library: SopLibrary) -> int:
    """One pass of monitoring inside the caller's transaction; returns alerts changed."""
    now = ctx.now()
    rules = rules_of(settings)
    beats, reported, site_sizes = machine_beats(
        ctx.session, silent_before=now - rules.heartbeat_missing
    )
    findings = monitoring.evaluate(now, beats, _waves(ctx.session), rules, site_sizes)
    alerts = _open_alerts(ctx.session)
    rows = {a.id: a for a in alerts}
    views = [
        monitoring.OpenAlert(a.id, a.rule, a.subject_ref, a.status, a.muted_by) for a in alerts
    ]
    plan = monitoring.plan(now, findings, views, _silences(ctx.session, now))
    changed = 0
    live: list[Alert] = []
    for finding in plan.open:
        muted = plan.muted_by.get(finding.key, "")
        alert = Alert(
            rule=finding.rule,
            subject_kind=finding.subject_kind,
            subject_ref=finding.subject_ref,
            site=finding.site,
            status="muted" if muted else "open",
            muted_by=muted,
            count=1,
            detail=dict(finding.detail),
            first_seen=now,
            last_seen=now,
        )
        ctx.session.add(alert)
        ctx.session.flush()
        ctx.audit("create", alert, None)
        changed += 1
        if not muted:
            live.append(alert)
    for view, finding in plan.bump:
        alert = rows[view.id]
        muted = plan.muted_by.get(finding.key, "")
        status = "muted" if muted else "open"
        if status == alert.status and muted == alert.muted_by and not _changed(alert, finding):
            continue
        before = snapshot(alert)
        if _changed(alert, finding):
            alert.count += 1
        alert.detail = dict(finding.detail)
        alert.last_seen = now
        alert.status = status
        alert.muted_by = muted
        ctx.audit("update", alert, before)
        changed += 1
        if status == "open" and alert.incident_id is None:
            live.append(alert)
    for view in plan.resolve:
        alert = rows[view.id]
        before = snapshot(alert)
        alert.status = "resolved"
        alert.resolved_at = now
        ctx.audit("resolve", alert, before)
        changed += 1
        if alert.incident_id is not None:
            incident = incidents.get(ctx.session, incident_id=alert.incident_id)
            incidents.note(ctx, incident, "alert", f"resolved: {alert.rule} {alert.subject_ref}")
    escalation = escalation_of(settings)
    for alert in live:
        incident, opened = incidents.open_for_alert(ctx, library, escalation, alert=alert)
        if opened and incident.kind == "data":
            runbook.begin(
                ctx, library, incident_id=incident.id, pause_after=settings.anomaly_wave_pause
            )
    for serial, report in reported.items():
        if problems.open_reported(ctx, library, serial=serial, report=report) is not None:
            changed += 1
    return changed


# The moment before which a machine counts as silent, as the worker's question binds it.
SILENT_BEFORE = "watch_silent_before"


def watch_pending(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """Whether a pass of monitoring can find or change anything: a machine silent since
    before ``SILENT_BEFORE`` or reporting something, an alert still open, or a started wave
    with a failure. The worker asks it with the other jobs' conditions, so most looks at a
    healthy fleet cost no query of their own."""
    silent_before = bindparam(SILENT_BEFORE, type_=UTCDateTime())
    conditions: list[ColumnElement[bool]] = [
        select(Device.id).where(_worth_reading(silent_before)).exists(),
        select(Alert.id).where(Alert.status.in_(("open", "muted"))).exists(),
    ]
    failures = outside.wave_failures()
    if failures is not None:
        conditions.append(failures)
    return or_(*conditions)


def watch_params(parts: Server, now: datetime) -> dict[str, Any]:
    return {SILENT_BEFORE: now - rules_of(parts.settings).heartbeat_missing}


_LOOK: list[Select[tuple[bool]]] = []  # worth_a_look's question, built on first use


def worth_a_look(session: Session, *, silent_before: datetime) -> bool:
    """``watch_pending``, asked on its own: one query."""
    if not _LOOK:
        _LOOK.append(select(watch_pending(bindparam("pending_now", type_=UTCDateTime()))))
    found = session.connection().execute(_LOOK[0], {SILENT_BEFORE: silent_before})
    return bool(found.scalar())


def watch(parts: Server) -> int:
    with parts.sessions() as session:
        silent_before = parts.clock.now() - rules_of(parts.settings).heartbeat_missing
        if not worth_a_look(session, silent_before=silent_before):
            return 0
        ctx = Ctx(session=session, actor="system:monitoring", clock=parts.clock)
        changed = evaluate_and_store(ctx, parts.settings, parts.library)
        session.commit()
    return changed


def watch_when_due(parts: Server) -> int:
    """``watch`` at the configured interval (``watch_every_s``); the worker looks every second."""
    now = parts.clock.now()
    last: datetime | None = getattr(parts, LAST_WATCH, None)
    if last is not None and now - last < timedelta(seconds=parts.settings.watch_every_s):
        return 0
    setattr(parts, LAST_WATCH, now)
    return watch(parts)


def escalate(parts: Server) -> int:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="system:escalation", clock=parts.clock)
        handled = incidents.escalate_due(ctx, escalation_of(parts.settings))
        session.commit()
    return handled


def follow_pending(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    return or_(problems.follow_pending(), runbook.follow_pending())


def follow(parts: Server) -> int:
    with parts.sessions() as session:
        ctx = Ctx(session=session, actor="system:operations", clock=parts.clock)
        handled = problems.follow(ctx, parts.library) + runbook.follow(ctx, parts.library)
        session.commit()
    return handled


JOBS = [
    Job(
        "operations.watch",
        WATCH_LOOK,
        watch_when_due,
        pending=watch_pending,
        params=watch_params,
    ),
    Job(
        "operations.escalate",
        ESCALATE_EVERY,
        escalate,
        pending=incidents.escalation_pending,
    ),
    Job("operations.follow", FOLLOW_EVERY, follow, pending=follow_pending),
]
