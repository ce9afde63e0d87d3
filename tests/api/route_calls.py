"""Calling every route of the application as each kind of caller, inside a ``World``.

``route_calls`` lists each method of each route with the rule it declares, straight from the
route table; ``admits`` reads a rule; ``visitors`` gives each caller its way in (people sign in
for a session cookie, which the pages get, and hold an API token, which the API gets; the IPC
sends its credential everywhere; everyone's browser holds its own CSRF cookie and token); and
``send`` calls a route as a caller, with real ids in the path and a body the handler accepts,
so that an admitted call really reaches the handler.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from api.route_world import (
    CHANNEL,
    CUSTOMER,
    CUSTOMER_NAME,
    LOGIN_PASSWORD,
    LOGIN_USER,
    M_ACCEPT,
    M_DEVICE,
    M_NOTICE,
    M_SPARE,
    M_SURVEY,
    PRINCIPALS,
    RELEASE,
    SITE,
    SUBSCRIBER,
    World,
    signature_data_url,
    token_of,
)
from fleetup.api.access import GuardedRoute, api_routes, route_rule
from fleetup.api.deps import SESSION_COOKIE, Server
from fleetup.web.rendering import CSRF_COOKIE


@dataclass(frozen=True)
class RouteCall:
    """One method of one route of the application, with the rule it declares."""

    method: str
    path: str
    rule: frozenset[str]
    web: bool

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def route_calls(app: FastAPI) -> list[RouteCall]:
    """Every method of every route the application serves, straight from its route table."""
    found = []
    for path, route in api_routes(app.routes):
        rule = route_rule(route.dependant)
        assert rule is not None, f"{path} declares no rule"
        web = route.endpoint.__module__.startswith("fleetup.web")
        for method in sorted(route.methods or ()):
            found.append(RouteCall(method, path, frozenset(str(r) for r in rule), web))
    return found


def unguarded(routes: Iterable[Any]) -> set[str]:
    """The paths served outside ``GuardedRoute`` (no access rule applies to them)."""
    found: set[str] = set()
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found |= unguarded(inner.routes)
        elif not isinstance(route, GuardedRoute):
            found.add(str(getattr(route, "path", route)))
    return found


def admits(rule: frozenset[str], principal: str) -> bool:
    """Whether a route's declared rule lets ``principal`` through to its handler."""
    if rule == {"enrolling device"}:
        return True  # anyone may present a one-time enrollment token; the handler checks it
    known = set(PRINCIPALS)
    assert rule <= known, f"a rule names callers this test does not know: {sorted(rule - known)}"
    return principal in rule


@dataclass
class Visitor:
    """How one principal knocks: its API headers, its browser cookies and its CSRF token."""

    name: str
    headers: dict[str, str]
    cookies: dict[str, str]
    csrf_token: str


def visitors(client: TestClient, world: World) -> dict[str, Visitor]:
    """A visitor per principal; people sign in for a session cookie as a browser would."""
    found: dict[str, Visitor] = {}
    for name in PRINCIPALS:
        cookies = {CSRF_COOKIE: f"route-world-seed-{name}"}
        headers: dict[str, str] = {}
        if name in world.accounts:
            account = world.accounts[name]
            headers = account.headers
            client.cookies.clear()
            login = {"username": account.username, "password": account.password}
            assert client.post("/api/v1/auth/login", json=login).status_code == 200
            cookies[SESSION_COOKIE] = client.cookies[SESSION_COOKIE]
        elif name == "device":
            headers = world.device.headers
        form_page = "/login" if name == "anonymous" else "/machines"
        client.cookies.clear()
        for key, value in cookies.items():
            client.cookies.set(key, value)
        page = client.get(form_page, headers={} if name in world.accounts else headers)
        token = CSRF_FIELD_VALUE.search(page.text)
        assert token or name == "device", f"{form_page} shows {name} no CSRF token"
        found[name] = Visitor(name, headers, cookies, token.group(1) if token else "none")
    client.cookies.clear()
    return found


