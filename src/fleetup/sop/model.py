"""The shape of an SOP definition: nodes, edges, loops and time budgets, as immutable data.

A definition is what one YAML file under ``definitions/`` holds (see ``docs/sop.md`` for the
file format). The models here check the *shape* of each field (types, required labels in both
languages, non-negative budgets, loop caps of at least one); the rules that concern the graph
as a whole (reachability, mapped outcomes, an end reachable from everywhere) live in
``validation.py``, because they need the whole file to be read first.

Two edge kinds carry the two relations the original charts draw with the same arrow:
``then`` is sequencing (the flow moves from one node to the next) and ``contains`` attaches
a part to a step (chart 1's activities to their phase, chart 3's ✅ checks to their step).
A step cannot be left until everything it contains is done.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NodeKind = Literal["start", "task", "decision", "check", "end"]
EdgeKind = Literal["then", "contains"]
# "system" is the server's own automation (alerts, registry look-ups); the others are people
# or the agent on the IPC, in the operator's words.
Performer = Literal["agent", "technician", "customer", "on_call", "manager", "system"]
Lang = Literal["zh-TW", "en"]
LANGS: tuple[Lang, ...] = ("zh-TW", "en")
CapEffect = Literal["open_problem", "open_incident", "escalate"]
BudgetClock = Literal["step", "arrival"]

NODE_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
LINE_BREAK = "<br/>"

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Text(BaseModel):
    """A label in both languages the product speaks; both are required and non-empty.

    Lines are separated by ``<br/>``, as in the original Mermaid charts, so a label can be
    written back into a chart exactly as the operator drew it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    zh_tw: str = Field(alias="zh-TW", min_length=1)
    en: str = Field(min_length=1)

    def in_lang(self, lang: Lang) -> str:
        """Return the label in ``lang``.

        Args:
            lang: ``"zh-TW"`` or ``"en"``.

        Returns:
            The label text, ``<br/>`` line breaks included.
        """
        return self.zh_tw if lang == "zh-TW" else self.en

    def lines(self, lang: Lang) -> tuple[str, ...]:
        """Return the label in ``lang`` split at its ``<br/>`` line breaks.

        Args:
            lang: ``"zh-TW"`` or ``"en"``.

        Returns:
            The lines, first line first (the step's name; later lines are notes like budgets).
        """
        return tuple(self.in_lang(lang).split(LINE_BREAK))


class WeekSpan(BaseModel):
    """The planned weeks of a phase or activity of the project plan (chart 1), inclusive."""

    model_config = _FROZEN

    first: int = Field(ge=1)
    last: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> WeekSpan:
        if self.last < self.first:
            raise ValueError(f"last week {self.last} is before first week {self.first}")
        return self


class TimingRef(BaseModel):
    """Borrow the budget and checks of a node of another chart (chart 2 ← chart 3)."""

    model_config = _FROZEN

    chart: str = Field(min_length=1)
    node: str = Field(pattern=NODE_ID_PATTERN)


class NodeRef(BaseModel):
    """Where an imported node came from; set by the loader, never written in a file."""

    model_config = _FROZEN

    chart: str
    node: str


class Node(BaseModel):
    """One box or diamond of a chart.

    Attributes:
        id: The id of the original chart (``A``, ``B1`` ...).
        kind: start (the trigger), task (a step someone does), decision, check (a ✅
            condition attached to a step), end (finishing it completes the instance).
        performer: Who does the step or takes the decision; an end without a performer is a
            milestone reached on arrival.
        budget_minutes: The time the step should take.
        budget_clock: ``step`` measures the time spent on the step's attempts; ``arrival``
            measures from the moment the step became due (a response time, chart 6 C).
        total_budget_minutes: A budget for all timed steps of the instance together
            (chart 3 H, "總計65分鐘").
        outcomes: A decision's outcome ids; each must be mapped to exactly one edge.
        timing: Take budget, total and checks from another chart's node.
        weeks: Planned weeks (chart 1).
        machines: Number of machines an activity covers (chart 1 migration batches).
    """

    model_config = _FROZEN

    id: str = Field(pattern=NODE_ID_PATTERN)
    kind: NodeKind
    label: Text
    performer: Performer | None = None
    budget_minutes: float | None = Field(default=None, ge=0)
    budget_clock: BudgetClock = "step"
    total_budget_minutes: float | None = Field(default=None, ge=0)
    outcomes: tuple[str, ...] = ()
    timing: TimingRef | None = None
    weeks: WeekSpan | None = None
    machines: int | None = Field(default=None, ge=1)
    imported_from: NodeRef | None = None


