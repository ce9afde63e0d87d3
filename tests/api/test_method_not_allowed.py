"""A 405's ``Allow`` names every method the path accepts (RFC 9110 §15.5.6), not just those of
the first route that matched it: GET and POST on one path are often two registrations."""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from fleetup.api import problems
from fleetup.api.access import api_routes

TRIED = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed(answer_headers: dict[str, str]) -> set[str]:
    return {m.strip() for m in answer_headers.get("allow", "").split(",") if m.strip()}


def _example(path: str) -> str:
    return re.sub(r"\{\w+(?::\w+)?\}", "1", path)


def test_allow_lists_the_methods_of_every_registration_of_the_path() -> None:
    app = FastAPI()
    problems.install(app)
    router = APIRouter(prefix="/v1")

    @router.api_route("/thing", methods=["GET", "POST"])
    def read_or_add() -> dict[str, str]:
        return {}

    @router.put("/thing")
    def replace() -> dict[str, str]:
        return {}

    app.include_router(router)

    @app.patch("/v1/thing")
    def change() -> dict[str, str]:
        return {}

    answer = TestClient(app).delete("/v1/thing")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == problems.MEDIA_TYPE
    assert answer.headers["allow"] == "GET, PATCH, POST, PUT"


def test_every_path_of_the_application_allows_exactly_what_it_accepts(
    app: FastAPI, client: TestClient
) -> None:
    """Every method is tried on every path: those not refused with 405 are what it accepts,
    and each 405 there must list exactly them, on the API and on the web pages alike."""
    paths = sorted({_example(path) for path, _route in api_routes(app.routes)})
    assert "/api/v1/customers" in paths and "/n/1" in paths
    wrong = []
    for path in paths:
        answers = {method: client.request(method, path) for method in TRIED}
        accepted = {method for method, answer in answers.items() if answer.status_code != 405}
        for method, answer in answers.items():
            if answer.status_code == 405 and _allowed(dict(answer.headers)) != accepted:
                got = answer.headers.get("allow")
                wrong.append(f"{method} {path}: Allow {got!r}, accepts {sorted(accepted)}")
    assert not wrong, "\n".join(wrong)


def test_a_path_served_by_two_registrations_names_both(client: TestClient) -> None:
    api = client.put("/api/v1/customers")
    assert (api.status_code, api.headers["allow"]) == (405, "GET, POST")
    assert api.json()["title"] == "Method not allowed"
    page = client.delete("/login")
    assert (page.status_code, page.headers["allow"]) == (405, "GET, POST")


def test_a_static_file_allows_reading_only(client: TestClient) -> None:
    answer = client.post("/static/app.css")
    assert (answer.status_code, answer.headers["allow"]) == (405, "GET, HEAD")
