"""What the API accepts and returns for users and tokens."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fleetup.core.security import Role


class AccountIn(BaseModel):
    """An account that signs in with API tokens only (see ``service.create_token_user``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    role: Role
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=40)
    language: str = Field(default="zh-TW", pattern=r"^(zh-TW|en)$")


class UserIn(AccountIn):
    """An account that signs in with its password, and with API tokens."""

    password: str = Field(min_length=10, max_length=200)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    email: str
    phone: str
    role: Role
    language: str
    active: bool


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)


class TokenOut(BaseModel):
    id: int
    name: str
    token: str = Field(description="Shown once; only its digest is kept.")


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
