"""Message templates: ``templates/<name>.<lang>.txt``, first line the subject, then the body.

Each area ships its own files, named with its prefix (``incident_``, ``gate_``, ...). They are
rendered with Jinja2 from the caller's parameters; a parameter the template uses but the caller
did not give is an error at ``send`` time, not a blank in someone's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from fleetup.core.config import LANGUAGES
from fleetup.core.errors import FieldProblem, InvalidInput

FOLDER = Path(__file__).parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(FOLDER),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


def exists(template: str) -> bool:
    return all((FOLDER / f"{template}.{lang}.txt").is_file() for lang in LANGUAGES)


def check(template: str) -> None:
    """Raises InvalidInput naming ``template`` unless it exists in every language."""
    if not template.replace("_", "").isalnum():
        raise InvalidInput(
            f"'{template}' is not a template name",
            [FieldProblem("template", "letters, digits and _ only", value=template)],
        )
    missing = [lang for lang in LANGUAGES if not (FOLDER / f"{template}.{lang}.txt").is_file()]
    if missing:
        raise InvalidInput(
            f"the notification template '{template}' does not exist "
            f"(missing {', '.join(f'{template}.{lang}.txt' for lang in missing)})",
            [FieldProblem("template", "no such notification template", value=template)],
        )


def render(template: str, language: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """The subject and body of ``template`` in ``language``.

    Raises:
        InvalidInput: the template uses a parameter that was not given, or is malformed.
    """
    try:
        text = _env.get_template(f"{template}.{language}.txt").render(**params)
    except jinja2.UndefinedError as error:
        raise InvalidInput(
            f"the notification template '{template}' needs a parameter: {error.message}",
            [FieldProblem("params", str(error.message), value=template)],
        ) from error
    except jinja2.TemplateError as error:
        raise InvalidInput(
            f"the notification template '{template}' ({language}) cannot be rendered: {error}",
            [FieldProblem("template", str(error), value=template)],
        ) from error
    subject, _, body = text.partition("\n")
    return subject.strip()[:300], body.strip()
