"""The rules a definition must follow as a whole graph, before the engine will run it.

The models in ``model.py`` check each field on its own; here we check what needs the whole
file: ids are unique, every edge joins existing nodes, each node kind is used as the engine
expects, every node can be reached from a start, an end can be reached from every node, and
every decision outcome is mapped. The function collects every problem instead of stopping at
the first, so that a person editing a definition sees them all at once.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable

from fleetup.sop.errors import DefinitionProblem
from fleetup.sop.model import Definition, Edge, Node

# The callback every rule reports through: report(node_id or None, message).
_Reporter = Callable[[str | None, str], None]


def graph_problems(definition: Definition, file: str) -> list[DefinitionProblem]:
    """Return every structural problem of ``definition``; an empty list means it is sound.

    Args:
        definition: A definition whose fields have passed the model's checks.
        file: The name to report problems against.

    Returns:
        The problems, each naming the file and, where it can, the node.
    """
    problems: list[DefinitionProblem] = []

    def report(node: str | None, message: str) -> None:
        problems.append(DefinitionProblem(file=file, node=node, message=message))

    counts = Counter(node.id for node in definition.nodes)
    for node_id, count in counts.items():
        if count > 1:
            report(node_id, f"id {node_id!r} is used by {count} nodes; ids must be unique")
    known = set(counts)
    for edge in definition.edges:
        for end in (edge.source, edge.to):
            if end not in known:
                report(end, f"edge {edge.key} refers to node {end!r}, which does not exist")
    edge_counts = Counter(edge.key for edge in definition.edges)
    for key, count in edge_counts.items():
        if count > 1:
            report(key.split("->")[0], f"edge {key} is declared {count} times")
    if problems:
        # The remaining rules walk the graph and would only repeat these faults.
        return problems

    if not definition.starts:
        report(None, "no node has kind 'start'; an instance would have nowhere to begin")
    for node in definition.nodes:
        _check_node(definition, node, report)
    if problems:
        return problems
    _check_reachability(definition, report)
    return problems


def _check_node(definition: Definition, node: Node, report: _Reporter) -> None:
    then_out = definition.out_edges(node.id, "then")
    contains_out = definition.out_edges(node.id, "contains")
    then_in = [e for e in definition.edges if e.to == node.id and e.kind == "then"]
    containers = [e.source for e in definition.edges if e.to == node.id and e.kind == "contains"]

    if len(containers) > 1:
        report(node.id, f"is contained by several steps ({', '.join(containers)}); pick one")
    if containers:
        _check_part(definition, node, then_in, then_out, contains_out, report)
        return
    if node.kind == "check":
        report(node.id, "a check must be attached to a step with a 'contains' edge")
        return
    if node.kind in ("task", "decision") and node.performer is None:
        report(node.id, f"a {node.kind} needs a performer (who does it)")
    if node.kind == "start" and then_in:
        report(node.id, "a start node cannot have incoming edges")
    if node.kind == "decision":
        _check_decision(node, then_out, contains_out, report)
    else:
        for edge in then_out:
            if edge.outcome is not None:
                report(node.id, f"edge {edge.key} has an outcome but {node.id} is no decision")
        if node.outcomes:
            report(node.id, "only a decision can list outcomes")
    if node.kind in ("start", "task") and len(then_out) != 1:
        # One step at a time: parallel work is expressed with 'contains', not forks.
        report(
            node.id, f"a {node.kind} needs exactly one outgoing 'then' edge, has {len(then_out)}"
        )
    if node.kind == "end" and then_out:
        report(node.id, "an end node cannot have outgoing 'then' edges")
    if node.kind == "end" and node.performer is None and contains_out:
        # Such an end is a milestone reached on arrival: nobody would do its parts.
        report(node.id, "an end without a performer cannot contain checks or activities")
    for edge in then_out:
        if edge.loop is not None and node.kind != "task":
            report(node.id, f"loop edge {edge.key} must leave a task, not a {node.kind}")


def _check_part(
    definition: Definition,
    node: Node,
    then_in: list[Edge],
    then_out: tuple[Edge, ...],
    contains_out: tuple[Edge, ...],
    report: _Reporter,
) -> None:
    container = definition.node(definition.container_of(node.id) or "")
    if container.kind not in ("task", "end"):
        report(node.id, f"is contained by {container.id}, a {container.kind}; only steps contain")
    if node.kind not in ("check", "task"):
        report(node.id, f"a contained node must be a check or an activity (task), not {node.kind}")
    if node.kind == "task" and node.performer is None:
        report(node.id, "an activity needs a performer (who does it)")
    if then_in or then_out or contains_out:
        report(node.id, "a contained check or activity cannot have edges of its own")


def _check_decision(
    node: Node, then_out: tuple[Edge, ...], contains_out: tuple[Edge, ...], report: _Reporter
) -> None:
    if not node.outcomes:
        report(node.id, "a decision must list its outcomes")
    for outcome, count in Counter(node.outcomes).items():
        if count > 1:
            report(node.id, f"outcome {outcome!r} is listed {count} times")
    mapped = Counter(edge.outcome for edge in then_out if edge.outcome is not None)
    for outcome in node.outcomes:
        if mapped[outcome] == 0:
            report(node.id, f"outcome {outcome!r} is not mapped to any edge")
        elif mapped[outcome] > 1:
            report(node.id, f"outcome {outcome!r} is mapped to {mapped[outcome]} edges")
    for edge in then_out:
        if edge.outcome is None:
            report(node.id, f"edge {edge.key} leaves a decision but names no outcome")
        elif edge.outcome not in node.outcomes:
            report(node.id, f"edge {edge.key} names outcome {edge.outcome!r}, not listed")
        if edge.label is None:
            report(node.id, f"edge {edge.key} needs a label in zh-TW and en for its outcome")
    if contains_out:
        report(node.id, "a decision cannot contain checks or activities")


def _check_reachability(definition: Definition, report: _Reporter) -> None:
    forward: dict[str, list[str]] = defaultdict(list)
    backward: dict[str, list[str]] = defaultdict(list)
    for edge in definition.edges:
        forward[edge.source].append(edge.to)
        if edge.kind == "then":
            backward[edge.to].append(edge.source)

    reached = _walk(definition.starts, forward)
    for node in definition.nodes:
        if node.id not in reached:
            report(node.id, "cannot be reached from any start node")

    ends = [node.id for node in definition.nodes if node.kind == "end"]
    if not ends:
        report(None, "no node has kind 'end'; an instance could never complete")
        return
    finishing = _walk(ends, backward)
    for node in definition.nodes:
        # A check or activity finishes with the step that contains it.
        owner = definition.container_of(node.id) or node.id
        if owner not in finishing:
            report(node.id, "no end node can be reached from here (dead end or endless loop)")


def _walk(roots: Iterable[str], graph: dict[str, list[str]]) -> set[str]:
    seen = set(roots)
    queue = deque(seen)
    while queue:
        for nxt in graph[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
