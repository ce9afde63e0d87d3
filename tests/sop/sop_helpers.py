"""Helpers for the SOP tests: a small Mermaid flowchart parser and an event script.

The parser reads exactly the subset the operator's charts use: ``graph TD``, nodes written
``A[label]``, ``A["label"]`` or ``B{label}``, and edges ``-->``, ``-->|label|`` and
``--> |label|``, where either end may declare its node. Style lines are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetup.sop import (
    CheckPassed,
    DecisionTaken,
    Definition,
    InstanceState,
    StepFinished,
    StepStarted,
    Transition,
    apply,
)
from fleetup.sop.events import Event

ORIGINAL = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "sop" / "upgrade-sop.zh-TW.md"
).resolve()

_NODE = r'([A-Za-z][A-Za-z0-9_]*)(?:\[("[^"]*"|[^\]]*)\]|\{("[^"]*"|[^}]*)\})?'
_EDGE_RE = re.compile(rf"^{_NODE}\s*-->\s*(?:\|([^|]*)\|)?\s*{_NODE}$")
_NODE_RE = re.compile(rf"^{_NODE}$")
_SKIP = ("graph ", "classDef ", "class ", "linkStyle ", "%%")


@dataclass
class Chart:
    """A parsed flowchart: node id -> (shape, label), (from, to) -> edge label or None."""

    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    edges: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def declare(self, node_id: str, box: str | None, diamond: str | None) -> None:
        if box is not None:
            self.nodes[node_id] = ("box", _unquote(box))
        elif diamond is not None:
            self.nodes[node_id] = ("decision", _unquote(diamond))
        else:
            self.nodes.setdefault(node_id, ("box", ""))


def _unquote(label: str) -> str:
    if len(label) >= 2 and label.startswith('"') and label.endswith('"'):
        return label[1:-1].replace("#quot;", '"')
    return label


def parse_flowchart(text: str) -> Chart:
    """Parse one Mermaid ``graph TD`` chart; raise ValueError on a line it cannot read."""
    chart = Chart()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(_SKIP) or line == "graph TD":
            continue
        edge = _EDGE_RE.match(line)
        if edge:
            src, src_box, src_diamond, label, dst, dst_box, dst_diamond = edge.groups()
            chart.declare(src, src_box, src_diamond)
            chart.declare(dst, dst_box, dst_diamond)
            chart.edges[(src, dst)] = label.replace("#124;", "|") if label is not None else None
            continue
        node = _NODE_RE.match(line)
        if node:
            chart.declare(*node.groups())
            continue
        raise ValueError(f"cannot parse Mermaid line: {line!r}")
    return chart


def mermaid_blocks(markdown: str) -> list[str]:
    """Return the bodies of the ```mermaid blocks of a Markdown text, in order."""
    return re.findall(r"```mermaid\n(.*?)```", markdown, flags=re.DOTALL)


T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@dataclass
class Script:
    """Feeds events to the engine with a clock that moves only when told to."""

    definition: Definition
    state: InstanceState
    now: datetime = T0
    effects: list[object] = field(default_factory=list)

    def send(self, event: Event) -> Transition:
        transition = apply(self.definition, self.state, event)
        self.state = transition.state
        self.effects.extend(transition.effects)
        return transition

    def wait(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)

    def step(self, node: str, minutes: float = 1, checks: tuple[str, ...] = ()) -> None:
        """Start, finish ok after ``minutes``, then pass ``checks``."""
        self.send(StepStarted(node=node, at=self.now, actor="tech-1"))
        self.wait(minutes)
        self.send(StepFinished(node=node, at=self.now, actor="tech-1"))
        for check in checks:
            self.send(CheckPassed(node=check, at=self.now, actor="tech-1"))

    def decide(self, node: str, outcome: str) -> None:
        self.send(DecisionTaken(node=node, outcome=outcome, at=self.now, actor="tech-1"))
