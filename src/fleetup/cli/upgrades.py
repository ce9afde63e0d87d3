"""``fleetup upgrade ...``: start a machine's upgrade, post an event, read it with its history."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from fleetup.cli.common import cli_context, cli_session, console, errors, refused, settings
from fleetup.core.errors import FleetupError
from fleetup.sop.model import Lang
from fleetup.upgrades import presenting, service
from fleetup.upgrades.library import SopLibrary
from fleetup.upgrades.schemas import InstanceOut


def _library() -> SopLibrary:
    return SopLibrary(settings().sop_definitions)


def _print(instance: InstanceOut) -> None:
    console.print(
        f"[bold]SOP instance {instance.id}[/bold]"
        f"  {instance.chart_id} v{instance.definition_version}"
        f"  {instance.subject_kind} {instance.subject_ref}  [cyan]{instance.status}[/cyan]"
        f"  at {instance.current_node} {instance.current_label}"
    )
    steps = Table("node", "step", "status", "by", "minutes", "budget", "checks")
    for step in instance.steps:
        actual = "" if step.actual_minutes is None else f"{step.actual_minutes:.1f}"
        style = "red" if step.over_budget else ""
        steps.add_row(
            step.node,
            step.label,
            step.status,
            ", ".join(step.performed_by),
            f"[{style}]{actual}[/{style}]" if style else actual,
            "" if step.budget_minutes is None else f"{step.budget_minutes:g}",
            ", ".join(step.checks_passed),
            style=None,
        )
    console.print(steps)
    if instance.due:
        due = ", ".join(f"{d.node} ({d.kind}: {d.label})" for d in instance.due)
        console.print(f"Due now: {due}")


def register(app: typer.Typer) -> None:
    upgrade_app = typer.Typer(
        help="Machine upgrades, run as chart 2 of the SOP.", no_args_is_help=True
    )
    app.add_typer(upgrade_app, name="upgrade")

    @upgrade_app.command("start")
    def start(serial: str, lang: Lang = typer.Option("zh-TW", "--lang")) -> None:
        """Start the upgrade of machine SERIAL."""
        library = _library()
        try:
            with cli_context(settings()) as ctx:
                instance = service.start_upgrade(ctx, library, serial=serial)
                ctx.session.flush()
                described = presenting.describe(ctx.session, library, instance, lang)
        except FleetupError as error:
            raise refused(error) from error
        _print(described)

    @upgrade_app.command("event")
    def event(
        instance_id: int,
        body: str = typer.Argument(
            ..., help='The event as JSON, e.g. \'{"type":"step_started","node":"F"}\''
        ),
        actor: str = typer.Option("cli", help="Who did it."),
        lang: Lang = typer.Option("zh-TW", "--lang"),
    ) -> None:
        """Apply one event to SOP instance INSTANCE_ID."""
        try:
            data = json.loads(body)
        except json.JSONDecodeError as error:
            errors.print(f"[red]The event is not JSON: {error}[/red]")
            raise typer.Exit(2) from error
        if not isinstance(data, dict):
            errors.print("[red]The event must be a JSON object.[/red]")
            raise typer.Exit(2)
        library = _library()
        try:
            with cli_context(settings(), actor=actor) as ctx:
                instance, effects = service.post_event(
                    ctx, library, instance_id=instance_id, event=data
                )
                described = presenting.describe(ctx.session, library, instance, lang)
        except FleetupError as error:
            raise refused(error) from error
        _print(described)
        for effect in effects:
            console.print(f"[yellow]Effect:[/yellow] {effect.kind} at {effect.node}")

    @upgrade_app.command("show")
    def show(instance_id: int, lang: Lang = typer.Option("zh-TW", "--lang")) -> None:
        """Show SOP instance INSTANCE_ID with its steps and history."""
        library = _library()
        try:
            with cli_session(settings()) as session:
                instance = service.get(session, instance_id=instance_id)
                described = presenting.describe(session, library, instance, lang)
        except FleetupError as error:
            raise refused(error) from error
        _print(described)
        history = Table("#", "at", "actor", "event", "from", "to")
        for item in described.history:
            history.add_row(
                str(item.seq),
                item.at.isoformat(timespec="seconds"),
                item.actor,
                item.type,
                item.from_node,
                item.to_node,
            )
        console.print(history)
