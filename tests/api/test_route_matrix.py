"""Who may call what, for every route of the real application, generated from its route table.

Every route declares its rule (``allow(...)``, ``public()``, the device rules). This test calls
each one as each role, as nobody and as an enrolled IPC, with real ids from a small world, and
holds the answer to the rule:

- an admitted caller reaches the handler: never 401 or 403 (a 404, 409, 410 or 422 from the
  handler is its own business);
- a refused caller gets 401 or 403, or, on a web page, the way to the sign-in page (303 to
  ``/login?next=...``, a browser's 401), and the answer shows none of the world's data;
- no answer is a server error.

Every refused request is sent first, between two fingerprints of the database, which must be
equal: a refusal changes nothing. On failure the whole matrix is printed, one row per route.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from api.route_calls import (
    RouteCall,
    Visitor,
    admits,
    route_calls,
    send,
    unguarded,
    visitors,
)
from api.route_world import (
    CANARIES,
    PRINCIPALS,
    build_world,
    changed_tables,
    table_rows,
)
from fleetup.api.deps import Server

SIGN_IN = "/login?next="
# Served by FastAPI and Starlette themselves, with no rule: what the API looks like, the
# stylesheets and scripts. None of them holds data.
OPEN_DOCUMENTS = {
    "/api/openapi.json": "application/json",
    "/api/docs": "text/html",
    "/docs/oauth2-redirect": "text/html",
    "/static": "text/css",
}
# Admitted calls run caller by caller, the least trusted first, so the customer opens their
# links while they are fresh; later callers may meet a used link (410), which is no refusal.
FIRST_IN = ("anonymous", "device", "viewer", "on_call", "technician", "manager", "admin")


@dataclass
class Cell:
    """One call of the matrix: what the rule expects and what came back."""

    expected: bool
    status: int
    admitted: bool
    leaked: str = ""

    @property
    def failed(self) -> bool:
        return self.status >= 500 or self.admitted != self.expected or bool(self.leaked)

    def __str__(self) -> str:
        mark = ""
        if self.failed:
            mark = "!L" if self.leaked else "!"
        return f"{self.status}{mark}"


def admitted(call: RouteCall, answer: Response) -> bool:
    """Whether the answer came from past the rule (not a refusal)."""
    if answer.status_code in (401, 403):
        return False
    location = answer.headers.get("location", "")
    return not (call.web and answer.status_code == 303 and location.startswith(SIGN_IN))


def leak_in(answer: Response) -> str:
    return next((canary for canary in CANARIES if canary in answer.text), "")


def table(calls: list[RouteCall], cells: dict[tuple[str, str], Cell]) -> str:
    """The matrix as text: a row per route, a column per caller; ``!`` marks a wrong answer,
    ``!L`` a refusal that showed the world's data; the rule says who should get through."""
    width = max(len(call.name) for call in calls)
    head = f"{'route':<{width}}  " + " ".join(f"{p:>10}" for p in PRINCIPALS) + "  rule"
    lines = [head, "-" * len(head)]
    for call in calls:
        row = " ".join(f"{cells[call.name, p]!s:>10}" for p in PRINCIPALS)
        rule = ",".join(sorted(call.rule))
        flag = " <--" if any(cells[call.name, p].failed for p in PRINCIPALS) else ""
        lines.append(f"{call.name:<{width}}  {row}  {rule}{flag}")
    return "\n".join(lines)


def test_the_only_routes_outside_the_rules_are_the_api_documents_and_static_files(
    app: FastAPI, client: TestClient
) -> None:
    assert unguarded(app.routes) == set(OPEN_DOCUMENTS)
    for path, kind in OPEN_DOCUMENTS.items():
        answer = client.get(path if path != "/static" else "/static/app.css")
        assert answer.status_code == 200 and kind in answer.headers["content-type"], path


def test_every_route_answers_every_caller_as_its_rule_says(
    app: FastAPI, server_parts: Server, tmp_path: Path
) -> None:
    world = build_world(server_parts, tmp_path)
    calls = route_calls(app)
    assert len(calls) > 140 and {call.web for call in calls} == {True, False}
    cells: dict[tuple[str, str], Cell] = {}
    with TestClient(app) as client:
        people: dict[str, Visitor] = visitors(client, world)
        plan = [(call, who) for call in calls for who in PRINCIPALS]
        refused = [(c, who) for c, who in plan if not admits(c.rule, who)]
        let_in = [(c, who) for c, who in plan if admits(c.rule, who)]

        before = table_rows(server_parts.engine)
        for call, who in refused:
            answer = send(client, server_parts, world, call, people[who])
            got_in = admitted(call, answer)
            leak = "" if got_in else leak_in(answer)
            cells[call.name, who] = Cell(False, answer.status_code, got_in, leak)
        changed = changed_tables(before, table_rows(server_parts.engine))

        for who in FIRST_IN:
            for call, caller in let_in:
                if caller == who:
                    answer = send(client, server_parts, world, call, people[who])
                    cells[call.name, who] = Cell(True, answer.status_code, admitted(call, answer))

    failures = sorted(key for key, cell in cells.items() if cell.failed)
    assert not failures and not changed, (
        f"{len(failures)} wrong answers; tables changed by refused requests: {changed}\n"
        + table(calls, cells)
    )
