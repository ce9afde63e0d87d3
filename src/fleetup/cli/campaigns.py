"""``fleetup campaign ...`` and ``fleetup report``: the campaign from the terminal."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.table import Table

from fleetup.campaigns import presenting, report, service, shutdown, waves
from fleetup.campaigns.gates import GateRule
from fleetup.campaigns.report import CampaignReport
from fleetup.campaigns.schemas import ActivityUpdate, CampaignIn, ShutdownIn, WaveUpdate
from fleetup.cli.common import cli_context, cli_session, console, refused, settings
from fleetup.core.errors import FleetupError, InvalidInput
from fleetup.upgrades.library import SopLibrary

campaign_app = typer.Typer(
    help="The migration campaign: phases, waves, gates.", no_args_is_help=True
)


def _library() -> SopLibrary:
    return SopLibrary(settings().sop_definitions)


def _latest(campaign_id: int | None) -> int:
    if campaign_id is not None:
        return campaign_id
    with cli_session(settings()) as session:
        found = service.get_all(session)
    if not found:
        console.print("No campaign yet; create one with [bold]fleetup campaign create[/bold].")
        raise typer.Exit(1)
    return found[-1].id


def _share(value: float) -> str:
    return f"{value:.0%}"


def _minutes(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def print_report(data: CampaignReport) -> None:
    """The campaign report as Rich tables."""
    console.print(
        f"[bold]Campaign {data.campaign_id}: {data.name}[/bold]  [cyan]{data.status}[/cyan]"
    )
    per_wave = Table("wave", "title", "status", "gate", "machines", "done", "failed", "success")
    for line in data.waves:
        per_wave.add_row(
            line.code,
            line.title_en,
            line.status,
            line.gate_state,
            str(line.counts.total - line.counts.cancelled),
            str(line.counts.succeeded),
            str(line.counts.failed),
            _share(line.success_share),
        )
    console.print(per_wave)
    steps = Table("node", "step", "runs", "median min", "p90 min", "budget", "over budget")
    for step in data.steps:
        over = f"[red]{step.over_budget}[/red]" if step.over_budget else "0"
        steps.add_row(
            step.node,
            step.label_en,
            str(step.runs),
            _minutes(step.median_minutes),
            _minutes(step.p90_minutes),
            _minutes(step.budget_minutes),
            over,
        )
    console.print(steps)
    console.print(
        f"Per machine: median {_minutes(data.total_minutes_median) or '-'} min of timed steps "
        f"against the SOP's {_minutes(data.total_budget_minutes) or '-'}."
    )
    others = Table("figure", "value")
    problems = ", ".join(f"{k} {v}" for k, v in data.problems_by_type.items()) or "none"
    others.add_row("problems by type", problems)
    sat = data.satisfaction
    others.add_row(
        "satisfaction", f"{sat.surveys} surveys, {sat.passed} at 8 or more, {sat.loops} loops"
    )
    inc = data.incidents
    others.add_row(
        "incidents",
        f"{inc.total} ({inc.open} open), {inc.responded_within_budget} answered within 15 min, "
        f"median {_minutes(inc.median_response_minutes) or '-'} min",
    )
    block = data.shutdown
    if block.shut_down:
        state = "shut down"
    elif block.clear:
        state = "ready"
    else:
        state = (
            f"blocked: {len(block.not_migrated)} not migrated, "
            f"{len(block.open_incidents)} incidents, "
            f"{len(block.unverified_backups)} unverified backups, "
            f"{len(block.missing_acceptances)} acceptances missing"
        )
    others.add_row("old system (E4)", state)
    console.print(others)


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")

    @app.command("report")
    def report_command(
        campaign_id: int | None = typer.Argument(None, help="Default: the latest campaign."),
    ) -> None:
        """The campaign report: waves, step durations against budget, problems, satisfaction."""
        wanted = _latest(campaign_id)
        try:
            with cli_session(settings()) as session:
                print_report(report.build(session, _library(), campaign_id=wanted))
        except FleetupError as error:
            raise refused(error) from error


@campaign_app.command("create")
def create(
    name: str = typer.Option(..., help="What to call it."),
    release: str = typer.Option(..., help="The IPC program version to roll out."),
    starts_on: str = typer.Option(..., help="The Monday of week 1, YYYY-MM-DD."),
    timezone: str = typer.Option("Asia/Taipei", help="The campaign's time zone (IANA name)."),
) -> None:
    """Create a campaign from chart 1: phases, activities, waves D1-E3."""
    try:
        try:
            data = CampaignIn(
                name=name, release_version=release, starts_on=starts_on, timezone=timezone
            )
        except ValidationError as error:
            raise InvalidInput.of("the campaign is not valid", error) from error
        with cli_context(settings()) as ctx:
            campaign = service.create_from_template(ctx, _library(), data)
            ctx.session.flush()
            console.print(f"Campaign {campaign.id} created ({campaign.status}).")
    except FleetupError as error:
        raise refused(error) from error


@campaign_app.command("start")
def start(campaign_id: int = typer.Argument(...)) -> None:
    """Set a draft campaign running: its waves start at their times."""
    try:
        with cli_context(settings()) as ctx:
            service.start(ctx, campaign_id=campaign_id)
        console.print(f"Campaign {campaign_id} is running.")
    except FleetupError as error:
        raise refused(error) from error


@campaign_app.command("show")
def show(campaign_id: int | None = typer.Argument(None)) -> None:
    """Phases planned against actual, and the waves with their gates."""
    wanted = _latest(campaign_id)
    try:
        with cli_session(settings()) as session:
            out = presenting.campaign_out(session, service.get(session, campaign_id=wanted))
    except FleetupError as error:
        raise refused(error) from error
    console.print(
        f"[bold]{out.name}[/bold] release {out.release_version}  [cyan]{out.status}[/cyan]"
    )
    phases = Table("phase", "title", "weeks", "planned", "actual")
    for phase in out.phases:
        actual = (
            f"{phase.actual_start:%Y-%m-%d} → {phase.actual_end:%Y-%m-%d}"
            if phase.actual_start and phase.actual_end
            else (f"{phase.actual_start:%Y-%m-%d} →" if phase.actual_start else "")
        )
        phases.add_row(
            phase.code,
            phase.title_en,
            f"{phase.first_week}-{phase.last_week}",
            f"{phase.planned_start:%Y-%m-%d} → {phase.planned_end:%Y-%m-%d}",
            actual,
        )
    console.print(phases)
    table = Table(
        "wave", "status", "gate", "total", "scheduled", "running", "done", "failed", "held"
    )
    for wave in out.waves:
        c = wave.counts
        table.add_row(
            wave.code,
            wave.status,
            wave.gate_state,
            str(c.total),
            str(c.scheduled),
            str(c.running),
            str(c.succeeded),
            str(c.failed),
            str(c.held),
        )
    console.print(table)


def _decide(action: str) -> None:
    def command(
        campaign_id: int = typer.Argument(...),
        wave: str = typer.Argument(..., help="D1, D2, E1, E2 or E3."),
        reason: str = typer.Option(..., help="Why; kept with the decision."),
    ) -> None:
        try:
            with cli_context(settings()) as ctx:
                if action == "retry":
                    config = settings()
                    count = waves.retry(
                        ctx,
                        _library(),
                        campaign_id=campaign_id,
                        code=wave,
                        reason=reason,
                        base_url=config.effective_base_url,
                    )
                    console.print(f"Wave {wave}: {count} failed machines deployed again.")
                    return
                getattr(waves, action)(ctx, campaign_id=campaign_id, code=wave, reason=reason)
            console.print(f"Wave {wave}: {action} recorded.")
        except FleetupError as error:
            raise refused(error) from error

    command.__doc__ = f"{action.capitalize()} a wave, with a reason."
    campaign_app.command(action)(command)


for _action in ("approve", "pause", "resume", "abort", "retry"):
    _decide(_action)


@campaign_app.command("shutdown")
def shut_down(
    campaign_id: int = typer.Argument(...),
    archive: str = typer.Option(None, help="Where the old system's data archive is kept."),
    reason: str = typer.Option(None, help="Why now."),
) -> None:
    """Show what blocks the old system's shutdown (E4), or record it with --archive/--reason."""
    try:
        if archive and reason:
            with cli_context(settings()) as ctx:
                shutdown.shut_down(
                    ctx, campaign_id=campaign_id, data=ShutdownIn(reason=reason, archive=archive)
                )
            console.print("The old system's shutdown is recorded.")
            return
        with cli_session(settings()) as session:
            found = shutdown.blockers(session, campaign_id=campaign_id)
    except FleetupError as error:
        raise refused(error) from error
    for title, items in (
        ("not on the new platform", found.not_migrated),
        ("open incidents", found.open_incidents),
        ("without a verified backup", found.unverified_backups),
        ("acceptance missing", found.missing_acceptances),
    ):
        console.print(f"{title}: {len(items)}" + (f"  ({', '.join(items[:10])}…)" if items else ""))
    console.print("[green]Nothing blocks the shutdown.[/green]" if found.clear else "")


