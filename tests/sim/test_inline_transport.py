"""The in-process seam hands the app the request an httpx client would send over a socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fleetup.sim.inline import InlineTransport
from fleetup.sim.result import Api, SimResult


class Echo:
    """An ASGI app that answers with what it received."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.scopes.append(scope)
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        seen = {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body": message["body"].decode(),
        }
        body = json.dumps(seen).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 207,
                "headers": [(b"content-type", b"application/json"), (b"etag", b'"v1"')],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def transport() -> Iterator[InlineTransport]:
    found = InlineTransport(Echo())
    yield found
    found.close()


def _through_httpx(transport: InlineTransport, **request: Any) -> dict[str, Any]:
    with httpx.Client(transport=transport, base_url="http://simulator.invalid") as client:
        answer = client.request(**request)
    return dict(answer.json())


def test_a_call_reaches_the_app_as_the_same_request_sent_through_an_httpx_client(
    transport: InlineTransport,
) -> None:
    body = {"step": "download", "note": "下載 ok", "at": "2026-03-02T09:00:00Z"}
    target = "/api/v1/campaigns/3/visits?technician=tech-01&status=planned"
    headers = {"Authorization": "Bearer t0k", "Idempotency-Key": "k1"}
    api = Api(
        httpx.Client(base_url="http://unused.invalid"),
        SimResult(),
        keyed=False,
        transport=transport,
    )

    answer = api.call("POST", target, json=body, headers=headers, expect=(207,))

    direct = _through_httpx(transport, method="POST", url=target, json=body, headers=headers)
    seen = answer.json()
    assert answer.status_code == 207
    assert answer.headers["etag"] == '"v1"'
    assert seen["path"] == direct["path"] == "/api/v1/campaigns/3/visits"
    assert seen["query"] == direct["query"] == "technician=tech-01&status=planned"
    assert json.loads(seen["body"]) == body
    assert seen["body"] == direct["body"]
    for name in ("authorization", "idempotency-key", "content-type", "content-length", "host"):
        assert seen["headers"][name] == direct["headers"][name], name
    assert api.result.requests == 1
    assert api.result.errors == {}


def test_a_path_with_characters_outside_a_url_reaches_the_app_encoded_and_decoded(
    transport: InlineTransport,
) -> None:
    target = "/api/v1/surveys/台北 1?serial=A 1&note=ok"

    seen = transport.call("GET", target, {}).json()

    direct = _through_httpx(transport, method="GET", url=target)
    assert seen["path"] == direct["path"] == "/api/v1/surveys/台北 1"
    assert seen["raw_path"] == direct["raw_path"]
    assert seen["query"] == direct["query"]
    assert seen["body"] == direct["body"] == ""
    assert "content-length" not in seen["headers"]
