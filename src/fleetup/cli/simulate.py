"""``fleetup simulate``: a virtual fleet with injected faults, driven on simulated time."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleetup.cli.common import console, settings
from fleetup.sim.faults import PROFILES
from fleetup.sim.result import SimResult


def print_result(result: SimResult) -> None:
    """The final counts as Rich tables."""
    waves = Table("wave", "status", "machines", "succeeded", "failed", "unfinished", title="Waves")
    for code, count in sorted(result.waves.items()):
        waves.add_row(
            code,
            count.status,
            str(count.planned),
            str(count.succeeded),
            str(count.failed),
            str(count.unfinished),
        )
    console.print(waves)
    steps = Table("step", "runs", "mean min", "p95 min", title="Automated steps")
    for name, row in result.durations().items():
        steps.add_row(name, f"{row['count']:.0f}", f"{row['mean']:.1f}", f"{row['p95']:.1f}")
    console.print(steps)
    other = Table("what", "kind", "count", title="Problems, faults, incidents, people")
    for title, counter in (
        ("problem", result.problems),
        ("fault injected", result.faults),
        ("incident", result.incidents),
        ("visit", result.outcomes),
        ("gate decision", result.decisions),
        ("survey", result.surveys),
    ):
        for kind, times in sorted(counter.items()):
            other.add_row(title, kind, str(times))
    for kind, times in sorted(result.errors.items()):
        other.add_row("refused call", kind, str(times))
    console.print(other)
    blockers = result.shutdown_blockers
    console.print(
        f"Acceptances signed: {result.acceptances}. Old system: "
        + (
            "shut down."
            if result.shut_down
            else "not asked to shut down yet."
            if blockers is None
            else f"still on; {blockers} blockers."
        )
    )
    console.print(
        f"{result.machines} machines, {result.succeeded} upgraded, {result.failed} not; "
        f"{result.simulated_days} simulated days in {result.wall_seconds} s "
        f"({result.requests} requests, {result.clock_moves} clock moves)."
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        machines: int = typer.Option(90, min=1, help="How many machines (90: the sample)."),
        seed: int = typer.Option(1, help="Seed: the same seed gives the same final counts."),
        profile: str = typer.Option("realistic", help=f"Fault profile: {', '.join(PROFILES)}."),
        speed: float = typer.Option(
            0.0, min=0, help="Simulated seconds per real second; 0: as fast as possible."
        ),
        url: str = typer.Option(
            "", help="Drive a running `fleetup serve --simulated-clock` at this URL."
        ),
        weeks: int = typer.Option(16, min=1, max=52, help="How many weeks to simulate."),
    ) -> None:
        """Run the campaign with a simulated fleet, technicians and customers."""
        from fleetup.sim.runner import DEFAULT_START, Options, run  # it loads the server

        if profile not in PROFILES:
            raise typer.BadParameter(f"choose one of {', '.join(PROFILES)}", param_hint="--profile")
        options = Options(
            machines=machines,
            seed=seed,
            profile=profile,
            speed=speed or None,
            weeks=weeks,
            starts_on=DEFAULT_START,
        )
        with Progress(
            TextColumn("[bold]simulating"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("", total=weeks * 7)

            def progress(now: datetime, end: datetime) -> None:
                days = weeks * 7 - (end - now).total_seconds() / 86400
                bar.update(task, completed=days, description=now.strftime("%Y-%m-%d %H:%M"))

            result = run(settings(), options, url=url or None, progress=progress)
        print_result(result)