CSRF_FIELD_VALUE = re.compile(r'name="csrf_token" value="([^"]+)"')
CSV_HEADER = (
    "customer_code,customer_name,customer_existing,contact_name,contact_phone,contact_email,"
    "contact_line_id,site_code,site_name,site_address,site_timezone,maintenance_window,serial,"
    "model,ipc_os,old_system_id,program_version\n"
)
CSV_ROW = "RW,rw,yes,,,,,S1,台中廠,,Asia/Taipei,,RW-CSV,CNC-500,linux,,\n"


def path_for(call: RouteCall, world: World, principal: str) -> str:
    """The route's path with real ids filled in; a parameter nobody named fails loudly."""
    by_route = {
        "/api/v1/customers/{code}": {"code": CUSTOMER},
        "/api/v1/sites/{customer_code}/{code}": {"customer_code": CUSTOMER, "code": SITE},
        "/api/v1/campaigns/{campaign_id}/activities/{code}": {"code": world.ids["activity"]},
        "/lang/{code}": {"code": "en"},
        "/api/v1/sop/charts/{chart_id}/mermaid": {"chart_id": "chart2"},
        "/device/v1/tuf/metadata/{name}": {"name": "1.root.json"},
        "/device/v1/tuf/targets/{name}": {
            "name": f"{world.ids['release_sha256']}.{world.ids['release_target']}"
        },
        "/api/v1/machines/{serial}/surveys": {"serial": M_SURVEY},
        "/api/v1/machines/{serial}/deployments": {"serial": M_DEVICE},
        "/api/v1/surveys/loops/{instance_id}/follow-ups": {
            "instance_id": world.ids["loop_instance_id"]
        },
        "/api/v1/me/subscriptions/{subscription_id}": {
            "subscription_id": str(world.subscription_ids.get(principal, 0))
        },
    }
    links = {
        "/n/": "notice",
        "/api/v1/public/notices/": "notice",
        "/a/": "acceptance",
        "/api/v1/public/acceptances/": "acceptance",
        "/s/": "survey",
        "/api/v1/public/surveys/": "survey",
        "/c/": "certificate",
    }
    by_name = {
        "serial": M_ACCEPT,
        "code": world.ids["wave"],
        "username": SUBSCRIBER,
        "subscription_id": str(world.subscription_ids[SUBSCRIBER]),
        "token_id": str(world.spare_token_ids.get(principal, 0)),
        "sha256": world.ids["release_sha256"],
        **{key: world.ids[key] for key in ID_NAMES},
    }
    for prefix, purpose in links.items():
        if call.path.startswith(prefix):
            by_name["token"] = token_of(world.links[purpose])
    values = {**by_name, **by_route.get(call.path, {})}
    filled = call.path
    for parameter in re.findall(r"{(\w+)}", call.path):
        assert parameter in values, f"{call.name}: no value for {{{parameter}}}; add one here"
        filled = filled.replace(f"{{{parameter}}}", values[parameter])
    return filled


ID_NAMES = (
    "campaign_id",
    "instance_id",
    "problem_id",
    "incident_id",
    "task_id",
    "acceptance_id",
    "action_id",
    "backup_id",
)


