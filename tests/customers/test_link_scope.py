"""A customer's link opens one thing, once, for a while, and nothing else.

test_customer_api.py and test_survey_loop.py show the basics: an answered notice, survey or
acceptance link says "used" (410), an old survey link "expired" (410), a forged one is refused
(403). Here: a link of one kind opens no page of another kind (generated from the route
table), a link cannot be bent to another machine's survey or acceptance, a notice link dies
when its visit begins or is moved, a reissued survey link replaces the old one, the pages are
single-use like the API, and a link signed by another server's key opens nothing. Every
refusal leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from api.route_calls import (
    RouteCall,
    route_calls,
    send,
    visitors,
)
from api.route_world import (
    CANARIES,
    build_world,
    changed_tables,
    signature_data_url,
    table_rows,
    token_of,
)
from customers.customer_support import add_machine, make_machine, start, walk
from fleetup.api.deps import Server
from fleetup.core.clock import ManualClock
from fleetup.core.context import Ctx
from fleetup.core.security import Signer
from fleetup.customers import acceptances, notices, surveys
from fleetup.customers.links import Links, link_path
from web.web_helpers import csrf_token

PURPOSE_OF_PREFIX = {
    "/n/": "notice",
    "/api/v1/public/notices/": "notice",
    "/a/": "acceptance",
    "/api/v1/public/acceptances/": "acceptance",
    "/s/": "survey",
    "/api/v1/public/surveys/": "survey",
    "/c/": "certificate",
}


def purpose_of(call: RouteCall) -> str:
    return next(p for prefix, p in PURPOSE_OF_PREFIX.items() if call.path.startswith(prefix))


def spliced(payload_of: str, signature_of: str) -> str:
    """One link's signed value under another link's timestamp and signature."""
    return payload_of.split(".", 1)[0] + "." + signature_of.split(".", 1)[1]


def unchanged(parts: Server, call: Callable[..., Response], *args: Any, **kwargs: Any) -> Response:
    """``call(*args, **kwargs)``, which must leave every table as it was."""
    before = table_rows(parts.engine)
    answer = call(*args, **kwargs)
    assert changed_tables(before, table_rows(parts.engine)) == [], answer.text[:200]
    return answer


def test_a_link_of_one_kind_opens_no_page_of_another_kind(
    app: FastAPI, server_parts: Server, tmp_path: Path
) -> None:
    world = build_world(server_parts, tmp_path)
    link_routes = [call for call in route_calls(app) if "{token}" in call.path]
    assert {purpose_of(call) for call in link_routes} == set(world.links)
    wrong: list[str] = []
    with TestClient(app) as client:
        customer = visitors(client, world)["anonymous"]
        before = table_rows(server_parts.engine)
        for call in link_routes:
            for kind, link in world.links.items():
                if kind == purpose_of(call):
                    continue
                path = call.path.replace("{token}", token_of(link))
                answer = send(client, server_parts, world, call, customer, path=path)
                shown = [canary for canary in CANARIES if canary in answer.text]
                if answer.status_code != 403 or shown:
                    wrong.append(f"{call.name} with a {kind} link: {answer.status_code} {shown}")
        changed = changed_tables(before, table_rows(server_parts.engine))
        own = {
            call.name: send(client, server_parts, world, call, customer).status_code
            for call in link_routes
            if call.method == "GET"
        }
    assert not wrong, "\n".join(wrong)
    assert changed == []
    assert set(own.values()) == {200}, own


def _answered_surveys(ctx: Ctx, parts: Server) -> list[str]:
    """Two machines of one customer, each with a completed upgrade and an open survey."""
    links = Links(parts.signer, "")
    paths = []
    for serial in (make_machine(ctx, "LS-A"), add_machine(ctx, "LS-B")):
        walk(ctx, parts.library, start(ctx, parts.library, serial), until="V")
        paths.append(surveys.open_survey(ctx, serial=serial, library=parts.library, links=links))
    ctx.session.commit()
    return [token_of(path) for path in paths]


def test_a_survey_link_cannot_be_bent_to_another_machines_survey(
    ctx: Ctx, server_parts: Server, client: TestClient
) -> None:
    mine, theirs = _answered_surveys(ctx, server_parts)
    bent = spliced(theirs, mine)
    assert unchanged(server_parts, client.get, f"/s/{bent}").status_code == 403
    api = f"/api/v1/public/surveys/{bent}"
    assert unchanged(server_parts, client.post, api, json={"score": 0}).status_code == 403

    answer = client.post(f"/api/v1/public/surveys/{mine}", json={"score": 9})
    assert answer.status_code == 200
    ctx.session.expire_all()
    [other] = surveys.get_all(ctx.session, serial="LS-B")
    assert (other.status, other.score) == ("open", None)
    assert client.get(f"/api/v1/public/surveys/{theirs}").json()["serial"] == "LS-B"


def test_an_acceptance_link_signs_only_its_own_machine(
    ctx: Ctx, server_parts: Server, client: TestClient
) -> None:
    parts = server_parts
    tokens = []
    for serial in (make_machine(ctx, "LS-A"), add_machine(ctx, "LS-B")):
        walk(ctx, parts.library, start(ctx, parts.library, serial), until="T")
        link = acceptances.link_for(ctx.session, signer=parts.signer, serial=serial)
        tokens.append(token_of(link))
    mine, theirs = tokens
    body = {"signer_name": "王小明", "signature": signature_data_url()}
    bent = f"/api/v1/public/acceptances/{spliced(theirs, mine)}"
    assert unchanged(parts, client.post, bent, json=body).status_code == 403
    assert unchanged(parts, client.get, f"/a/{spliced(theirs, mine)}").status_code == 403

    signed = client.post(f"/api/v1/public/acceptances/{mine}", json=body)
    assert signed.status_code == 201 and signed.json()["serial"] == "LS-A"
    assert acceptances.get_all(ctx.session, serial="LS-B") == []
    assert client.get(f"/a/{theirs}").status_code == 200


def test_a_notice_link_dies_when_its_visit_is_moved_or_begins(
    ctx: Ctx, server_parts: Server, client: TestClient, clock: ManualClock
) -> None:
    serial = make_machine(ctx, "LS-A")
    tokens = []
    for days in (5, 6):
        start_at = clock.now() + timedelta(days=days)
        notices.schedule_notice(
            ctx,
            serial=serial,
            visit_start=start_at,
            visit_end=start_at + timedelta(hours=2),
            expected_minutes=60,
        )
        ctx.session.flush()
        visit = notices.get_all_visits(ctx.session, serial=serial)[-1]
        tokens.append(link_path(server_parts.signer, "notice", visit.id)[3:])
    ctx.session.commit()
    moved, current = tokens
    answer_it: dict[str, Any] = {"answer": "confirmed"}

    assert unchanged(server_parts, client.get, f"/n/{moved}").status_code == 410
    api = f"/api/v1/public/notices/{moved}"
    assert unchanged(server_parts, client.post, api, json=answer_it).status_code == 410
    assert client.get(f"/api/v1/public/notices/{current}").status_code == 200

    clock.advance(timedelta(days=6, minutes=1))
    english = {"accept-language": "en"}
    page = unchanged(server_parts, client.get, f"/n/{current}", headers=english)
    assert page.status_code == 410 and "This link has expired" in page.text
    api = f"/api/v1/public/notices/{current}"
    assert unchanged(server_parts, client.post, api, json=answer_it).status_code == 410


def test_a_reissued_survey_link_replaces_the_one_before(
    ctx: Ctx, server_parts: Server, client: TestClient
) -> None:
    serial = make_machine(ctx, "LS-A")
    walk(ctx, server_parts.library, start(ctx, server_parts.library, serial), until="V")
    links = Links(server_parts.signer, "")
    first = surveys.open_survey(ctx, serial=serial, library=server_parts.library, links=links)
    second = surveys.open_survey(ctx, serial=serial, library=server_parts.library, links=links)
    ctx.session.commit()
    old = f"/api/v1/public/surveys/{token_of(first)}"
    assert unchanged(server_parts, client.post, old, json={"score": 3}).status_code == 410
    assert client.get(second).status_code == 200


def test_the_customer_pages_take_one_answer_per_link(
    ctx: Ctx, server_parts: Server, client: TestClient, clock: ManualClock
) -> None:
    serial = make_machine(ctx, "LS-A")
    walk(ctx, server_parts.library, start(ctx, server_parts.library, serial), until="V")
    links = Links(server_parts.signer, "")
    survey = surveys.open_survey(ctx, serial=serial, library=server_parts.library, links=links)
    visit_at = clock.now() + timedelta(days=5)
    notices.schedule_notice(
        ctx,
        serial=serial,
        visit_start=visit_at,
        visit_end=visit_at + timedelta(hours=1),
        expected_minutes=30,
    )
    ctx.session.flush()
    notice = link_path(server_parts.signer, "notice", notices.get_all_visits(ctx.session)[-1].id)
    ctx.session.commit()

    for path, form in ((survey, {"score": "9"}), (notice, {"answer": "confirmed"})):
        token = csrf_token(client.get(path).text)
        assert client.post(path, data={**form, "csrf_token": token}).status_code == 200
        again = unchanged(
            server_parts,
            client.post,
            path,
            data={**form, "csrf_token": token},
            headers={"accept-language": "en"},
        )
        assert again.status_code == 410 and "This link was used already" in again.text


def test_a_link_signed_with_another_servers_key_opens_nothing(
    ctx: Ctx, server_parts: Server, client: TestClient
) -> None:
    serial = make_machine(ctx, "LS-A")
    walk(ctx, server_parts.library, start(ctx, server_parts.library, serial), until="V")
    links = Links(server_parts.signer, "")
    surveys.open_survey(ctx, serial=serial, library=server_parts.library, links=links)
    ctx.session.commit()
    [survey] = surveys.get_all(ctx.session, serial=serial)
    elsewhere = Signer("another-fleetup-servers-key")
    token = token_of(surveys.survey_link(elsewhere, survey))
    assert unchanged(server_parts, client.get, f"/s/{token}").status_code == 403
    api = f"/api/v1/public/surveys/{token}"
    assert unchanged(server_parts, client.post, api, json={"score": 10}).status_code == 403
    genuine = token_of(surveys.survey_link(server_parts.signer, survey))
    assert client.get(f"/api/v1/public/surveys/{genuine}").status_code == 200