class Advance(StrEnum):
    auto = "auto"
    approval = "approval"


class Status(StrEnum):
    todo = "todo"
    doing = "doing"
    done = "done"


def _selection(
    count: int | None, percent: float | None, customer: str, site: str, model: str, rest: bool
) -> dict[str, Any] | None:
    """What a wave takes, from the one kind of option given (None: none was)."""
    kinds = {
        "count": count is not None,
        "percent": percent is not None,
        "filter": bool(customer or site or model),
        "rest": rest,
    }
    given = [kind for kind, present in kinds.items() if present]
    if len(given) > 1:
        raise typer.BadParameter(
            "give one of --count, --percent, a filter (--customer/--site/--model) or --rest",
            param_hint="/".join(f"--{kind}" for kind in given),
        )
    if not given:
        return None
    chosen: dict[str, Any] = {"kind": given[0]}
    if given[0] == "count":
        chosen["count"] = count
    elif given[0] == "percent":
        chosen["percent"] = percent
    elif given[0] == "filter":
        chosen |= {k: v for k, v in (("customer", customer), ("site", site), ("model", model)) if v}
    return chosen


@campaign_app.command("wave")
def plan_wave(
    campaign_id: int = typer.Argument(...),
    code: str = typer.Argument(..., help="D1, D2, E1, E2 or E3."),
    count: int | None = typer.Option(None, help="Take this many machines."),
    percent: float | None = typer.Option(None, help="Take this share of the fleet, in %."),
    customer: str = typer.Option("", help="Take the machines of this customer (a filter)."),
    site: str = typer.Option("", help="... of this site (a filter)."),
    model: str = typer.Option("", help="... of this model (a filter)."),
    rest: bool = typer.Option(False, "--rest", help="Take every machine no other wave takes."),
    start: str = typer.Option(
        "", help="Planned start, YYYY-MM-DDTHH:MM in the campaign's time zone."
    ),
    success: float | None = typer.Option(None, help="The gate opens at this % succeeded."),
    advance: Advance | None = typer.Option(None, help="When the gate opens: auto or approval."),
    errors: int | None = typer.Option(None, help="Pause the wave at this many failures."),
    error_share: float | None = typer.Option(None, help="... or at this % failed."),
) -> None:
    """Change what a wave takes and its start (while planned), or its gate (until it ends).

    Gate options left out keep their values; the wave's plan is printed afterwards.
    """
    selection = _selection(count, percent, customer, site, model, rest)
    try:
        moment = datetime.fromisoformat(start) if start else None
    except ValueError as error:
        raise typer.BadParameter("not YYYY-MM-DDTHH:MM", param_hint="--start") from error
    try:
        with cli_context(settings()) as ctx:
            campaign = service.get(ctx.session, campaign_id=campaign_id)
            wave = waves.get_wave(ctx.session, campaign_id=campaign_id, code=code)
            body: dict[str, Any] = {}
            if selection is not None:
                body["selection"] = selection
            if moment is not None:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=ZoneInfo(campaign.timezone))
                body["planned_start"] = moment
            changes = {
                "success_share": None if success is None else success / 100,
                "advance": advance.value if advance is not None else None,
                "error_count": errors,
                "error_share": None if error_share is None else error_share / 100,
            }
            if any(value is not None for value in changes.values()):
                current = GateRule.model_validate(wave.gate).model_dump()
                body["gate"] = current | {k: v for k, v in changes.items() if v is not None}
            if not body:
                raise typer.BadParameter("nothing to change: give a size, --start or a gate option")
            try:
                update = WaveUpdate.model_validate(body)
            except ValidationError as error:
                raise InvalidInput.of(f"the plan of wave {code} is not valid", error) from error
            changed = waves.update_wave(ctx, campaign_id=campaign_id, code=code, data=update)
            rule = GateRule.model_validate(changed.gate)
            console.print(
                f"Wave {code}: takes {changed.selection}, starts "
                f"{changed.planned_start.astimezone(ZoneInfo(campaign.timezone)):%Y-%m-%d %H:%M}; "
                f"gate opens at {rule.success_share:.0%} ({rule.advance}), pauses at "
                f"{rule.error_count} failures or {rule.error_share or 0:.0%}."
            )
    except FleetupError as error:
        raise refused(error) from error


