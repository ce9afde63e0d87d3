"""Enrollment survives a lost answer: the real server enrolled the device, the agent never heard.

The agent talks to the real application through a link that delivers each request and then
drops the first answers on the way back, as a cut line or a restart would.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleetup.agent.config import AgentConfig
from fleetup.agent.errors import NotEnrolled, ServerUnreachable
from fleetup.agent.register import enrollment_key_file, ensure_enrolled, load_credential
from fleetup.agent.transport import Transport
from fleetup.core.context import Ctx
from fleetup.devices import service as devices
from fleetup.devices.models import Device


class _LosesAnswers(httpx.BaseTransport):
    """Hands every request to the server; the first ``lose`` answers never come back."""

    def __init__(self, server: TestClient, *, lose: int) -> None:
        self.server = server
        self.lose = lose

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.server.send(request)
        if self.lose:
            self.lose -= 1
            raise httpx.ReadTimeout("the answer was lost on the way back", request=request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def _transport(client: TestClient, *, lose: int, retries: int) -> Transport:
    return Transport(
        primary_url="http://testserver",
        http=_LosesAnswers(client, lose=lose),
        retries=retries,
        backoff_s=0.0,
    )


@pytest.fixture
def enrolling(ctx: Ctx, machine: str, agent_config: AgentConfig) -> AgentConfig:
    token = devices.create_enrollment_token(ctx, serial=machine)
    ctx.session.commit()
    return dataclasses.replace(agent_config, serial=machine, enrollment_token=token)


def _works(client: TestClient, config: AgentConfig) -> bool:
    stored = load_credential(config.credential_file)
    assert stored is not None
    headers = {"Authorization": f"Bearer {stored['credential']}"}
    status: int = client.get("/device/v1/actions/next", headers=headers).status_code
    return status == 200


def _devices(ctx: Ctx) -> int:
    ctx.session.rollback()
    return int(ctx.session.scalar(select(func.count()).select_from(Device)) or 0)


def test_an_enrollment_whose_answer_was_lost_is_answered_again_on_the_retry(
    ctx: Ctx, client: TestClient, enrolling: AgentConfig
) -> None:
    device_id = ensure_enrolled(_transport(client, lose=1, retries=2), enrolling)

    assert device_id.startswith("dev-")
    assert _works(client, enrolling)
    assert _devices(ctx) == 1
    assert not enrollment_key_file(enrolling).exists()


def test_an_agent_restarted_after_a_lost_enrollment_answer_gets_the_same_device(
    ctx: Ctx, client: TestClient, enrolling: AgentConfig
) -> None:
    with pytest.raises(ServerUnreachable):
        ensure_enrolled(_transport(client, lose=1, retries=1), enrolling)
    assert load_credential(enrolling.credential_file) is None
    assert enrollment_key_file(enrolling).exists()  # the spent token's answer can be fetched

    device_id = ensure_enrolled(_transport(client, lose=0, retries=1), enrolling)

    assert device_id.startswith("dev-")
    assert _works(client, enrolling)
    assert _devices(ctx) == 1
    assert not enrollment_key_file(enrolling).exists()


def test_a_spent_enrollment_token_leaves_the_agent_not_enrolled(
    ctx: Ctx, client: TestClient, enrolling: AgentConfig, tmp_path: Path
) -> None:
    ensure_enrolled(_transport(client, lose=0, retries=1), enrolling)
    # Another IPC given the same token (a copied configuration) is refused with 403.
    other = dataclasses.replace(enrolling, credential_file=tmp_path / "other" / "credential.json")
    with pytest.raises(NotEnrolled) as refused:
        ensure_enrolled(_transport(client, lose=0, retries=1), other)
    assert refused.value.status == 403
    assert load_credential(other.credential_file) is None
    assert _devices(ctx) == 1
