"""Reading SOP definitions: from the package's ``definitions/`` folder or from any file.

This is the only place the SOP package touches the filesystem, and it only reads. A
definition is parsed (YAML), checked field by field (``model.py``), checked as a graph
(``validation.py``) and composed with the charts it borrows timing from (``compose.py``).
Every fault found is reported at once in one :class:`DefinitionError`, each naming the file,
the node and the problem.

Replacing a shipped chart: the server passes ``{chart_id: path}`` to
:func:`effective_definitions`, which validates the replacements together with the shipped
charts they do not replace, so a new chart 3 changes the budgets of chart 2 too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fleetup.sop.compose import compose
from fleetup.sop.errors import DefinitionError, DefinitionProblem
from fleetup.sop.model import Definition
from fleetup.sop.validation import graph_problems

BUILTIN_CHARTS: tuple[str, ...] = ("chart1", "chart2", "chart3", "chart4", "chart5", "chart6")


def parse_definition(
    content: bytes, *, source: str, library: Mapping[str, Definition] | None = None
) -> Definition:
    """Validate and compose a definition given as the bytes of a YAML file.

    Args:
        content: The file's bytes (UTF-8 YAML).
        source: The name to report problems against and to record as the source.
        library: Definitions that ``timing`` references may point at; the shipped charts
            when ``None``.

    Returns:
        The validated, composed definition, with ``content_hash`` the sha256 of ``content``.

    Raises:
        DefinitionError: The content is not valid YAML, breaks the schema or a graph rule,
            or refers to timing that cannot be resolved.
    """
    definition = _parse_uncomposed(content, source)
    return compose(definition, _builtin_uncomposed() if library is None else library)


def load_definition(
    path: str | Path, *, library: Mapping[str, Definition] | None = None
) -> Definition:
    """Read, validate and compose the definition in the file at ``path``.

    Args:
        path: A YAML definition file.
        library: Definitions that ``timing`` references may point at; the shipped charts
            when ``None``.

    Returns:
        The validated, composed definition.

    Raises:
        DefinitionError: The file cannot be read or is not a valid definition.
    """
    return compose(_read_file(Path(path)), _builtin_uncomposed() if library is None else library)


def load_builtin(chart_id: str) -> Definition:
    """Return the shipped definition ``chart_id`` (``chart1`` … ``chart6``), composed.

    Args:
        chart_id: One of :data:`BUILTIN_CHARTS`.

    Returns:
        The definition.

    Raises:
        KeyError: No shipped chart has that id.
    """
    if chart_id not in BUILTIN_CHARTS:
        raise KeyError(f"no shipped SOP chart {chart_id!r}; known: {', '.join(BUILTIN_CHARTS)}")
    return _builtin_composed()[chart_id]


def builtin_definitions() -> dict[str, Definition]:
    """Return the six shipped definitions by id, composed.

    Returns:
        A new dict (safe to modify) of ``chart_id -> Definition``.
    """
    return dict(_builtin_composed())


def effective_definitions(
    overrides: Mapping[str, str | Path] | None = None,
) -> dict[str, Definition]:
    """Return the definitions the product runs: the shipped ones, some replaced by files.

    Args:
        overrides: ``{chart_id: path}``; each file must declare that same id. An id that is
            not shipped adds a chart.

    Returns:
        Every definition by id, validated and composed against each other.

    Raises:
        DefinitionError: With the problems of every refused file together.
    """
    if not overrides:
        return builtin_definitions()
    uncomposed = dict(_builtin_uncomposed())
    problems: list[DefinitionProblem] = []
    for chart_id, path in overrides.items():
        try:
            replacement = _read_file(Path(path))
        except DefinitionError as error:
            problems.extend(error.problems)
            continue
        if replacement.id != chart_id:
            message = f"declares id {replacement.id!r} but is configured to replace {chart_id!r}"
            problems.append(DefinitionProblem(file=str(path), node=None, message=message))
            continue
        uncomposed[chart_id] = replacement
    if problems:
        raise DefinitionError(problems)
    return _compose_all(uncomposed)


def _compose_all(uncomposed: Mapping[str, Definition]) -> dict[str, Definition]:
    composed: dict[str, Definition] = {}
    problems: list[DefinitionProblem] = []
    for chart_id, definition in uncomposed.items():
        try:
            composed[chart_id] = compose(definition, uncomposed)
        except DefinitionError as error:
            problems.extend(error.problems)
    if problems:
        raise DefinitionError(problems)
    return composed


@lru_cache(maxsize=1)
def _builtin_uncomposed() -> Mapping[str, Definition]:
    folder = resources.files("fleetup.sop") / "definitions"
    found: dict[str, Definition] = {}
    for chart_id in BUILTIN_CHARTS:
        resource = folder / f"{chart_id}.yaml"
        found[chart_id] = _parse_uncomposed(resource.read_bytes(), str(resource))
    return found


@lru_cache(maxsize=1)
def _builtin_composed() -> Mapping[str, Definition]:
    return _compose_all(_builtin_uncomposed())


def _read_file(path: Path) -> Definition:
    try:
        content = path.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        problem = DefinitionProblem(str(path), None, f"cannot read: {reason}")
        raise DefinitionError([problem]) from error
    return _parse_uncomposed(content, str(path))


def _parse_uncomposed(content: bytes, source: str) -> Definition:
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        message = f"not valid YAML{where}: {getattr(error, 'problem', None) or error}"
        raise DefinitionError([DefinitionProblem(source, None, message)]) from error
    except RecursionError as error:
        message = "not valid YAML: values are nested too deeply"
        raise DefinitionError([DefinitionProblem(source, None, message)]) from error
    if not isinstance(data, dict):
        message = "the file must hold a mapping with id, version, title, nodes and edges"
        raise DefinitionError([DefinitionProblem(source, None, message)])
    # Provenance is the loader's to state, whatever the file says.
    data = {**data, "source": source, "content_hash": hashlib.sha256(content).hexdigest()}
    data.pop("composed_from", None)
    try:
        definition = Definition.model_validate(data)
    except ValidationError as error:
        raise DefinitionError(_schema_problems(error, data, source)) from error
    problems = graph_problems(definition, source)
    if problems:
        raise DefinitionError(problems)
    return definition


def _schema_problems(
    error: ValidationError, data: Mapping[str, Any], source: str
) -> list[DefinitionProblem]:
    """Turn pydantic's locations (``nodes.3.label.en``) into the node ids people know."""
    problems: list[DefinitionProblem] = []
    for item in error.errors():
        loc = item["loc"]
        node: str | None = None
        field = ".".join(str(part) for part in loc)
        if len(loc) >= 2 and loc[0] in ("nodes", "edges") and isinstance(loc[1], int):
            entry = _entry(data, str(loc[0]), loc[1])
            field = ".".join(str(part) for part in loc[2:]) or "(the entry itself)"
            if loc[0] == "nodes":
                node = _text(entry.get("id")) or f"#{loc[1] + 1}"
            else:
                node = _text(entry.get("from")) or f"edge #{loc[1] + 1}"
                field = f"edge {node}->{_text(entry.get('to')) or '?'}: {field}"
        problems.append(DefinitionProblem(source, node, f"{field}: {item['msg']}"))
    return problems


def _entry(data: Mapping[str, Any], key: str, index: int) -> Mapping[str, Any]:
    entries = data.get(key)
    if isinstance(entries, list) and index < len(entries):
        entry = entries[index]
        if isinstance(entry, dict):
            return entry
    return {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
