"""Fixtures for the web pages: a small fleet, and a client with a technician signed in."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from web_helpers import seed_fleet, sign_in

from fleetup.core.context import Ctx
from fleetup.core.security import Role
from support import Account


@pytest.fixture
def fleet(ctx: Ctx) -> None:
    seed_fleet(ctx)


@pytest.fixture
def technician(client: TestClient, make_account: Callable[..., Account], fleet: None) -> Account:
    """A technician signed in on ``client``, with the small fleet in the database."""
    account = make_account(Role.technician)
    sign_in(client, account)
    return account
