"""What every command shares: settings, a migrated database, the console."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fleetup.core import migrate
from fleetup.core.clock import SystemClock
from fleetup.core.config import Settings, load_settings
from fleetup.core.context import Ctx
from fleetup.core.db import make_engine, session_factory
from fleetup.core.errors import FleetupError, InvalidInput

console = Console()
errors = Console(stderr=True)


def settings() -> Settings:
    try:
        return load_settings()
    except (ValidationError, FileNotFoundError) as error:
        errors.print(f"[red]The configuration is not valid:[/red]\n{error}")
        raise typer.Exit(2) from error


def migrated_engine(config: Settings) -> Engine:
    engine = make_engine(config.effective_database_url)
    migrate.upgrade(engine)
    return engine


@contextmanager
def cli_context(config: Settings, actor: str = "cli") -> Iterator[Ctx]:
    """A write context for one command; commits at the end unless the block raises."""
    engine = migrated_engine(config)
    try:
        with session_factory(engine)() as session:
            yield Ctx(session=session, actor=actor, clock=SystemClock())
            session.commit()
    finally:
        engine.dispose()


@contextmanager
def cli_session(config: Settings) -> Iterator[Session]:
    engine = migrated_engine(config)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def refused(error: FleetupError) -> typer.Exit:
    """Print what the user got wrong (each field on its own line); the exit to raise."""
    errors.print(f"[red]{error.message}[/red]")
    if isinstance(error, InvalidInput):
        for problem in error.problems:
            errors.print(f"  {problem.field}: {problem.message}")
    return typer.Exit(1)