def _bodies(world: World, principal: str, now: datetime) -> dict[str, dict[str, Any]]:
    """What each writing route is sent: a body it accepts, so the handler really runs."""
    signature = {"signer_name": "林美華", "signature": signature_data_url()}
    visit = now + timedelta(days=6)
    reason = {"json": {"reason": "route matrix"}}
    return {
        "POST /api/v1/auth/login": {"json": {"username": LOGIN_USER, "password": LOGIN_PASSWORD}},
        "POST /api/v1/tokens": {"json": {"name": "made-by-the-matrix"}},
        "POST /api/v1/users": {
            "json": {"username": "rw-made", "password": "rw-made-password-1", "role": "viewer"}
        },
        "POST /api/v1/customers": {"json": {"code": "RW2", "name": "rw two"}},
        "PATCH /api/v1/customers/{code}": {"json": {"name": CUSTOMER_NAME}},
        "POST /api/v1/sites": {"json": {"customer_code": CUSTOMER, "code": "S2", "name": "二廠"}},
        "PATCH /api/v1/sites/{customer_code}/{code}": {"json": {"name": "台中廠"}},
        "POST /api/v1/machines": {
            "json": {
                "serial": "RW-NEW",
                "model": "CNC-500",
                "ipc_os": "linux",
                "customer_code": CUSTOMER,
                "site_code": SITE,
            }
        },
        "PATCH /api/v1/machines/{serial}": {"json": {"model": "CNC-500"}},
        "POST /api/v1/inventory/import": {
            "params": {"dry_run": "true"},
            "files": {"file": ("machines.csv", (CSV_HEADER + CSV_ROW).encode(), "text/csv")},
        },
        "POST /api/v1/sop/instances": {
            "json": {"chart_id": "chart4", "subject_kind": "machine", "subject_ref": M_NOTICE}
        },
        "POST /api/v1/sop/instances/{instance_id}/events": {
            "json": {"type": "step_started", "node": "A"}
        },
        "POST /api/v1/campaigns": {
            "json": {"name": "rw-two", "release_version": RELEASE, "starts_on": "2026-03-02"}
        },
        "PATCH /api/v1/campaigns/{campaign_id}/activities/{code}": {"json": {"note": "rw"}},
        "PATCH /api/v1/campaigns/{campaign_id}/waves/{code}": {"json": {}},
        "POST /api/v1/campaigns/{campaign_id}/waves/{code}/members": {
            "json": {"serials": [M_SPARE]}
        },
        **{
            f"POST /api/v1/campaigns/{{campaign_id}}/waves/{{code}}/{decision}": reason
            for decision in ("approve", "pause", "resume", "abort", "retry")
        },
        "POST /api/v1/campaigns/{campaign_id}/shutdown": {
            "json": {"reason": "rw", "archive": "nas://archive/rw"}
        },
        "POST /api/v1/problems": {"json": {"serial": M_NOTICE, "type": "user"}},
        "POST /api/v1/problems/{problem_id}/steps": {
            "json": {"node": "F1", "payload": {"topics": ["screens"], "trainee": "王"}}
        },
        "POST /api/v1/alerts/silences": {
            "json": {"subject_ref": M_NOTICE, "minutes": 5, "reason": "rw"}
        },
        "GET /api/v1/incidents/compliance": {
            "params": {"since": "2026-03-01T00:00:00Z", "until": "2026-03-31T00:00:00Z"}
        },
        "POST /api/v1/incidents/{incident_id}/state": {"json": {"state": "diagnosing"}},
        "POST /api/v1/incidents/{incident_id}/review": {"json": {"root_cause": "rw"}},
        "POST /api/v1/incidents/{incident_id}/tasks": {
            "json": {"title": "rw", "owner": "rw-manager", "due_on": "2026-03-20"}
        },
        "POST /api/v1/incidents/{incident_id}/runbook": {"json": {"node": "J"}},
        "POST /api/v1/me/subscriptions": {
            "json": {"url": f"{CHANNEL}/{principal}", "language": "en"}
        },
        "POST /api/v1/users/{username}/subscriptions": {"json": {"url": CHANNEL, "language": "en"}},
        "POST /api/v1/visits": {
            "json": {
                "serial": M_SPARE,
                "visit_start": visit.isoformat(),
                "visit_end": (visit + timedelta(hours=1)).isoformat(),
                "expected_minutes": 60,
            }
        },
        "POST /api/v1/public/notices/{token}": {"json": {"answer": "confirmed"}},
        "POST /api/v1/machines/{serial}/acceptances": {"json": signature},
        "POST /api/v1/public/acceptances/{token}": {"json": signature},
        "POST /api/v1/public/surveys/{token}": {"json": {"score": 9}},
        "POST /api/v1/surveys/loops/{instance_id}/follow-ups": {
            "json": {"kind": "understanding", "note": "rw"}
        },
        "POST /api/v1/simulation/clock": {
            "json": {"now": (now + timedelta(minutes=1)).isoformat()}
        },
        "POST /api/v1/machines/{serial}/deployments": {"json": {"version": RELEASE}},
        "POST /device/v1/enroll": {
            "json": {
                "enrollment_token": world.enrollment_tokens[principal],
                "serial": M_SPARE,
                "hardware": {},
            }
        },
        "POST /device/v1/actions/{action_id}/events": {
            "json": {
                "event_id": f"route-matrix-{principal}",
                "step": "backup",
                "status": "started",
                "at": now.isoformat(),
            }
        },
        "POST /device/v1/heartbeat": {"json": {"version": "1.0.0", "link": "primary"}},
        "POST /device/v1/register": {"json": {"device_id": world.device.device_id}},
        "POST /device/v1/backups": {
            "json": {"action_id": world.ids["action_id"], "sha256": "2" * 64, "size": 4}
        },
        "PUT /device/v1/backups/{backup_id}": {"params": {"offset": "0"}, "content": b"abcd"},
        "GET /lang/{code}": {"params": {"next": "/machines"}},
        "POST /login": {
            "data": {"username": LOGIN_USER, "password": LOGIN_PASSWORD, "next": "/machines"}
        },
        "POST /campaigns/{campaign_id}/waves/{code}/decide": {
            "data": {"action": "pause", "reason": "rw"}
        },
        "POST /technician/machines/{serial}/events": {
            "data": {"type": "step_started", "node": "T"}
        },
        "POST /technician/machines/{serial}/sign": {"data": signature},
        "POST /incidents/{incident_id}/state": {"data": {"state": "diagnosing"}},
        "POST /incidents/{incident_id}/review": {"data": {"root_cause": "rw"}},
        "POST /problems/{problem_id}/steps": {
            "data": {"node": "F1", "topics": "screens", "trainee": "王"}
        },
        "POST /n/{token}": {"data": {"answer": "confirmed"}},
        "POST /a/{token}": {"data": signature},
        "POST /s/{token}": {"data": {"score": "9"}},
    }


