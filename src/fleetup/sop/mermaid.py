"""Drawing definitions and instances back as Mermaid ``graph TD`` charts.

The output follows the operator's original charts: the original node ids, labels with
``<br/>`` line breaks, decisions as ``{...}``, outcome labels on arrows (``-->|是|``), so a
person can lay the running SOP beside the chart they wrote. Nodes borrowed from another chart
(chart 2's ✅ checks, from chart 3) are left out unless asked for, since the original chart
does not draw them. An instance is drawn as its chart with the nodes it visited, the node it
stands on and the arrows it followed styled.
"""

from __future__ import annotations

from itertools import pairwise

from fleetup.sop.model import Definition, Edge, Lang, Node
from fleetup.sop.state import InstanceState

# Characters that end an unquoted Mermaid label; such labels are written in quotes.
_LABEL_BREAKERS = frozenset('[]{}()|"')

CLASS_DEFS = (
    "classDef visited fill:#e3f2e1,stroke:#2e7d32",
    "classDef current fill:#fff4cc,stroke:#b58100,stroke-width:3px",
    "classDef waiting fill:#fde2e1,stroke:#c62828,stroke-width:3px",
    "classDef completed fill:#d7ecff,stroke:#1565c0,stroke-width:3px",
)
TRAVERSED_STYLE = "stroke:#2e7d32,stroke-width:3px"


def definition_to_mermaid(
    definition: Definition, lang: Lang = "zh-TW", *, include_imported: bool = False
) -> str:
    """Draw ``definition`` as a Mermaid flowchart.

    Args:
        definition: The definition to draw.
        lang: Language of the labels, ``"zh-TW"`` or ``"en"``.
        include_imported: Also draw nodes borrowed from other charts (chart 2's checks).

    Returns:
        Mermaid source starting with ``graph TD``, one node or edge per line.
    """
    nodes, edges = _drawn(definition, include_imported)
    return "\n".join(_chart_lines(nodes, edges, lang)) + "\n"


def instance_to_mermaid(
    definition: Definition,
    state: InstanceState,
    lang: Lang = "zh-TW",
    *,
    include_imported: bool = False,
) -> str:
    """Draw ``definition`` with where ``state`` stands on it highlighted.

    Visited nodes get class ``visited``; the current node ``current`` (``waiting`` while
    the instance waits on a loop cap, ``completed`` once it is complete); followed arrows a
    ``linkStyle`` line. Edge numbers are positions in the drawn edge list, as Mermaid counts.

    Args:
        definition: The definition the instance runs.
        state: The instance's state.
        lang: Language of the labels.
        include_imported: Also draw nodes borrowed from other charts.

    Returns:
        Mermaid source.
    """
    nodes, edges = _drawn(definition, include_imported)
    drawn_ids = {node.id for node in nodes}
    lines = _chart_lines(nodes, edges, lang)
    lines.extend(f"    {line}" for line in CLASS_DEFS)

    visited = _visited(state) & drawn_ids
    current_class = {"running": "current", "waiting": "waiting", "completed": "completed"}
    others = sorted(visited - {state.current})
    if others:
        lines.append(f"    class {','.join(others)} visited")
    lines.append(f"    class {state.current} {current_class[state.status]}")

    followed = _followed(definition, state)
    indexes = [str(i) for i, edge in enumerate(edges) if edge.key in followed]
    if indexes:
        lines.append(f"    linkStyle {','.join(indexes)} {TRAVERSED_STYLE}")
    return "\n".join(lines) + "\n"


def _drawn(definition: Definition, include_imported: bool) -> tuple[list[Node], list[Edge]]:
    nodes = [n for n in definition.nodes if include_imported or n.imported_from is None]
    ids = {node.id for node in nodes}
    edges = [e for e in definition.edges if e.source in ids and e.to in ids]
    return nodes, edges


def _chart_lines(nodes: list[Node], edges: list[Edge], lang: Lang) -> list[str]:
    lines = ["graph TD"]
    for node in nodes:
        label = _label(node.label.in_lang(lang))
        shape = f"{{{label}}}" if node.kind == "decision" else f"[{label}]"
        lines.append(f"    {node.id}{shape}")
    for edge in edges:
        if edge.label is not None and edge.label_in_chart:
            text = edge.label.in_lang(lang).replace("|", "#124;")
            lines.append(f"    {edge.source} -->|{text}| {edge.to}")
        else:
            lines.append(f"    {edge.source} --> {edge.to}")
    return lines


def _label(text: str) -> str:
    if _LABEL_BREAKERS.isdisjoint(text):
        return text
    return '"' + text.replace('"', "#quot;") + '"'


def _visited(state: InstanceState) -> set[str]:
    visited = {run.node for run in state.runs if run.parent is None or run.status != "due"}
    for run in state.runs:
        visited |= run.passed_checks
    return visited


def _followed(definition: Definition, state: InstanceState) -> set[str]:
    """Keys of the edges the instance followed, from the order of its visits."""
    flow = [run.node for run in state.runs if run.parent is None]
    followed = {f"{a}->{b}" for a, b in pairwise(flow)}
    for run in state.runs:
        for check in run.passed_checks:
            followed.add(f"{run.node}->{check}")
        if run.parent is not None and run.status == "done":
            followed.add(f"{run.parent}->{run.node}")
    return followed & {edge.key for edge in definition.edges}
