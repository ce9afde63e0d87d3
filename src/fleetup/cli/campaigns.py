"""``fleetup campaign ...`` and ``fleetup report``: the campaign from the terminal."""

from __future__ import annotations

from datetime import date

import typer
from rich.table import Table

from fleetup.campaigns import presenting, report, service, shutdown, waves
from fleetup.campaigns.report import CampaignReport
from fleetup.campaigns.schemas import CampaignIn, ShutdownIn
from fleetup.cli.common import cli_context, cli_session, console, refused, settings
from fleetup.core.errors import FleetupError
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
) -> None:
    """Create a campaign from chart 1: phases, activities, waves D1-E3."""
    try:
        data = CampaignIn(
            name=name, release_version=release, starts_on=date.fromisoformat(starts_on)
        )
        with cli_context(settings()) as ctx:
            campaign = service.create_from_template(ctx, _library(), data)
            ctx.session.flush()
            console.print(f"Campaign {campaign.id} created ({campaign.status}).")
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--starts-on") from error
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