class CapAction(BaseModel):
    """What happens when a loop reaches its cap: the effect the engine emits."""

    model_config = _FROZEN

    effect: CapEffect
    problem_type: str | None = None
    escalate_to: Performer | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _escalation_has_target(self) -> CapAction:
        if self.effect == "escalate" and self.escalate_to is None:
            raise ValueError("an 'escalate' action needs 'escalate_to' (who takes it over)")
        return self


class Loop(BaseModel):
    """A cap on how many times an edge that closes a loop may be taken."""

    model_config = _FROZEN

    cap: int = Field(ge=1)
    at_cap: CapAction


class Edge(BaseModel):
    """One arrow of a chart.

    Attributes:
        source: Node the arrow leaves (``from`` in the file).
        to: Node the arrow enters.
        kind: ``then`` (sequence) or ``contains`` (a part attached to a step).
        outcome: For edges leaving a decision: the outcome id this edge stands for.
        label: The arrow's label in both languages (是/yes, ≥8分/≥8 points).
        label_in_chart: False when the original chart draws the arrow unlabelled (chart 4 B).
        loop: A cap on how often this edge may be taken, when it closes a loop.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    source: str = Field(alias="from", pattern=NODE_ID_PATTERN)
    to: str = Field(pattern=NODE_ID_PATTERN)
    kind: EdgeKind = "then"
    outcome: str | None = None
    label: Text | None = None
    label_in_chart: bool = True
    loop: Loop | None = None

    @property
    def key(self) -> str:
        """The edge's name in state and messages, ``"M->J"``."""
        return f"{self.source}->{self.to}"


class ChartRef(BaseModel):
    """A definition another one borrowed from, pinned by version and content hash."""

    model_config = _FROZEN

    id: str
    version: str
    content_hash: str


class Definition(BaseModel):
    """One SOP chart, ready for the engine once the loader has validated and composed it.

    Attributes:
        id: ``chart1`` … ``chart6`` for the shipped charts.
        version: The author's version string; bump it with every change.
        source: Where the definition was read from (set by the loader).
        content_hash: sha256 of the file's bytes (set by the loader).
        composed_from: Definitions whose budgets and checks were borrowed (set by the loader).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    version: str = Field(min_length=1)
    title: Text
    description: Text | None = None
    nodes: tuple[Node, ...] = Field(min_length=1)
    edges: tuple[Edge, ...] = ()
    source: str = ""
    content_hash: str = ""
    composed_from: tuple[ChartRef, ...] = ()

    @cached_property
    def _by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    def node(self, node_id: str) -> Node:
        """Return the node ``node_id``.

        Args:
            node_id: A node id of this definition.

        Returns:
            The node.

        Raises:
            KeyError: No node has that id.
        """
        return self._by_id[node_id]

    def has_node(self, node_id: str) -> bool:
        """Tell whether ``node_id`` is a node of this definition."""
        return node_id in self._by_id

    def out_edges(self, node_id: str, kind: EdgeKind = "then") -> tuple[Edge, ...]:
        """Return the edges of ``kind`` leaving ``node_id``, in file order."""
        return tuple(e for e in self.edges if e.source == node_id and e.kind == kind)

    def contained(self, node_id: str) -> tuple[Node, ...]:
        """Return the checks and activities attached to step ``node_id``."""
        return tuple(self._by_id[e.to] for e in self.out_edges(node_id, "contains"))

    def container_of(self, node_id: str) -> str | None:
        """Return the step that contains ``node_id``, or ``None`` for a node of the flow."""
        for edge in self.edges:
            if edge.kind == "contains" and edge.to == node_id:
                return edge.source
        return None

    @property
    def starts(self) -> tuple[str, ...]:
        """The entry points, in file order (chart 6 has two)."""
        return tuple(n.id for n in self.nodes if n.kind == "start")

    @property
    def loops(self) -> tuple[Edge, ...]:
        """The edges that carry a loop cap."""
        return tuple(e for e in self.edges if e.loop is not None)

    @property
    def effective_hash(self) -> str:
        """The hash an instance pins: the file's, plus those of borrowed definitions."""
        if not self.composed_from:
            return self.content_hash
        parts = [self.content_hash, *(ref.content_hash for ref in self.composed_from)]
        return "+".join(parts)
