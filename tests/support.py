"""Helpers that tests import by name (``tests/`` is on the path)."""

from __future__ import annotations

from dataclasses import dataclass

from fleetup.core.security import Role


@dataclass
class Account:
    username: str
    password: str
    token: str
    role: Role

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