@campaign_app.command("join")
def join(
    campaign_id: int = typer.Argument(...),
    code: str = typer.Argument(..., help="D1, D2, E1, E2 or E3."),
    serials: list[str] = typer.Argument(..., help="The machines to add."),
) -> None:
    """Add machines to a wave still open; a running wave deploys to them at once."""
    try:
        with cli_context(settings()) as ctx:
            added = waves.add_members(
                ctx,
                _library(),
                campaign_id=campaign_id,
                code=code,
                serials=serials,
                base_url=settings().effective_base_url,
            )
        console.print(f"Wave {code}: {len(added)} machines joined.")
    except FleetupError as error:
        raise refused(error) from error


@campaign_app.command("activity")
def activity(
    campaign_id: int = typer.Argument(...),
    code: str = typer.Argument(..., help="B1-B3, C1-C3 or F1-F3."),
    owner: str | None = typer.Option(None, help="Who is in charge of it."),
    status: Status | None = typer.Option(None, help="todo, doing or done."),
    note: str | None = typer.Option(None, help="A note kept with it."),
) -> None:
    """Set an activity's owner, status or note; its dates follow its status."""
    given = {"owner": owner, "status": status.value if status else None, "note": note}
    try:
        try:
            data = ActivityUpdate.model_validate({k: v for k, v in given.items() if v is not None})
        except ValidationError as error:
            raise InvalidInput.of(f"activity {code} is not valid", error) from error
        with cli_context(settings()) as ctx:
            found = service.update_activity(ctx, campaign_id=campaign_id, code=code, data=data)
            console.print(f"Activity {code}: {found.status}, owner {found.owner or '-'}.")
    except FleetupError as error:
        raise refused(error) from error


