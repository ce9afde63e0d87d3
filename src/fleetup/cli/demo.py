"""``fleetup demo``: a server on SQLite with the sample fleet, ready to look at in a browser."""

from __future__ import annotations

from pathlib import Path

import typer
import uvicorn
from rich.table import Table

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.api.app import build_server, create_app
from fleetup.cli.common import console, settings
from fleetup.core import migrate
from fleetup.core.context import Ctx
from fleetup.core.errors import NotFound
from fleetup.core.security import Role
from fleetup.fleet.inventory import import_inventory

SAMPLE = Path("examples/inventory.csv")

# Demo accounts only: the demo serves on 127.0.0.1 and its database lives under ./var.
DEMO_USERS = (
    ("admin", Role.admin, "系統管理員"),
    ("manager", Role.manager, "林專案經理"),
    ("tech", Role.technician, "陳技術員"),
    ("oncall", Role.on_call, "王值班工程師"),
    ("viewer", Role.viewer, "張檢視者"),
)


def demo_password(username: str) -> str:
    return f"{username}-demo-1"


def _ensure_users(ctx: Ctx) -> None:
    for username, role, name in DEMO_USERS:
        try:
            accounts.get_user(ctx.session, username=username)
        except NotFound:
            accounts.create_user(
                ctx,
                UserIn(
                    username=username,
                    password=demo_password(username),
                    role=role,
                    display_name=name,
                ),
            )


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        inventory: Path = typer.Option(SAMPLE, help="Inventory file to load (CSV or XLSX)."),
        serve: bool = typer.Option(True, help="Serve after loading; --no-serve only loads."),
    ) -> None:
        """Load the sample fleet and demo accounts into ./var, then serve the web app."""
        config = settings()
        parts = build_server(config)
        migrate.upgrade(parts.engine)
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="demo", clock=parts.clock)
            _ensure_users(ctx)
            report = import_inventory(ctx, inventory.read_bytes())
            session.commit()
        machines = report.machines
        console.print(
            f"Sample fleet from {inventory}: {report.rows} machines "
            f"({machines.created} new, {machines.unchanged} already loaded)."
        )
        table = Table("user", "password", "role", title="Demo accounts")
        for username, role, _name in DEMO_USERS:
            table.add_row(username, demo_password(username), role.value)
        console.print(table)
        if not serve:
            return
        url = f"http://{config.host}:{config.port}"
        console.print(f"[bold green]fleetup demo:[/bold green] open {url}  (Ctrl-C stops it)")
        uvicorn.run(create_app(parts), host=config.host, port=config.port, log_level="warning")
