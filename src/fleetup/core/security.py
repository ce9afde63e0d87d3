"""Roles, password hashes, API tokens and signed values.

Passwords are hashed with argon2id. API tokens are random strings shown once; only their
SHA-256 is stored, so a leaked database does not leak working tokens. Session cookies and
customer links are signed (and time-limited) with itsdangerous under the server's secret key.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class Role(enum.StrEnum):
    admin = "admin"
    manager = "manager"
    technician = "technician"
    on_call = "on_call"
    viewer = "viewer"


ALL_ROLES = frozenset(Role)
TOKEN_PREFIX = "fut_"

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh API token, to be shown once to its owner."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in user or a script holding an API token."""

    user_id: int
    username: str
    role: Role
    via: str  # "session" or "token"

    @property
    def actor(self) -> str:
        return f"{'token' if self.via == 'token' else 'user'}:{self.username}"


class Signer:
    """Signs small values for cookies and links, with a purpose so one can't stand for another."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt=f"fleetup:{purpose}")

    def sign(self, purpose: str, value: Any) -> str:
        return self._serializer(purpose).dumps(value)

    def unsign(self, purpose: str, signed: str, *, max_age_s: int) -> Any:
        """Return the value, or raise ``LinkInvalid`` / ``LinkExpired``."""
        try:
            return self._serializer(purpose).loads(signed, max_age=max_age_s)
        except SignatureExpired as error:
            raise LinkExpired(purpose) from error
        except BadSignature as error:
            raise LinkInvalid(purpose) from error


class LinkInvalid(Exception):
    """The signed value was tampered with or signed for something else."""


class LinkExpired(LinkInvalid):
    """The signed value was genuine but is too old."""