#: What ``send`` puts in a form's ``csrf_token``: the visitor's own token unless told otherwise.
OWN_TOKEN = object()


def send(
    client: TestClient,
    parts: Server,
    world: World,
    call: RouteCall,
    visitor: Visitor,
    *,
    csrf_token: object = OWN_TOKEN,
    headers: dict[str, str] | None = None,
    path: str | None = None,
) -> Response:
    """Call ``call`` as ``visitor`` would: people use the session cookie on pages and their
    API token elsewhere, the IPC its credential everywhere. A form carries the visitor's CSRF
    token; pass ``csrf_token=None`` to leave it out, or another value to send that. ``path``
    replaces the one ``path_for`` would fill in."""
    request = dict(_bodies(world, visitor.name, parts.clock.now()).get(call.name, {}))
    client.cookies.clear()
    for key, value in visitor.cookies.items():
        if key != SESSION_COOKIE or call.web:
            client.cookies.set(key, value)
    sent = dict(headers or {})
    if visitor.name == "device" or not call.web:
        sent.update(visitor.headers)
    if call.web and call.method == "POST":
        form = dict(request.get("data", {}))
        if csrf_token is OWN_TOKEN:
            form["csrf_token"] = visitor.csrf_token
        elif csrf_token is not None:
            form["csrf_token"] = str(csrf_token)
        request["data"] = form
    try:
        answer: Response = client.request(
            call.method,
            path or path_for(call, world, visitor.name),
            headers=sent,
            follow_redirects=False,
            **request,
        )
        return answer
    finally:
        client.cookies.clear()
