"""``fleetup serve`` (with the worker in a background thread) and ``fleetup db upgrade``.

On simulated time the server resumes where its database says the clock was, when that is
later than ``--simulated-clock``: a server killed and started again with the same command
goes on from the moment it had reached, never back to the campaign's first day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from fleetup.cli.common import console, settings
from fleetup.core.clock import ManualClock
from fleetup.core.simulated_clock import stored_now

if TYPE_CHECKING:
    from fleetup.api.deps import Server


def resume_clock(parts: Server) -> None:
    """Move a simulated clock to the moment stored by an earlier run, if that is later."""
    clock = parts.clock
    if not isinstance(clock, ManualClock):
        return
    with parts.sessions() as session:
        stored = stored_now(session)
    if stored is not None and stored > clock.now():
        clock.set(stored)


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def db_upgrade() -> None:
        """Apply every migration that has not been applied yet."""
        from fleetup.api.app import build_server
        from fleetup.core import migrate

        config = settings()
        parts = build_server(config)
        before = migrate.current_revision(parts.engine)
        migrate.upgrade(parts.engine)
        after = migrate.current_revision(parts.engine)
        if before == after:
            console.print(f"The database is up to date (revision {after}).")
        else:
            console.print(f"Upgraded the database from {before or 'empty'} to {after}.")

    @app.command()
    def serve(
        host: str = typer.Option(None, help="Address to listen on; default from settings."),
        port: int = typer.Option(None, help="Port; default from settings."),
        simulated_clock: datetime | None = typer.Option(
            None,
            formats=["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
            help="Run on simulated time from this UTC moment (moved by POST "
            "/api/v1/simulation/clock), e.g. 2026-03-02T00:00:00Z.",
        ),
        no_worker: bool = typer.Option(
            False,
            "--no-worker",
            help="Serve only; run the periodic jobs in `fleetup worker` (several API processes).",
        ),
    ) -> None:
        """Migrate the database, then serve the API and the web app."""
        # The server's own modules load here, not when any command starts.
        import uvicorn

        from fleetup.api.app import build_server, create_app
        from fleetup.core import migrate, runtime
        from fleetup.notify.inbox import SimulatedInbox
        from fleetup.sim.runner import simulated
        from fleetup.worker import start_thread
        from fleetup.worker.jobs import JOBS

        config = settings()
        clock = ManualClock(simulated_clock.replace(tzinfo=UTC)) if simulated_clock else None
        parts = (
            build_server(simulated(config), clock, inbox=SimulatedInbox())
            if clock
            else build_server(config)
        )
        migrate.upgrade(parts.engine)
        resume_clock(parts)
        bind_host, bind_port = host or config.host, port or config.port
        console.print(f"fleetup serves http://{bind_host}:{bind_port}  (API docs at /api/docs)")
        if clock is not None:
            console.print(f"Simulated time: {clock.now():%Y-%m-%dT%H:%M:%SZ}")
        web_app = create_app(parts)
        # On simulated time the clock route runs the jobs, each time the clock moves.
        worker = None if no_worker or clock else start_thread(parts, JOBS)
        runtime.serving()
        try:
            uvicorn.run(web_app, host=bind_host, port=bind_port, log_level="warning")
        finally:
            if worker is not None:
                thread, stop = worker
                stop.set()
                thread.join(timeout=30)
