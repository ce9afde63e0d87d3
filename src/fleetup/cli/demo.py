"""``fleetup demo``: a server on SQLite with the sample fleet, ready to look at in a browser.

Besides the demo accounts and the sample inventory it adds the release and the campaign (from
the SOP template, week 1 = this week's Monday), then serves on simulated time while a
simulated fleet (sim/) runs the 16-week project against it over HTTP, at a pace a person can
follow on the dashboard. Ctrl-C stops both.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from fleetup.accounts import service as accounts
from fleetup.accounts.schemas import UserIn
from fleetup.campaigns import service as campaigns
from fleetup.campaigns.schemas import CampaignIn
from fleetup.cli.common import console, settings
from fleetup.cli.simulate import print_result
from fleetup.core.clock import ManualClock, SystemClock
from fleetup.core.context import Ctx
from fleetup.core.errors import Conflict, InvalidInput, NotFound
from fleetup.core.security import Role
from fleetup.fleet.inventory import import_inventory
from fleetup.sim.fleet import RELEASE, ensure_release
from fleetup.sim.fleet import SAMPLE as SAMPLE_INVENTORY
from fleetup.upgrades.library import SopLibrary

if TYPE_CHECKING:
    from fleetup.api.deps import Server
    from fleetup.sim.loop import EventLoop

# Simulated seconds per real second: the 16 weeks take a few minutes.
DEMO_SPEED = 40_000.0

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


def _ensure_campaign(ctx: Ctx, library: SopLibrary, monday: datetime) -> None:
    if campaigns.get_all(ctx.session):
        return
    try:
        campaigns.create_from_template(
            ctx,
            library,
            CampaignIn(
                name="IPC 2.0 雲端平台升級", release_version=RELEASE, starts_on=monday.date()
            ),
        )
    except (Conflict, InvalidInput) as error:
        console.print(f"[yellow]No campaign made:[/yellow] {error.message}")


def _serve_with_fleet(parts: Server, host: str, port: int, speed: float, count: int) -> None:
    """Uvicorn in a thread, the simulated fleet in this one; Ctrl-C stops both."""
    import uvicorn

    from fleetup.api.app import create_app
    from fleetup.core import runtime
    from fleetup.sim.runner import Options, run

    server = uvicorn.Server(
        uvicorn.Config(create_app(parts), host=host, port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    runtime.serving()
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    loops: list[EventLoop] = []
    clock = parts.clock
    monday = clock.now() if isinstance(clock, ManualClock) else SystemClock().now()
    try:
        result = run(
            parts.settings,
            Options(
                machines=count, seed=1, speed=speed, starts_on=monday.date(), load_inventory=False
            ),
            url=f"http://{host}:{port}",
            stopper=loops.append,
        )
        print_result(result)
        console.print("The simulated campaign is over; the server keeps serving (Ctrl-C stops it).")
        thread.join()
    except KeyboardInterrupt:
        for loop in loops:
            loop.stop()
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        inventory: Path = typer.Option(
            SAMPLE_INVENTORY,
            exists=True,
            dir_okay=False,
            readable=True,
            help="Inventory file to load (CSV or XLSX); the sample fleet by default.",
        ),
        serve: bool = typer.Option(True, help="Serve after loading; --no-serve only loads."),
        speed: float = typer.Option(
            DEMO_SPEED, min=1, help="Simulated seconds per real second of the simulated fleet."
        ),
    ) -> None:
        """Load the sample fleet and demo accounts into ./var, then serve the web app
        on simulated time while a simulated fleet runs the campaign."""
        # The server's own modules load here, not when any command starts.
        from fleetup.api.app import build_server
        from fleetup.core import migrate
        from fleetup.notify.inbox import SimulatedInbox
        from fleetup.sim.runner import simulated

        config = settings()
        today = SystemClock().now()
        monday = datetime.combine(
            (today - timedelta(days=today.weekday())).date(), datetime.min.time(), UTC
        )
        parts = build_server(simulated(config), ManualClock(monday), inbox=SimulatedInbox())
        migrate.upgrade(parts.engine)
        with parts.sessions() as session:
            ctx = Ctx(session=session, actor="demo", clock=parts.clock)
            _ensure_users(ctx)
            report = import_inventory(ctx, inventory.read_bytes())
            ensure_release(ctx, config)
            _ensure_campaign(ctx, parts.library, monday)
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
        console.print(
            f"[bold green]fleetup demo:[/bold green] open {url}  (a simulated fleet of "
            f"{report.rows} machines upgrades in waves from {monday:%Y-%m-%d}; Ctrl-C stops it)"
        )
        _serve_with_fleet(parts, config.host, config.port, speed, report.rows)
