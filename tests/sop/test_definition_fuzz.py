"""Fuzzing SOP definitions: a mutated shipped chart is refused with a ``DefinitionError`` that
names the node or field, never another exception, and nothing is registered.

Each example takes one of the six shipped charts as data, changes it the way a person editing
the YAML might get it wrong (a field removed, given a value of the wrong type or out of range,
an unknown field added, a node or edge removed or duplicated, an edge sent to a node that does
not exist, a node renamed), writes it back as YAML and loads it twice: as bytes with
``parse_definition``, and as the file configured to replace that chart with
``effective_definitions`` (what the server does at start). Byte-level damage to the file and
pathological YAML are thrown at it as well.

"Nothing registered": a refused replacement leaves the shipped definitions exactly as they
were, and a server library built over it refuses to start.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from fleetup.sop import BUILTIN_CHARTS, load_builtin
from fleetup.sop.errors import DefinitionError
from fleetup.sop.loader import builtin_definitions, effective_definitions, parse_definition
from fleetup.upgrades.library import SopLibrary

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SHIPPED: dict[str, dict[str, Any]] = {
    chart_id: yaml.safe_load(Path(load_builtin(chart_id).source).read_bytes())
    for chart_id in BUILTIN_CHARTS
}
SOURCE = "mutated.yaml"

# A non-empty list or mapping is the wrong type for every field but the lists of nodes and
# edges (pydantic's lax mode would turn "5" into a number or "yes" into a boolean, so scalars
# are not reliably wrong).
_WRONG = st.lists(st.integers(), min_size=1, max_size=2) | st.dictionaries(
    st.sampled_from(["x", "y"]), st.integers(), min_size=1, max_size=2
)
NODE_FIELDS = (
    "id",
    "kind",
    "label",
    "performer",
    "budget_minutes",
    "budget_clock",
    "total_budget_minutes",
    "outcomes",
    "timing",
    "weeks",
    "machines",
)
EDGE_FIELDS = ("from", "to", "kind", "outcome", "label", "label_in_chart", "loop")
# Values each field's rules refuse whatever the rest of the chart says, and the word the
# refusal must carry so a person finds the field.
_OUT_OF_RANGE: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["1A", "has space", "", "A-B", "節點"]),
    "kind": st.sampled_from(["begin", "Task", "", "stop"]),
    "performer": st.sampled_from(["robot", "Manager", ""]),
    "budget_minutes": st.floats(max_value=-0.001) | st.integers(max_value=-1),
    "budget_clock": st.sampled_from(["wall", "Step", ""]),
    "total_budget_minutes": st.floats(max_value=-0.001) | st.integers(max_value=-1),
    "machines": st.integers(max_value=0),
    "weeks": st.just({"first": 3, "last": 1}) | st.just({"first": 0, "last": 2}),
    "label": st.just({"en": "only English"}) | st.just({"zh-TW": "", "en": "x"}),
}


@st.composite
def mutated_chart(draw: st.DrawFn) -> tuple[str, dict[str, Any], set[str]]:
    """A shipped chart with one fault, and the words (node ids, field names) its error names."""
    chart_id = draw(st.sampled_from(BUILTIN_CHARTS))
    data = copy.deepcopy(SHIPPED[chart_id])
    nodes: list[dict[str, Any]] = data["nodes"]
    edges: list[dict[str, Any]] = data["edges"]
    index = draw(st.integers(0, len(nodes) - 1))
    node = nodes[index]
    node_id = str(node["id"])
    fault = draw(
        st.sampled_from(
            [
                "top_field_removed",
                "top_field_wrong",
                "unknown_field",
                "node_field_removed",
                "node_field_wrong",
                "node_field_out_of_range",
                "edge_field_wrong",
                "edge_to_missing_node",
                "node_removed",
                "node_duplicated",
                "edge_duplicated",
                "edge_removed_from_decision",
                "loop_cap_zero",
            ]
        )
    )
    mentions: set[str] = set()
    if fault == "top_field_removed":
        field = draw(st.sampled_from(["id", "version", "title", "nodes"]))
        del data[field]
        mentions = {field}
    elif fault == "top_field_wrong":
        field = draw(st.sampled_from(["id", "version", "title", "description"]))
        data[field] = draw(_WRONG)
        mentions = {field}
    elif fault == "unknown_field":
        where = draw(st.sampled_from(["top", "node", "edge"]))
        name = draw(st.sampled_from(["budget", "lable", "colour", "note", "timeout"]))
        target = {"top": data, "node": node, "edge": draw(st.sampled_from(edges))}[where]
        target[name] = draw(_WRONG)
        mentions = {name}
    elif fault == "node_field_removed":
        field = draw(st.sampled_from(["id", "kind", "label"]))
        del node[field]
        mentions = {field, f"#{index + 1}"} if field == "id" else {field, node_id}
    elif fault == "node_field_wrong":
        field = draw(st.sampled_from(NODE_FIELDS))
        node[field] = draw(_WRONG)
        mentions = {field, node_id, f"#{index + 1}"}
    elif fault == "node_field_out_of_range":
        field = draw(st.sampled_from(sorted(_OUT_OF_RANGE)))
        node[field] = draw(_OUT_OF_RANGE[field])
        mentions = {field, node_id, f"#{index + 1}"}
    elif fault == "edge_field_wrong":
        edge = draw(st.sampled_from(edges))
        field = draw(st.sampled_from(EDGE_FIELDS))
        edge[field] = draw(_WRONG)
        mentions = {field, str(edge["from"]), str(edge["to"])}
    elif fault == "edge_to_missing_node":
        edge = draw(st.sampled_from(edges))
        edge[draw(st.sampled_from(["from", "to"]))] = "Nowhere9"
        mentions = {"Nowhere9"}
    elif fault == "node_removed":
        # Every node of a shipped chart is joined by at least one edge, so edges now dangle.
        nodes.pop(index)
        mentions = {node_id}
    elif fault == "node_duplicated":
        nodes.append(copy.deepcopy(node))
        mentions = {node_id}
    elif fault == "edge_duplicated":
        edge = draw(st.sampled_from(edges))
        edges.append(copy.deepcopy(edge))
        mentions = {str(edge["from"])}
    elif fault == "edge_removed_from_decision":
        decisions = [e for e in edges if e.get("outcome") is not None]
        if not decisions:  # chart 1 has no decision: remove its last edge instead
            decisions = [edges[-1]]
        edge = draw(st.sampled_from(decisions))
        edges.remove(edge)
        mentions = {str(edge["from"]), str(edge["to"])}
    else:  # loop_cap_zero
        looped = [e for e in edges if "loop" in e] or edges
        edge = draw(st.sampled_from(looped))
        edge["loop"] = {"cap": draw(st.integers(-3, 0)), "at_cap": {"effect": "open_problem"}}
        mentions = {"cap", str(edge["from"])}
    return chart_id, data, mentions


def as_yaml(data: dict[str, Any]) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8")


def shipped_hashes() -> dict[str, str]:
    return {chart_id: d.effective_hash for chart_id, d in builtin_definitions().items()}


def refusal_of(content: bytes) -> DefinitionError:
    """``parse_definition`` on ``content``, which must raise a DefinitionError and only that."""
    with pytest.raises(DefinitionError) as caught:
        parse_definition(content, source=SOURCE)
    error = caught.value
    assert error.problems, "a refusal lists at least one problem"
    for problem in error.problems:
        assert problem.file == SOURCE
        assert problem.message.strip()
        assert problem.node is None or problem.node.strip()
    return error


BEFORE = shipped_hashes()


@FUZZ
@given(case=mutated_chart())
def test_mutated_chart_is_refused_naming_the_node_or_field(
    tmp_path: Path, case: tuple[str, dict[str, Any], set[str]]
) -> None:
    chart_id, data, mentions = case
    content = as_yaml(data)
    note(content.decode())
    error = refusal_of(content)
    text = str(error)
    assert any(word in text for word in mentions), (mentions, text)

    replacement = tmp_path / f"{chart_id}-{hashlib.sha256(content).hexdigest()[:12]}.yaml"
    replacement.write_bytes(content)
    with pytest.raises(DefinitionError) as configured:
        effective_definitions({chart_id: replacement})
    assert all(p.file == str(replacement) for p in configured.value.problems)
    with pytest.raises(DefinitionError):
        SopLibrary({chart_id: replacement})
    assert shipped_hashes() == BEFORE, "a refused replacement changed the shipped charts"


_DAMAGE = st.one_of(
    st.tuples(st.just("cut"), st.integers(0, 4000)),
    st.tuples(st.just("flip"), st.integers(0, 4000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 4000), st.binary(min_size=1, max_size=8)),
)


@FUZZ
@given(chart_id=st.sampled_from(BUILTIN_CHARTS), damage=st.lists(_DAMAGE, min_size=1, max_size=4))
def test_damaged_file_is_refused_or_still_valid_never_crashes(
    chart_id: str, damage: list[tuple[Any, ...]]
) -> None:
    content = bytearray(Path(load_builtin(chart_id).source).read_bytes())
    for kind, at, *rest in damage:
        at %= len(content) + 1
        if kind == "cut":
            del content[at:]
        elif kind == "flip" and at < len(content):
            content[at] = rest[0]
        elif kind == "insert":
            content[at:at] = rest[0]
    note(repr(bytes(content)))
    try:
        definition = parse_definition(bytes(content), source=SOURCE)
    except DefinitionError as error:
        assert all(p.file == SOURCE and p.message.strip() for p in error.problems)
    else:
        # Some damage leaves a valid chart (a changed label, a comment); it then loads whole.
        assert definition.id and definition.nodes
    assert shipped_hashes() == BEFORE


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 5000,
        b"nodes: " + b"[" * 5000,
        b"title: " + b"{a: " * 5000,
        b"&a [*a, *a]",
        b"id: x\nversion: '1'\ntitle: {zh-TW: a, en: b}\nnodes: &a [*a]\n",
        b"id: chart9\nnodes: !!python/object/apply:os.system [echo]\n",
        b"\xff\xfe\x00\x00",
        b"? [a, b]\n: 1\n",
        b"",
        b"- just\n- a list\n",
    ],
    ids=[
        "deep-list",
        "deep-nodes",
        "deep-mapping",
        "self-alias",
        "self-alias-nodes",
        "python-tag",
        "not-utf8",
        "list-key",
        "empty",
        "top-level-list",
    ],
)
def test_pathological_yaml_is_a_definition_error(content: bytes) -> None:
    refusal_of(content)
    assert shipped_hashes() == BEFORE
