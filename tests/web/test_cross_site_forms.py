"""A form posted from another site is refused and changes nothing, on every page that writes.

The pages protect their forms with a token (``csrf_token``) signed for the visitor's own
``fleetup_csrf`` cookie and the signed-in user (web/rendering.py); the session cookie itself
is ``SameSite=Lax``. Here the browser is the victim's own: it sends both cookies, as an older
browser or a same-site page would, so the token is the only thing between a forged post and
the change. The forms are taken from the route table (every non-GET route of a page router),
so a page added without protection fails here.

Each form is posted by every kind of visitor its rule admits, with a foreign ``Origin``, and
with no token, a made-up one, or a genuine one from another browser: each answer must be 403,
must neither set nor clear the session cookie, and the database must not change. Then the
same post with the visitor's own token must go through, which shows it was the token that
stopped the others.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.route_calls import RouteCall, Visitor, admits, route_calls, send, visitors
from api.route_world import (
    ROLE_PRINCIPALS,
    build_world,
    changed_tables,
    table_rows,
)
from fleetup.api.deps import SESSION_COOKIE, Server
from fleetup.web.rendering import CSRF_COOKIE
from web.web_helpers import csrf_token

FOREIGN = {"Origin": "https://attacker.example", "Referer": "https://attacker.example/win"}
# Signing out a visitor who is not signed in has nothing to protect: that form takes no token.
NOTHING_TO_PROTECT = {("POST /logout", "anonymous")}


def forms(app: FastAPI) -> list[RouteCall]:
    return [call for call in route_calls(app) if call.web and call.method != "GET"]


def stranger_token(client: TestClient) -> str:
    """A genuine token, but issued to another browser (another ``fleetup_csrf`` cookie)."""
    client.cookies.clear()
    client.cookies.set(CSRF_COOKIE, "a-stranger-browser")
    page = client.get("/login")
    client.cookies.clear()
    return csrf_token(page.text)


def test_every_page_form_is_found_in_the_route_table(app: FastAPI) -> None:
    names = {call.name for call in forms(app)}
    assert {
        "POST /login",
        "POST /logout",
        "POST /machines/{serial}/upgrade",
        "POST /campaigns/{campaign_id}/waves/{code}/decide",
        "POST /technician/machines/{serial}/sign",
        "POST /incidents/{incident_id}/review",
        "POST /n/{token}",
        "POST /a/{token}",
        "POST /s/{token}",
    } <= names
    assert all(call.method == "POST" for call in forms(app))


def test_a_cross_site_post_to_any_page_form_is_refused_and_changes_nothing(
    app: FastAPI, server_parts: Server, tmp_path: Path
) -> None:
    world = build_world(server_parts, tmp_path)
    problems: list[str] = []
    with TestClient(app) as client:
        people = visitors(client, world)
        forged = {
            "no token": None,
            "a made-up token": "not-a-token",
            "another browser's token": stranger_token(client),
        }
        for call in forms(app):
            victims: list[Visitor] = [
                people[who]
                for who in (*ROLE_PRINCIPALS, "anonymous")
                if admits(call.rule, who) and (call.name, who) not in NOTHING_TO_PROTECT
            ]
            assert victims, f"{call.name} admits nobody who browses"
            before = table_rows(server_parts.engine)
            for victim in victims:
                for kind, token in forged.items():
                    answer = send(
                        client, server_parts, world, call, victim, csrf_token=token, headers=FOREIGN
                    )
                    cookie = answer.headers.get("set-cookie", "")
                    if answer.status_code != 403 or SESSION_COOKIE in cookie:
                        problems.append(
                            f"{call.name} as {victim.name} with {kind}: {answer.status_code} "
                            f"set-cookie={cookie[:60]!r}"
                        )
            changed = changed_tables(before, table_rows(server_parts.engine))
            if changed:
                problems.append(f"{call.name}: forged posts changed {changed}")
            genuine = send(client, server_parts, world, call, victims[-1])
            if genuine.status_code in (401, 403):
                problems.append(f"{call.name}: refused even with {victims[-1].name}'s own token")
    assert not problems, "\n".join(problems)


def test_signing_out_a_visitor_who_is_not_signed_in_needs_no_token(client: TestClient) -> None:
    answer = client.post("/logout", headers=FOREIGN, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
