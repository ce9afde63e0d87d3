"""``fleetup user ...`` and ``fleetup audit verify``."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.table import Table

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.cli.common import cli_context, cli_session, console, errors, settings
from fleetup.core import audit
from fleetup.core.errors import FleetupError
from fleetup.core.security import Role


def register(app: typer.Typer) -> None:
    user_app = typer.Typer(help="People who sign in to fleetup.", no_args_is_help=True)
    audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
    app.add_typer(user_app, name="user")
    app.add_typer(audit_app, name="audit")

    @user_app.command("add")
    def user_add(
        username: str,
        role: Role = typer.Option(..., help="admin, manager, technician, on_call or viewer."),
        password: str = typer.Option(
            ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="FLEETUP_PASSWORD"
        ),
        display_name: str = typer.Option("", help="Name shown in the web app."),
        email: str = typer.Option(""),
        phone: str = typer.Option(""),
        language: str = typer.Option("zh-TW", help="zh-TW or en."),
        token: str = typer.Option("", help="Also make an API token with this name."),
    ) -> None:
        """Add a user; with --token, print a new API token for scripts (shown once)."""
        try:
            data = UserIn(
                username=username,
                password=password,
                role=role,
                display_name=display_name,
                email=email,
                phone=phone,
                language=language,
            )
        except ValidationError as error:
            for item in error.errors():
                errors.print(f"[red]{'.'.join(map(str, item['loc']))}[/red]: {item['msg']}")
            raise typer.Exit(2) from error
        try:
            with cli_context(settings()) as ctx:
                user = accounts.create_user(ctx, data)
                plain = accounts.create_token(ctx, user=user, name=token)[1] if token else ""
        except FleetupError as error:
            errors.print(f"[red]{error.message}[/red]")
            raise typer.Exit(1) from error
        console.print(f"Added {user.username} ({user.role.value}).")
        if plain:
            console.print(f"API token {token!r} (shown once): {plain}")

    @user_app.command("list")
    def user_list() -> None:
        """List the users and their roles."""
        with cli_session(settings()) as session:
            table = Table("username", "role", "name", "active")
            for user in accounts.get_all_users(session):
                table.add_row(user.username, user.role.value, user.display_name, str(user.active))
        console.print(table)

    @audit_app.command("verify")
    def audit_verify() -> None:
        """Check the hash chain and every audited row; exit 1 naming what does not match."""
        with cli_session(settings()) as session:
            findings = audit.verify(session)
            count = audit.count(session)
        if not findings:
            console.print(
                f"[green]The audit trail is intact[/green]: {count} events, all rows match."
            )
            return
        table = Table("where", "problem", title="The audit trail does not match", style="red")
        for finding in findings:
            table.add_row(finding.where, finding.problem)
        errors.print(table)
        raise typer.Exit(1)
