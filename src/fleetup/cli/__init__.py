"""The ``fleetup`` command: one Typer app, with a module per group of commands."""

from __future__ import annotations

import typer

from fleetup.cli import (
    admin,
    campaigns,
    demo,
    inventory,
    releases,
    serve,
    simulate,
    upgrades,
    worker,
)
from fleetup.sop.cli import app as sop_app

app = typer.Typer(
    name="fleetup",
    help="Run the upgrade of a fleet of customer machines, following the operator's SOP.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
serve.register(app)
admin.register(app)
inventory.register(app)
demo.register(app)
releases.register(app)
upgrades.register(app)
campaigns.register(app)
simulate.register(app)
worker.register(app)
app.add_typer(sop_app, name="sop")
