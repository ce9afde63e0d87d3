"""Composition: a step of one chart borrows the time budget and checks of another chart's node.

Chart 2 (the customer upgrade operation) and chart 3 (the same migration, timed, with ✅
checks) describe one machine's upgrade from two angles. Rather than copy chart 3's numbers
into chart 2, a chart 2 node says ``timing: {chart: chart3, node: B}`` and this module copies
chart 3's budget, budget clock, total budget and contained checks onto it. Replacing chart 3
therefore changes the budgets chart 2 runs with, and the composed definition records the
version and hash of what it borrowed so a running instance can keep them.
"""

from __future__ import annotations

from collections.abc import Mapping

from fleetup.sop.errors import DefinitionError, DefinitionProblem
from fleetup.sop.model import ChartRef, Definition, Edge, Node, NodeRef
from fleetup.sop.validation import graph_problems


def compose(definition: Definition, library: Mapping[str, Definition]) -> Definition:
    """Resolve every ``timing`` reference of ``definition`` against ``library``.

    Args:
        definition: A validated, not yet composed definition.
        library: Definitions by id that references may point at (not composed themselves:
            borrowing is one level deep).

    Returns:
        ``definition`` itself when it has no references, otherwise a new definition whose
        timed steps carry the borrowed budgets and contain the borrowed checks, with
        ``imported_from`` set on those checks and ``composed_from`` naming the sources.

    Raises:
        DefinitionError: A reference names a missing chart or node, a node that is not a
            step, a node that borrows itself, or a step that also sets its own budget; or the
            composed graph breaks a rule (for instance two steps importing the same check).
    """
    if all(node.timing is None for node in definition.nodes):
        return definition
    file = definition.source or definition.id
    problems: list[DefinitionProblem] = []
    nodes: list[Node] = []
    imported: list[Node] = []
    edges: list[Edge] = list(definition.edges)
    sources: dict[str, ChartRef] = {}

    for node in definition.nodes:
        donor_node, donor = _resolve(node, definition, library, file, problems)
        if donor_node is None or donor is None:
            nodes.append(node)
            continue
        nodes.append(
            node.model_copy(
                update={
                    "budget_minutes": donor_node.budget_minutes,
                    "budget_clock": donor_node.budget_clock,
                    "total_budget_minutes": donor_node.total_budget_minutes,
                }
            )
        )
        for part in donor.contained(donor_node.id):
            origin = NodeRef(chart=donor.id, node=part.id)
            imported.append(part.model_copy(update={"imported_from": origin}))
            edges.append(Edge(source=node.id, to=part.id, kind="contains"))
        sources[donor.id] = ChartRef(
            id=donor.id, version=donor.version, content_hash=donor.content_hash
        )
    if problems:
        raise DefinitionError(problems)

    composed = Definition(
        id=definition.id,
        version=definition.version,
        title=definition.title,
        description=definition.description,
        nodes=(*nodes, *imported),
        edges=tuple(edges),
        source=definition.source,
        content_hash=definition.content_hash,
        composed_from=tuple(sources.values()),
    )
    problems = graph_problems(composed, file)
    if problems:
        raise DefinitionError(problems)
    return composed


def _resolve(
    node: Node,
    definition: Definition,
    library: Mapping[str, Definition],
    file: str,
    problems: list[DefinitionProblem],
) -> tuple[Node | None, Definition | None]:
    """Find the node ``node.timing`` points at, reporting why when it cannot be used."""
    ref = node.timing
    if ref is None:
        return None, None

    def refuse(message: str) -> tuple[None, None]:
        problems.append(DefinitionProblem(file=file, node=node.id, message=message))
        return None, None

    if ref.chart == definition.id:
        return refuse("timing cannot refer to its own chart")
    donor = library.get(ref.chart)
    if donor is None:
        return refuse(f"timing refers to chart {ref.chart!r}, which is not loaded")
    if not donor.has_node(ref.node):
        return refuse(f"timing refers to node {ref.node!r}, which {ref.chart} does not have")
    donor_node = donor.node(ref.node)
    if donor_node.kind not in ("task", "end"):
        return refuse(f"timing refers to {ref.chart} {ref.node}, a {donor_node.kind}, not a step")
    if donor_node.timing is not None:
        return refuse(f"{ref.chart} {ref.node} borrows its own timing; borrow from its source")
    if node.kind != "task":
        return refuse(f"only a task can borrow timing, this node is a {node.kind}")
    if node.budget_minutes is not None or node.total_budget_minutes is not None:
        return refuse("sets its own budget and borrows one with timing; keep one of them")
    return donor_node, donor
