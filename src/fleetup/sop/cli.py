"""``fleetup sop ...``: show the shipped charts as Mermaid and check definition files.

The lead mounts :data:`app` under the main CLI; the commands only read files and print.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fleetup.sop.errors import DefinitionError
from fleetup.sop.loader import load_builtin, load_definition
from fleetup.sop.mermaid import definition_to_mermaid
from fleetup.sop.model import LANGS, Definition, Lang

app = typer.Typer(
    name="sop",
    help="The upgrade SOP: show its charts, check definition files.",
    no_args_is_help=True,
)


@app.command()
def show(
    chart: Annotated[int, typer.Argument(min=1, max=6, help="Chart number, 1 to 6.")],
    lang: Annotated[str, typer.Option("--lang", help="Label language: zh-TW or en.")] = "zh-TW",
    with_checks: Annotated[
        bool, typer.Option("--with-checks", help="Also draw checks borrowed from chart 3.")
    ] = False,
) -> None:
    """Print shipped chart CHART as Mermaid, in the original's node ids."""
    if lang not in LANGS:
        raise typer.BadParameter(f"use one of {', '.join(LANGS)}", param_hint="--lang")
    language: Lang = "zh-TW" if lang == "zh-TW" else "en"
    definition = load_builtin(f"chart{chart}")
    text = definition_to_mermaid(definition, language, include_imported=with_checks)
    typer.echo(text, nl=False)


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="A YAML definition file.")],
) -> None:
    """Validate a definition FILE; list every problem, or summarise it when it is sound."""
    console = Console()
    try:
        definition = load_definition(file)
    except DefinitionError as error:
        table = Table(title=f"{len(error.problems)} problem(s) in {file}", show_lines=False)
        table.add_column("File", overflow="fold")
        table.add_column("Node")
        table.add_column("Problem", overflow="fold")
        for problem in error.problems:
            table.add_row(problem.file, problem.node or "-", problem.message)
        console.print(table)
        raise typer.Exit(code=1) from error
    console.print(_summary(definition))


def _summary(definition: Definition) -> Table:
    kinds = Counter(node.kind for node in definition.nodes)
    loops = [
        f"{edge.key} cap {edge.loop.cap} → {edge.loop.at_cap.effect}"
        for edge in definition.loops
        if edge.loop is not None
    ]
    table = Table(title=f"{definition.id} {definition.version}: OK", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("title", f"{definition.title.zh_tw} / {definition.title.en}")
    table.add_row("nodes", ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())))
    table.add_row("edges", str(len(definition.edges)))
    table.add_row("entry points", ", ".join(definition.starts))
    table.add_row("loops", "; ".join(loops) or "none")
    budget = sum(node.budget_minutes or 0 for node in definition.nodes)
    table.add_row("budgeted minutes", f"{budget:g}")
    if definition.composed_from:
        sources = ", ".join(f"{ref.id} {ref.version}" for ref in definition.composed_from)
        table.add_row("timing from", sources)
    table.add_row("sha256", definition.content_hash)
    return table