@campaign_app.command("visits")
def visits(
    campaign_id: int = typer.Argument(...),
    day: str | None = typer.Option(None, help="YYYY-MM-DD in the campaign's time zone."),
    technician: str | None = typer.Option(None, help="Only this technician's visits."),
) -> None:
    """The technicians' visits, planned against actual, in booked order."""
    if day is not None:
        try:
            date.fromisoformat(day)
        except ValueError as error:
            raise typer.BadParameter("not YYYY-MM-DD", param_hint="--day") from error
    try:
        with cli_session(settings()) as session:
            campaign = service.get(session, campaign_id=campaign_id)
            found = presenting.visits_out(session, campaign, technician=technician, day=day)
            zone = ZoneInfo(campaign.timezone)
    except FleetupError as error:
        raise refused(error) from error

    def local(moment: datetime | None) -> str:
        return f"{moment.astimezone(zone):%m-%d %H:%M}" if moment else "-"

    table = Table("technician", "planned", "travel", "machine", "site", "wave", "actual", "status")
    for visit in found:
        table.add_row(
            visit.technician,
            f"{local(visit.planned_start)}-{visit.planned_end.astimezone(zone):%H:%M}",
            f"{visit.travel_minutes:.0f}",
            visit.serial,
            f"{visit.customer} {visit.site}",
            visit.wave,
            f"{local(visit.actual_start)}-{local(visit.actual_end)}",
            visit.status,
        )
    console.print(table if found else "No visit is booked.")
