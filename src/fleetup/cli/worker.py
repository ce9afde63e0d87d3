"""``fleetup worker``: the periodic jobs (outbox delivery, wake-ups, timers) on the wall clock.

``fleetup serve`` runs the same loop in a background thread unless told ``--no-worker``;
a separate ``fleetup worker`` is for deployments with several API processes or a separate
machine for the jobs. Several workers may run against PostgreSQL (they claim rows with
``FOR UPDATE SKIP LOCKED``); on SQLite run one.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from fleetup.cli.common import console, settings


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        tick: float = typer.Option(0.5, min=0.05, help="Seconds between looks for due jobs."),
    ) -> None:
        """Run the periodic jobs until stopped (SIGTERM or Ctrl-C)."""
        # The server's own modules load here, not when any command starts.
        from fleetup.api.app import build_server
        from fleetup.core import migrate, runtime
        from fleetup.notify import service as notify
        from fleetup.worker import run_until
        from fleetup.worker.jobs import JOBS

        config = settings()
        parts = build_server(config)
        migrate.upgrade(parts.engine)
        notify.use_settings(parts.engine, config)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        stop = threading.Event()

        def stop_on(signum: int, frame: FrameType | None) -> None:
            del frame
            console.print(f"Stopping after the current job ({signal.Signals(signum).name}).")
            stop.set()

        signal.signal(signal.SIGTERM, stop_on)
        signal.signal(signal.SIGINT, stop_on)
        console.print(f"fleetup worker runs {', '.join(job.name for job in JOBS)}")
        runtime.serving()
        try:
            run_until(parts, stop, JOBS, tick_s=tick)
        finally:
            parts.engine.dispose()
