"""The one line format every benchmark prints, and the summary ``make bench`` ends with."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
LINE = re.compile(
    r"^BENCH (?P<id>\S+) (?P<name>\S+) (?P<value>\S+) (?P<unit>\S+) goal "
    r"(?P<op>\S+) (?P<target>\S+) (?P<verdict>PASS|FAIL)$"
)


@dataclass(frozen=True)
class Figure:
    id: str
    name: str
    value: float
    unit: str
    op: str
    target: float

    @property
    def passed(self) -> bool:
        return _OPS[self.op](self.value, self.target)

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"BENCH {self.id} {self.name} {self.value:.3g} {self.unit} goal "
            f"{self.op} {self.target:g} {verdict}"
        )


def emit(figure: Figure) -> Figure:
    print(figure.line(), flush=True)
    return figure
