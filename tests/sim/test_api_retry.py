"""The simulator's HTTP seam rides out a server restart, sending the same request again."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from fleetup.sim.result import Api, SimResult


def _api(
    answers: list[Callable[[httpx.Request], httpx.Response]], patience: float = 5
) -> tuple[Api, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1](request)

    client = httpx.Client(transport=httpx.MockTransport(handle), base_url="http://server.invalid")
    return Api(client, SimResult(), patience=patience), seen


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _cut_off(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("server disconnected", request=request)


def _unavailable(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


def _created(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": 7}, headers={"Idempotent-Replayed": "true"})


def test_a_call_cut_off_by_a_restart_is_sent_again_with_the_same_key() -> None:
    api, seen = _api([_cut_off, _refused, _unavailable, _created])
    answer = api.call("POST", "/api/v1/things", token="t", json={"name": "x"})
    assert answer.status_code == 201 and answer.json() == {"id": 7}
    keys = {request.headers["idempotency-key"] for request in seen}
    assert len(seen) == 4 and len(keys) == 1
    assert {request.content for request in seen} == {b'{"name":"x"}'}
    assert (api.result.requests, api.result.retried, api.result.replayed) == (1, 3, 1)
    assert not api.result.errors


def test_each_call_has_a_key_of_its_own_and_reads_have_none() -> None:
    api, seen = _api([_created])
    api.call("POST", "/api/v1/things")
    api.call("POST", "/api/v1/things")
    api.call("GET", "/api/v1/things", expect=(201,))
    api.call("POST", "/api/v1/simulation/clock", replayable=False, expect=(201,))
    keys = [request.headers.get("idempotency-key") for request in seen]
    assert keys[0] and keys[1] and keys[0] != keys[1]
    assert keys[2:] == [None, None]


def test_a_server_that_stays_away_fails_the_call_after_its_patience() -> None:
    api, _seen = _api([_refused], patience=0.2)
    with pytest.raises(httpx.ConnectError):
        api.call("GET", "/api/v1/things")
    api, _seen = _api([_unavailable], patience=0.2)
    assert api.call("GET", "/api/v1/things").status_code == 503
