"""Numbers in page addresses never reach the database out of range: no page answers 500.

Row ids are 32-bit on PostgreSQL and 64-bit at most on SQLite. The test walks the web route
table (as tests/api/test_route_matrix.py walks the API's), finds every page that takes an
integer in its path or query, and calls it as an admin with numbers no row can have: an id in
the path gets the page's own "not found" page (404, HTML, in the page's words), an offset past
the bound a 422 naming it, and no answer is a server error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from web_helpers import csrf_token, seed_fleet, sign_in

from fleetup.api.access import api_routes
from fleetup.api.schemas import MAX_ROW_ID
from fleetup.core.context import Ctx
from fleetup.core.security import Role
from support import Account

ENGLISH = {"Accept-Language": "en"}
OUT_OF_RANGE = (0, -1, MAX_ROW_ID + 1, 2**63, 10**20)
# What the other path parameters of an integer-id page are filled with: real enough to pass.
OTHER_PARAMETERS = {"serial": "M-1001", "code": "D1"}
# Each page's own not-found title, as its lookup of an unknown id shows it.
NOT_FOUND_TITLES = {
    "campaign_id": "Campaign not found",
    "incident_id": "Incident not found",
    "problem_id": "Problem not found",
    "acceptance_id": "Certificate not found",
}


@dataclass(frozen=True)
class NumberedPage:
    method: str
    path: str
    int_path: tuple[str, ...]
    int_query: tuple[str, ...]


def numbered_pages(app: FastAPI) -> list[NumberedPage]:
    """Every web route with an integer path or query parameter, from the route table."""
    found = []
    for path, route in api_routes(app.routes):
        if not route.endpoint.__module__.startswith("fleetup.web"):
            continue
        int_path = _int_names(route, "path")
        int_query = _int_names(route, "query")
        if int_path or int_query:
            for method in sorted(route.methods or ()):
                found.append(NumberedPage(method, path, int_path, int_query))
    return found


def _int_names(route: APIRoute, where: str) -> tuple[str, ...]:
    params = route.dependant.path_params if where == "path" else route.dependant.query_params
    return tuple(p.name for p in params if p.field_info.annotation is int)


def _address(page: NumberedPage, number: int) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(number) if name in page.int_path else OTHER_PARAMETERS[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, page.path)


@pytest.fixture
def admin_csrf(client: TestClient, ctx: Ctx, make_account: Callable[..., Account]) -> str:
    """``client`` signed in as an admin over the small fleet; returns a CSRF token for forms."""
    seed_fleet(ctx)
    sign_in(client, make_account(Role.admin))
    return csrf_token(client.get("/machines").text)


def test_the_walk_finds_the_pages_that_take_numbers(app: FastAPI) -> None:
    pages = {(p.method, p.path): (p.int_path, p.int_query) for p in numbered_pages(app)}
    assert pages[("GET", "/campaigns/{campaign_id}")] == (("campaign_id",), ())
    assert pages[("POST", "/incidents/{incident_id}/state")] == (("incident_id",), ())
    assert pages[("GET", "/acceptances/{acceptance_id}/certificate.pdf")][0] == ("acceptance_id",)
    assert pages[("GET", "/machines")] == ((), ("offset",))
    assert pages[("GET", "/notifications")] == ((), ("offset",))
    assert len([p for p in pages.values() if p[0]]) >= 15


def test_an_id_no_row_can_have_gets_the_pages_own_not_found(
    app: FastAPI, client: TestClient, admin_csrf: str
) -> None:
    wrong = []
    for page in numbered_pages(app):
        if not page.int_path:
            continue
        title = NOT_FOUND_TITLES[page.int_path[0]]
        for number in OUT_OF_RANGE:
            address = _address(page, number)
            form = {"csrf_token": admin_csrf} if page.method == "POST" else None
            answer = client.request(
                page.method, address, data=form, headers=ENGLISH, follow_redirects=False
            )
            kind = answer.headers.get("content-type", "")
            if answer.status_code != 404 or "text/html" not in kind or title not in answer.text:
                wrong.append(f"{page.method} {address}: {answer.status_code} {kind}")
    assert not wrong, "\n".join(wrong)


def test_the_not_found_page_names_the_number_asked_for(client: TestClient, admin_csrf: str) -> None:
    answer = client.get(f"/incidents/{10**20}", headers=ENGLISH)
    assert answer.status_code == 404
    assert f"There is no incident {10**20}." in answer.text


def test_an_offset_past_the_bound_is_refused_naming_it(
    app: FastAPI, client: TestClient, admin_csrf: str
) -> None:
    for page in numbered_pages(app):
        for name in page.int_query:
            for number in (MAX_ROW_ID + 1, 2**63, 10**20):
                answer = client.get(_address(page, 1), params={name: str(number)})
                assert answer.status_code < 500, (page.path, name, number)
                if name == "offset":
                    assert answer.status_code == 422, (page.path, number)
                    assert answer.json()["errors"][0]["field"] == "query.offset"


@pytest.mark.parametrize("offset", ["", "abc", "-3", "²", "0"])
def test_an_offset_that_is_not_a_number_still_shows_the_first_page(
    client: TestClient, admin_csrf: str, offset: str
) -> None:
    for path in ("/machines", "/notifications"):
        answer = client.get(path, params={"offset": offset})
        assert answer.status_code == 200, (path, offset, answer.text[:200])


def test_the_last_row_id_is_still_looked_up(client: TestClient, admin_csrf: str) -> None:
    answer = client.get(f"/campaigns/{MAX_ROW_ID}", headers=ENGLISH)
    assert answer.status_code == 404
    assert f"There is no campaign {MAX_ROW_ID}." in answer.text
