"""Errors of the SOP package.

Every error a caller can meet here derives from :class:`SopError`::

    SopError
    ├── DefinitionError   a definition file (or a set of them) is not a usable SOP;
    │                     carries one DefinitionProblem per fault found
    └── EngineError       an event does not fit the instance's state; the state is unchanged

Both are ``ValueError`` too, so a caller that turns bad input into a 4xx answer can catch
either family with one clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SopError(ValueError):
    """Base class of every error raised by ``fleetup.sop``."""


@dataclass(frozen=True)
class DefinitionProblem:
    """One fault in one definition file.

    Attributes:
        file: The file (or package resource) the definition came from.
        node: The node the fault is about, or ``None`` when it concerns the whole file.
        message: What is wrong, written for the person editing the file.
    """

    file: str
    node: str | None
    message: str

    def __str__(self) -> str:
        where = f"node {self.node}" if self.node is not None else "definition"
        return f"{self.file}: {where}: {self.message}"


class DefinitionError(SopError):
    """A definition was refused; ``problems`` lists every fault found, not just the first."""

    def __init__(self, problems: Sequence[DefinitionProblem]) -> None:
        self.problems: tuple[DefinitionProblem, ...] = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"SOP definition refused ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([head, *(f"  - {problem}" for problem in self.problems)])


class EngineError(SopError):
    """An event was refused by the engine; the instance state it was applied to is unchanged.

    Attributes:
        node: The node the refused event named, when it named one.
    """

    def __init__(self, message: str, *, node: str | None = None) -> None:
        self.node = node
        super().__init__(message)
