"""``fleetup import machines FILE``: the fleet list into the registry, or a table of what is wrong.

The operator imports the customer's machine list before a campaign. A file with any problem is
refused as a whole, with a table naming each row and column in the operator's language, and the
command exits 1 having written nothing; ``--dry-run`` shows what an import would change.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from fleetup.cli.common import cli_context, console, errors, settings
from fleetup.core.errors import FleetupError
from fleetup.core.i18n import LANGUAGES, gettext_for, normalise
from fleetup.fleet.inventory import InventoryRefused, Limits, import_inventory
from fleetup.fleet.schemas import ImportReport

_KINDS = ("customers", "contacts", "sites", "machines")


def register(app: typer.Typer) -> None:
    """Add the ``import`` command group to ``app``."""
    import_app = typer.Typer(help="Bring records into fleetup from files.", no_args_is_help=True)
    app.add_typer(import_app, name="import")

    @import_app.command("machines")
    def import_machines(
        file: Path = typer.Argument(
            ...,
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV (UTF-8 or Big5) or XLSX: one row per machine, header in row 1.",
        ),
        lang: str | None = typer.Option(
            None, "--lang", help="Language of the messages: zh-TW or en; default from settings."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Check the file and count what would change; write nothing."
        ),
    ) -> None:
        """Import customers, sites and machines; a file with any problem changes nothing."""
        config = settings()
        language = normalise(lang) if lang else config.default_language
        if language is None:
            errors.print(f"[red]--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}.[/red]")
            raise typer.Exit(2)
        _ = gettext_for(language)
        limits = Limits()
        with file.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)  # one byte more lets the reader refuse
        try:
            with _ImportProgress(language) as bar, cli_context(config) as ctx:
                report = import_inventory(
                    ctx, data, dry_run=dry_run, limits=limits, progress=bar.update
                )
        except InventoryRefused as refused:
            errors.print(_problem_table(refused, language))
            errors.print(f"[red]{refused.message_in(language)}[/red]")
            raise typer.Exit(1) from refused
        except FleetupError as error:
            errors.print(f"[red]{error.message}[/red]")
            raise typer.Exit(1) from error
        console.print(_summary_table(report, file.name, language))
        if dry_run:
            console.print(_("Dry run: nothing was written. Run again without --dry-run to import."))


class _ImportProgress:
    """Two bars on stderr, one for checking the rows and one for writing them."""

    def __init__(self, language: str) -> None:
        _ = gettext_for(language)
        self._labels = {"validate": _("Checking rows"), "apply": _("Writing")}
        self._rich = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=errors,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _ImportProgress:
        self._rich.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._rich.stop()

    def update(self, phase: str, done: int, total: int) -> None:
        """The importer's ``progress`` callback."""
        if phase not in self._tasks:
            self._tasks[phase] = self._rich.add_task(self._labels.get(phase, phase), total=total)
        self._rich.update(self._tasks[phase], completed=done, total=total)


def _problem_table(refused: InventoryRefused, language: str) -> Table:
    _ = gettext_for(language)
    table = Table(title=_("The file was not imported"), title_style="bold red", show_lines=False)
    table.add_column(_("row"), justify="right", style="bold")
    table.add_column(_("column"))
    table.add_column(_("problem"), overflow="fold")
    for problem in refused.row_problems:
        row = "" if problem.row is None else str(problem.row)
        table.add_row(row, problem.column, problem.text(language))
    return table


def _summary_table(report: ImportReport, name: str, language: str) -> Table:
    _ = gettext_for(language)
    title = (
        _("Dry run of {file}: {rows} rows checked")
        if report.dry_run
        else _("Imported {file}: {rows} rows")
    )
    table = Table(title=title.format(file=name, rows=report.rows), title_style="bold green")
    table.add_column("")
    for heading in (_("created"), _("updated"), _("unchanged")):
        table.add_column(heading, justify="right")
    labels = {
        "customers": _("customers"),
        "contacts": _("contacts"),
        "sites": _("sites"),
        "machines": _("machines"),
    }
    for kind in _KINDS:
        tally = getattr(report, kind)
        table.add_row(labels[kind], str(tally.created), str(tally.updated), str(tally.unchanged))
    return table
